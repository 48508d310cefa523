"""Fixtures of tests/core: the registry's contributor and model, for the test that serves the app with Granian."""

from tests.registry.fixtures import contributor, model  # noqa: F401
from tests.support.triad import shared_world, world  # noqa: F401 - the triad's objects, built once per module

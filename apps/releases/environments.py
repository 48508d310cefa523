"""Environment names as a request names them: a name that matches none is a 400 listing the known ones.

Environments are global configuration (anyone signed in may list them), so the message may name them all.
"""

from __future__ import annotations

from apps.core.errors import ValidationFailed

from .models import Environment


def environment_names() -> list[str]:
    """Every environment's name, production first (the order of ``GET /api/v1/environments/``)."""
    return list(Environment.objects.order_by("-production", "name").values_list("name", flat=True))


def unknown_environment(name: str, *, field: str = "environment") -> ValidationFailed:
    """The 400 for an environment name that matches none: it names the known ones, in words and as data."""
    known = environment_names()
    listed = ", ".join(known) if known else "none defined"
    return ValidationFailed(
        f"Unknown environment {name!r}; known environments: {listed}.",
        errors={field: [f"Unknown environment {name!r}. Use one of: {listed}."]},
        extra={"valid_values": {field: known}},
    )

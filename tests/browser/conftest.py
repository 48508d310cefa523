"""Browser tests: Playwright (sync API) driving the system's headless Chromium against a live server.

Never run ``playwright install``: it downloads a browser, which these machines cannot. The
tests use /usr/bin/chromium (``apt-get install chromium``) and are skipped, as ``service``
tests, when it is missing (``.ci/run`` fails on such a skip).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")

# Playwright's sync API runs an asyncio event loop in the test thread once the browser is up,
# so Django's guard against ORM calls from async code refuses the tests' own set-up (rows made
# by fixtures after the ``page`` fixture) and the database flush after each test, with
# SynchronousOnlyOperation. Those calls are plain sequential code that never runs concurrently
# with the loop, so lifting the guard is safe here; the live server answers the browser from a
# thread of its own, where the guard does not apply. Test runs only: production never sets it.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not CHROMIUM.exists():
        pytest.skip("Chromium not installed: apt-get install chromium")
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture
def screenshot_dir(tmp_path) -> Path:
    """Where screenshots go: the test's tmp folder, or ASSAY_SCREENSHOT_DIR to keep them."""
    folder = Path(os.environ.get("ASSAY_SCREENSHOT_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(autouse=True)
def _fresh_rate_limit_counters():
    """The live server answers from a thread of its own, whose cache has no per-test key prefix:
    empty the shared cache so each test's sign-ins start from nothing, as on a fresh server."""
    from django.core.cache import caches

    caches["default"].clear()
    yield

"""Checks that can make the control plane "degraded": registered by the apps that own them.

The web process can serve while a check here fails (no worker alive, jobs waiting too long), so
these never turn ``/api/v1/health/`` into a 503; they turn its ``status`` into ``degraded`` with the
reasons, and show a banner to admins on the dashboard. An app registers its check in its
``AppConfig.ready()``, so this module never imports the apps above it.

A check is a function of no arguments returning ``(ok, reasons, details)``; it must only read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

Check = Callable[[], tuple[bool, list[str], dict]]
_checks: dict[str, Check] = {}


def register(name: str, check: Check) -> None:
    """Add (or replace) the check reported under ``name``."""
    _checks[name] = check


def run_checks() -> tuple[dict[str, dict], list[str]]:
    """Run every registered check: ``({name: details with "ok"}, reasons for being degraded)``."""
    results: dict[str, dict] = {}
    reasons: list[str] = []
    for name, check in _checks.items():
        try:
            ok, why, details = check()
        except Exception as exc:  # report, don't raise (an unmigrated database, a lost connection)
            logger.warning("health: the %s check failed: %r", name, exc)
            ok, why, details = False, [f"the {name} check could not run ({exc.__class__.__name__})"], {}
        results[name] = {"ok": ok, **details}
        reasons.extend(why)
    return results, reasons

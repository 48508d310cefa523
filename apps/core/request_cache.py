"""Memory that lives for one unit of work (one request, one job, one operator command) and never longer.

Anything remembered to save queries within a request (a principal's role grants, for instance)
goes here, never into a module-level or per-thread cache and never under a key the client
chooses (a request id, a header): a server thread serves many requests, and a value kept past
its request would let a revoked permission keep working. ``RequestContextMiddleware`` opens a
fresh unit at the start of every request and drops it at the end; the job runner and the Celery
task signals do the same per job. Outside any unit, nothing is remembered: ``bucket`` returns
None and callers read afresh.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

_unit: contextvars.ContextVar[dict | None] = contextvars.ContextVar("assay_unit_of_work_cache", default=None)


def begin() -> contextvars.Token:
    """Open a fresh, empty unit of work; hand the returned token to ``end``."""
    return _unit.set({})


def end(token: contextvars.Token | None = None) -> None:
    """Close the unit opened by ``begin`` (or, without a token, whatever unit is open)."""
    if token is not None:
        _unit.reset(token)
    else:
        _unit.set(None)


@contextmanager
def unit_of_work() -> Iterator[None]:
    """``with unit_of_work(): ...``: a fresh cache for the block, forgotten when it ends."""
    token = begin()
    try:
        yield
    finally:
        end(token)


def bucket(name: str) -> dict | None:
    """The current unit's dict for ``name`` (created empty on first use), or None outside a unit of work."""
    unit = _unit.get()
    if unit is None:
        return None
    return unit.setdefault(name, {})


def forget(name: str) -> None:
    """Drop what the current unit remembers under ``name`` (after a write that changes it)."""
    unit = _unit.get()
    if unit is not None:
        unit.pop(name, None)

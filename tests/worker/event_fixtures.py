"""Test-only hooks that kill a worker at a chosen point of an event's life (tests/worker/test_event_processes.py).

Worker processes load this module through ``ASSAY_EXTRA_TASK_MODULES`` (with
``tests.worker.job_fixtures``). Nothing happens unless one of these is set in the worker's
environment:

- ``ASSAY_TEST_DIE_AFTER_PUBLISH=<event name>``: the worker's whole process group is SIGKILLed as
  soon as the transaction that published that event commits, before anything else runs (the
  point where an after-commit callback used to lose the reaction for good);
- ``ASSAY_TEST_DIE_AFTER_REACTION=<subscriber>:<event name>``: the worker is SIGKILLed right after
  that subscriber's handler for that event returned (its writes committed), before its job is
  marked finished, so the job runs again elsewhere.

Each kill first appends ``<what> <pid>`` to ``kills.log`` in ``ASSAY_TEST_TRACE_DIR``.
"""

from __future__ import annotations

import os
import signal

from django.db import transaction

from apps.jobs import events
from tests.worker.job_fixtures import trace


def _die(what: str) -> None:
    trace("kills.log", f"{what} {os.getpid()}")
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _die_after_publish(name: str) -> None:
    publish = events.publish

    def publishing_then_dying(event: str, **kwargs):
        written = publish(event, **kwargs)
        if event == name:
            transaction.on_commit(lambda: _die(f"after-publish:{event}"))
        return written

    events.publish = publishing_then_dying


def _die_after_reaction(subscriber: str, name: str) -> None:
    handler = events._subscriptions[name][subscriber]

    def reacting_then_dying(event, report):
        result = handler(event, report)
        _die(f"after-reaction:{subscriber}:{event.name}")
        return result

    events.subscribe(name, reacting_then_dying, subscriber=subscriber)


if os.environ.get("ASSAY_TEST_DIE_AFTER_PUBLISH"):
    _die_after_publish(os.environ["ASSAY_TEST_DIE_AFTER_PUBLISH"])
if os.environ.get("ASSAY_TEST_DIE_AFTER_REACTION"):
    _die_after_reaction(*os.environ["ASSAY_TEST_DIE_AFTER_REACTION"].split(":", 1))

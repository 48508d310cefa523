"""What the evidence services share: the job's name, the kinds, and a run under its row lock."""

from __future__ import annotations

import re
import uuid
from typing import Any

from apps.core.errors import Conflict, NotFound
from apps.core.principals import Principal, PrincipalKind
from apps.rbac import services as rbac

from ..choices import EvidenceKind
from ..models import EvidenceRun

RUN_JOB = "evidence.run"
WORKER_DEFAULTS = Principal.system("evidence-defaults")
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
AVAILABLE_KINDS: tuple[str, ...] = tuple(EvidenceKind.values)


class RunFinished(Conflict):
    """The run is already finished: nothing to cancel (409)."""

    code = "run_finished"
    title = "Run already finished"


def _locked_run(actor: Principal, run_id: Any, permission: str, audit_action: str) -> EvidenceRun:
    """The run under its row lock, once ``permission`` on it is checked.

    A run outside the actor's scope is a 404 and one they may only see a 403; both are
    audited as ``audit_action`` denied by the error handlers.
    """
    try:
        public_id = uuid.UUID(str(run_id))
    except ValueError:
        raise NotFound("No evidence run matches the given query.")
    run = (
        EvidenceRun.objects.select_for_update(of=("self",))
        .select_related("version__model", "dataset", "job")
        .filter(public_id=public_id)
        .first()
    )
    if run is None:
        raise NotFound("No evidence run matches the given query.")
    rbac.require(actor, permission, run, audit_action=audit_action)
    return run


def _requester(actor: Principal) -> dict:
    """requested_by is the accountable person (a service account's owner); plus the service account."""
    if actor.kind == PrincipalKind.SERVICE_ACCOUNT:
        return {"requested_by_id": actor.owner_user_id, "requested_by_service_account_id": actor.id}
    if actor.kind == PrincipalKind.USER:
        return {"requested_by_id": actor.id, "requested_by_service_account_id": None}
    return {"requested_by_id": None, "requested_by_service_account_id": None}

"""What the evidence services share: the job's name, the kinds, and a run under its row lock."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.audit import services as audit
from apps.audit.choices import Outcome
from apps.core.errors import Conflict, Denied, NotFound, ValidationFailed
from apps.core.principals import Principal, PrincipalKind
from apps.jobs import events
from apps.jobs import services as jobs
from apps.rbac import services as rbac
from apps.registry.choices import DatasetStatus, VersionStatus
from apps.registry.models import Dataset, ModelVersion

from .choices import FINISHED, REUSABLE, EvidenceKind, RunStatus
from .models import EvidenceFile, EvidenceRun, FindingReview, FindingVerdict
from .parameters import _refuse, kind_parameters
from .runs import cancel_chunk_jobs


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

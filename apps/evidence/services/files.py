"""A run's result files, opened for download."""

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


def evidence_file_download(*, actor: Principal, run_id: Any, name: str) -> tuple[EvidenceFile, Any]:
    """Open one of a run's result files for download; audited ``evidence_file.downloaded``.

    Needs ``evidence.view`` on the run (404 otherwise, audited as denied by the error handlers).
    Returns the file row and an open binary stream the caller closes.
    """
    from apps.core.storage import ObjectMissing, get_storage

    from .selectors import evidence_run_get

    run = evidence_run_get(actor=actor, run_id=run_id)
    # Result files have names the worker chose; anything else (a NUL byte, a path) names no file.
    file = EvidenceFile.objects.filter(run=run, name=name).first() if _FILE_NAME.match(name) else None
    if file is None:
        raise NotFound(f"The run has no file named {name!r}.")
    try:
        stream = get_storage().open(file.key)
    except ObjectMissing:
        raise NotFound(f"The file {name!r} is missing from storage.")
    with transaction.atomic():
        audit.record(
            action="evidence_file.downloaded",
            actor=actor,
            target=file,
            related=run,
            after={"name": file.name, "size": file.size},
            artifact_sha256=file.sha256,
        )
    return file, stream

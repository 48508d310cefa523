"""A run's result files, opened for download."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.audit import services as audit
from apps.core.errors import NotFound
from apps.core.principals import Principal
from apps.core.storage import ObjectMissing, get_storage

from ..models import EvidenceFile
from .common import _FILE_NAME


def evidence_file_download(*, actor: Principal, run_id: Any, name: str) -> tuple[EvidenceFile, Any]:
    """Open one of a run's result files for download; audited ``evidence_file.downloaded``.

    Needs ``evidence.view`` on the run (404 otherwise, audited as denied by the error handlers).
    Returns the file row and an open binary stream the caller closes.
    """
    from ..selectors import evidence_run_get

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

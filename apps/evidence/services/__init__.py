"""Writes for evidence: request a run (or reuse an equal one), cancel it, review its findings, download its files.

``evidence_request`` checks ``evidence.request`` on the subject (a version, or a
dataset), the kind, the subject's readiness and the kind's parameters, then
either returns an existing run with the same inputs and parameters (audited
``evidence_run.reused``) or creates the run and its job in one transaction
(audited ``evidence_run.requested``; the job is sent to a worker after commit).
The worker's state changes are in ``apps.evidence.runs``.

Modules: ``requests`` (a run, reuse, a version's default evidence), ``cancellation``, ``findings``
(a reviewer's verdict), ``files`` (download); ``common`` holds what they share.
"""

from .cancellation import evidence_run_cancel
from .common import AVAILABLE_KINDS, RUN_JOB, WORKER_DEFAULTS, RunFinished
from .files import evidence_file_download
from .findings import evidence_finding_review
from .requests import EvidenceRequested, SubjectNotReady, default_evidence_request, evidence_request, reuse_key

__all__ = [
    "AVAILABLE_KINDS",
    "RUN_JOB",
    "WORKER_DEFAULTS",
    "EvidenceRequested",
    "RunFinished",
    "SubjectNotReady",
    "default_evidence_request",
    "evidence_file_download",
    "evidence_finding_review",
    "evidence_request",
    "evidence_run_cancel",
    "reuse_key",
]

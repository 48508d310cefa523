"""Writes for the registry: models, versions, datasets.

Each service takes an explicit ``actor``, checks ``rbac.require`` on the right
object, writes its rows and its audit event in one transaction, and schedules
verification (a job row, sent to a worker after commit). Uploaded bytes are
checked cheaply (``apps.registry.sniffing``) before anything is stored, and
removed again if the transaction that would reference them fails, so a refused
request leaves no row and no stored bytes. The worker's status changes are in
``apps.registry.verification``.
"""

from .datasets import VERIFY_DATASET, dataset_create, dataset_create_derived, dataset_reverify
from .downloads import dataset_download, version_artifact_download
from .facts import FactsChanged, facts_change_approve, facts_change_cancel, facts_change_reject
from .models import MODEL_EDITABLE, ModelUpdate, facts_change_url, model_create, model_update
from .versions import VERIFY_VERSION, DuplicateArtifact, version_create, version_retire, version_reverify, version_url

__all__ = [
    "MODEL_EDITABLE",
    "VERIFY_DATASET",
    "VERIFY_VERSION",
    "DuplicateArtifact",
    "FactsChanged",
    "ModelUpdate",
    "dataset_create",
    "dataset_create_derived",
    "dataset_download",
    "dataset_reverify",
    "facts_change_approve",
    "facts_change_cancel",
    "facts_change_reject",
    "facts_change_url",
    "model_create",
    "model_update",
    "version_artifact_download",
    "version_create",
    "version_retire",
    "version_reverify",
    "version_url",
]

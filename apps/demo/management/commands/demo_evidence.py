"""Ask for the demo's evidence once the worker has verified what it needs.

    python manage.py demo_evidence [--wait 120]

The run command starts it in the background after the worker. Every ready demo version with an
evaluation dataset gets a bias report (a loaded model is scored on the dataset's feature columns; a
predictions-only version uses its prediction column) and, when it holds a model, an explainability
report (but for credit-scoring v3, whose release request waits for one); every demo dataset gets a
PII scan, and the customer records a scan that also writes a scrubbed copy (card numbers masked,
e-mails hashed, the rest replaced by their entity type). Each is requested by the author of the
version or dataset, as a person would from its page. Waits up to ``--wait`` seconds for
verification. Idempotent: an equal report already asked for is reused, not asked for again.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from apps.accounts.principals import principal_for_service_account, principal_for_user
from apps.audit import context
from apps.core.principals import Principal
from apps.evidence import services as evidence
from apps.registry.choices import ArtifactFormat, DatasetStatus, VersionStatus
from apps.registry.models import Dataset, ModelVersion

from .demo_load import CUSTOMERS, MODELS, dataset_names

# ONNX models are explained by the permutation explainer; a lighter budget keeps the demo's reports quick.
PERMUTATION = {"sample_size": 100, "background_size": 50, "max_evals": 100}
SCRUB = {
    "scrub": True,
    "operators": {"CREDIT_CARD": "mask", "IBAN_CODE": "mask", "EMAIL_ADDRESS": "hash", "PHONE_NUMBER": "mask"},
}


def _versions() -> list[ModelVersion]:
    """The demo's versions with an evaluation dataset: their model is scored on it, or its predictions read."""
    names = [spec["name"] for spec in MODELS]
    return list(
        ModelVersion.objects.filter(model__name__in=names, evaluation_dataset__isnull=False)
        .select_related("model", "evaluation_dataset", "created_by", "created_by_service_account")
        .order_by("model__name", "number")
    )


# (model, version) whose explainability report is left for a person to ask for (demo_releases shows its
# release request waiting for it)
EXPLAIN_LATER = {(spec["name"], spec["explain_later"]) for spec in MODELS if "explain_later" in spec}


def _datasets() -> list[Dataset]:
    """The demo's datasets (the models' training and evaluation data, and the customer records); no copies."""
    return list(
        Dataset.objects.filter(name__in=dataset_names(), source__isnull=True)
        .select_related("created_by", "created_by_service_account")
        .order_by("name")
    )


def _author(obj) -> Principal:
    if obj.created_by_service_account_id:
        return principal_for_service_account(obj.created_by_service_account)
    return principal_for_user(obj.created_by)


class Command(BaseCommand):
    help = "Request the demo's bias, explainability and PII reports once its data is verified (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--wait", type=float, default=120, help="seconds to wait for verification (default 120)")

    def handle(self, *args, **options):
        context.update(source="cli")
        deadline = time.monotonic() + options["wait"]
        while True:
            versions, datasets = _versions(), _datasets()
            pending = [v for v in versions if v.status == VersionStatus.PENDING_VERIFICATION]
            pending += [d for d in datasets if d.status == DatasetStatus.PENDING_VERIFICATION]
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(1)
        asked = 0
        for version in versions:
            if version.status != VersionStatus.READY:
                self.stderr.write(f"{version}: {version.get_status_display().lower()}, no evidence asked for")
                continue
            asked += self._ask(f"{version}: bias", actor=_author(version), kind="bias", version=version)
            explain_later = (version.model.name, version.number) in EXPLAIN_LATER
            if version.format != ArtifactFormat.PREDICTIONS_ONLY and not explain_later:
                parameters = PERMUTATION if version.format == ArtifactFormat.ONNX else {}
                asked += self._ask(
                    f"{version}: explainability",
                    actor=_author(version),
                    kind="explainability",
                    version=version,
                    parameters=parameters,
                )
        for dataset in datasets:
            if dataset.status != DatasetStatus.READY:
                self.stderr.write(f"dataset {dataset.name}: not ready, no PII scan asked for")
                continue
            parameters = SCRUB if dataset.name == CUSTOMERS else {}
            asked += self._ask(
                f"dataset {dataset.name}: pii_scan",
                actor=_author(dataset),
                kind="pii_scan",
                dataset_id=dataset.pk,
                parameters=parameters,
            )
        self.stdout.write(self.style.SUCCESS(f"demo evidence: {asked} report(s) asked for"))

    def _ask(self, label: str, **request) -> int:
        requested = evidence.evidence_request(**request)
        self.stdout.write(f"{label} {'already there' if requested.reused else 'asked for'}")
        return int(not requested.reused)

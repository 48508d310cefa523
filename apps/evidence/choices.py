from django.db import models


class EvidenceKind(models.TextChoices):
    PII_SCAN = "pii_scan", "PII scan"
    BIAS = "bias", "Bias report"
    EXPLAINABILITY = "explainability", "Explainability report"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


# A run in one of these states is (or will be) a result: a new request with the same inputs reuses it.
REUSABLE = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.SUCCEEDED)
FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)

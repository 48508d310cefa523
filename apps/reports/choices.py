from django.db import models


class ReportKind(models.TextChoices):
    RELEASE = "release", "Release report"
    MODEL = "model", "Model report"
    PERIOD = "period", "Period report"
    ACCESS_REVIEW = "access_review", "Access review report"
    TRAIL = "trail", "Audit trail extract"


class ReportFormat(models.TextChoices):
    PDF = "pdf", "Signed PDF"
    HTML = "html", "HTML page"
    PACK = "pack", "Evidence pack (zip)"


class ReportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Ready"
    FAILED = "failed", "Failed"


FINISHED = (ReportStatus.SUCCEEDED, ReportStatus.FAILED)


class ReviewDecision(models.TextChoices):
    PENDING = "pending", "Pending"
    ATTESTED = "attested", "Attested"
    REVOKED = "revoked", "Revoked"

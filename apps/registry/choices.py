from django.db import models


class RiskTier(models.TextChoices):
    MINIMAL = "minimal", "Minimal"
    LIMITED = "limited", "Limited"
    HIGH = "high", "High"
    UNACCEPTABLE = "unacceptable", "Unacceptable"


class DataCategory(models.TextChoices):
    PERSONAL = "personal", "Personal data"
    HEALTH = "health", "Health"
    PAYMENT_CARD = "payment_card", "Payment card"
    BIOMETRIC = "biometric", "Biometric"
    CHILDREN = "children", "Children"
    FINANCIAL = "financial", "Financial"


class VersionStatus(models.TextChoices):
    PENDING_VERIFICATION = "pending_verification", "Pending verification"
    READY = "ready", "Ready"
    INVALID = "invalid", "Invalid"
    RETIRED = "retired", "Retired"


class ArtifactFormat(models.TextChoices):
    ONNX = "onnx", "ONNX"
    SKOPS = "skops", "scikit-learn (skops)"
    XGBOOST = "xgboost", "XGBoost"
    LIGHTGBM = "lightgbm", "LightGBM"
    PREDICTIONS_ONLY = "predictions_only", "Predictions only"


class DatasetFormat(models.TextChoices):
    CSV = "csv", "CSV"
    PARQUET = "parquet", "Parquet"
    JSONL = "jsonl", "JSON Lines"


class DatasetStatus(models.TextChoices):
    PENDING_VERIFICATION = "pending_verification", "Pending verification"
    READY = "ready", "Ready"
    INVALID = "invalid", "Invalid"


class ColumnRole(models.TextChoices):
    FEATURE = "feature", "Feature"
    LABEL = "label", "Label"
    PREDICTION = "prediction", "Prediction"
    SENSITIVE = "sensitive", "Sensitive"
    IDENTIFIER = "identifier", "Identifier"
    TEXT = "text", "Text"


class FactsChangeStatus(models.TextChoices):
    """Where a proposed change to a model's policy facts stands (see ``FactsChange``)."""

    PENDING = "pending", "Pending approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"
    SUPERSEDED = "superseded", "Superseded"

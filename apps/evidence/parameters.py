"""Each evidence kind's parameters: checked, with the defaults filled in from the dataset's column roles.

The web process validates here, before a run exists, so a bad request is a 400 naming
what is wrong and nothing is queued. The filled-in parameters are what the run records
and what its reuse key covers, so two requests that mean the same thing share a run.
Nothing here imports the engines (presidio, shap): the worker checks again with them.
"""

from __future__ import annotations

from typing import Any

from apps.core.errors import ValidationFailed
from apps.registry.choices import ArtifactFormat, ColumnRole
from apps.registry.models import Dataset, ModelVersion

from .choices import EvidenceKind

BIAS_PARAMETERS = ("sensitive_columns", "label_column", "prediction_column", "positive_label", "reference_groups")
PII_PARAMETERS = (
    "columns",
    "entities",
    "score_threshold",
    "language",
    "allow_list",
    "sample_size",
    "scrub",
    "operators",
)
EXPLAIN_PARAMETERS = ("sample_size", "background_size", "max_evals", "rows", "local_count", "seed")

# The entity types the PII engine looks for (PERSON and LOCATION need the spaCy pipeline, which is installed).
PII_ENTITIES = (
    "PERSON",
    "LOCATION",
    "DATE_TIME",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "US_SSN",
    "IBAN_CODE",
    "IP_ADDRESS",
)
PII_OPERATORS = ("redact", "mask", "replace", "hash", "keep")
PII_LANGUAGES = ("en",)
MAX_ALLOW_LIST = 1000
MAX_LOCAL_ROWS = 50


def _refuse(message: str, field: str = "parameters") -> ValidationFailed:
    return ValidationFailed(message, errors={field: [message]})


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _scores_the_model(parameters: dict, dataset: Dataset, version: ModelVersion | None, by_role: dict) -> bool:
    """True when the predictions are to come from scoring the version's model; 400 when they can come from nowhere."""
    if parameters.get("prediction_column") not in (None, "") or by_role.get(ColumnRole.PREDICTION):
        return False
    if version is None:
        raise _refuse(
            f"Dataset {dataset.pk} has no prediction column (role prediction); name one with prediction_column, "
            "or ask for the report on a model version, whose model is then scored on the dataset's feature columns."
        )
    if version.format == ArtifactFormat.PREDICTIONS_ONLY:
        raise _refuse(
            f"Version {version.number} of {version.model.name} holds predictions only, and dataset {dataset.pk} has "
            "no prediction column (role prediction); name one with prediction_column or use a dataset that has one."
        )
    if not by_role.get(ColumnRole.FEATURE):
        raise _refuse(
            f"Dataset {dataset.pk} has neither a prediction column (role prediction) nor feature columns "
            f"(role feature) to score version {version.number} of {version.model.name} on; "
            "declare its feature columns or name a prediction column with prediction_column."
        )
    return True


def bias_parameters(parameters: dict, dataset: Dataset, version: ModelVersion | None = None) -> dict:
    """The bias run's parameters, defaults filled from the dataset's column roles; 400 naming what is wrong.

    Without a prediction column (named or of role prediction), a version with a model artifact
    is scored on the dataset's feature columns (in schema order): the parameters then hold
    ``"predictions": "model"`` and ``feature_columns`` instead of ``prediction_column``.
    """
    unknown = sorted(set(parameters) - set(BIAS_PARAMETERS))
    if unknown:
        raise _refuse(f"Unknown parameter(s) for bias: {', '.join(unknown)}; known: {', '.join(BIAS_PARAMETERS)}.")
    columns = [c.get("name") for c in dataset.schema]
    by_role: dict[str, list[str]] = {}
    for column in dataset.schema:
        by_role.setdefault(column.get("role", ""), []).append(column.get("name"))

    def column(name: str, role: str, missing: str) -> str:
        value = parameters.get(name)
        if value in (None, ""):
            if not by_role.get(role):
                raise _refuse(missing)
            return by_role[role][0]
        if not isinstance(value, str):
            raise _refuse(f"{name}: expected a column name.")
        return value

    label = column(
        "label_column",
        ColumnRole.LABEL,
        f"Dataset {dataset.pk} has no column with role label; name the label column with label_column.",
    )
    scored = _scores_the_model(parameters, dataset, version, by_role)
    features = list(by_role.get(ColumnRole.FEATURE, [])) if scored else []
    prediction = (
        None
        if scored
        else column("prediction_column", ColumnRole.PREDICTION, f"Dataset {dataset.pk} has no prediction column.")
    )
    sensitive = parameters.get("sensitive_columns")
    if sensitive in (None, []):
        sensitive = by_role.get(ColumnRole.SENSITIVE, [])
        if not sensitive:
            raise _refuse(f"Dataset {dataset.pk} has no column with role sensitive; name them with sensitive_columns.")
    if isinstance(sensitive, str):
        sensitive = [sensitive]
    if not isinstance(sensitive, list) or not all(isinstance(s, str) and s for s in sensitive):
        raise _refuse("sensitive_columns: expected a list of column names.")
    sensitive = list(dict.fromkeys(sensitive))
    needed = [label, prediction, *sensitive] if prediction is not None else [label, *sensitive]
    missing = [name for name in needed if name not in columns]
    if missing:
        raise _refuse(
            f"No column named {', '.join(repr(m) for m in dict.fromkeys(missing))} in dataset {dataset.pk} "
            f"(columns: {', '.join(columns) or 'none declared'})."
        )
    positive = parameters.get("positive_label")
    if not _is_scalar(positive):
        raise _refuse("positive_label: expected a single value (text, number or boolean).")
    reference = parameters.get("reference_groups") or {}
    if not isinstance(reference, dict) or not all(_is_scalar(v) for v in reference.values()):
        raise _refuse('reference_groups: expected an object of sensitive column -> group label, e.g. {"sex": "F"}.')
    outside = [name for name in reference if name not in sensitive]
    if outside:
        raise _refuse(f"reference_groups names column(s) that are not sensitive columns: {', '.join(outside)}.")
    result = {
        "sensitive_columns": sensitive,
        "label_column": label,
        "prediction_column": prediction,
        "positive_label": positive,
        "reference_groups": {name: reference[name] for name in sensitive if name in reference},
    }
    if scored:
        del result["prediction_column"]
        result.update(predictions="model", feature_columns=features)
    return result


def _int(parameters: dict, name: str, default: int | None, low: int, high: int) -> int | None:
    value = parameters.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _refuse(f"{name}: expected a whole number from {low} to {high}.")
    return value


def _string_list(parameters: dict, name: str, limit: int) -> list[str]:
    value = parameters.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _refuse(f"{name}: expected a list of non-empty strings.")
    if len(value) > limit:
        raise _refuse(f"{name}: at most {limit} entries.")
    return list(dict.fromkeys(value))


def pii_parameters(parameters: dict, dataset: Dataset) -> dict:
    """The PII scan's parameters; 400 naming what is wrong.

    ``columns`` defaults to every declared column (the worker skips the ones that hold no text);
    ``entities`` to every supported entity type. With ``scrub`` the run also writes a scrubbed
    copy of the dataset, each finding replaced by its entity type's operator (default ``replace``).
    """
    unknown = sorted(set(parameters) - set(PII_PARAMETERS))
    if unknown:
        raise _refuse(f"Unknown parameter(s) for pii_scan: {', '.join(unknown)}; known: {', '.join(PII_PARAMETERS)}.")
    declared = [c.get("name") for c in dataset.schema]
    columns = _string_list(parameters, "columns", 10_000) or declared
    missing = [name for name in columns if name not in declared]
    if missing:
        raise _refuse(
            f"No column named {', '.join(repr(m) for m in missing)} in dataset {dataset.pk} "
            f"(columns: {', '.join(declared) or 'none declared'})."
        )
    entities = _string_list(parameters, "entities", len(PII_ENTITIES)) or list(PII_ENTITIES)
    unsupported = [e for e in entities if e not in PII_ENTITIES]
    if unsupported:
        raise _refuse(f"Unknown entity type(s): {', '.join(unsupported)}; supported: {', '.join(PII_ENTITIES)}.")
    threshold = parameters.get("score_threshold", 0.5)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
        raise _refuse("score_threshold: expected a number from 0 to 1.")
    language = parameters.get("language", "en")
    if language not in PII_LANGUAGES:
        raise _refuse(f"language: only {', '.join(PII_LANGUAGES)} is supported.")
    scrub = parameters.get("scrub", False)
    if not isinstance(scrub, bool):
        raise _refuse("scrub: expected true or false.")
    operators = parameters.get("operators") or {}
    if not isinstance(operators, dict):
        raise _refuse('operators: expected an object of entity type -> operator, e.g. {"EMAIL_ADDRESS": "hash"}.')
    for entity, operator in operators.items():
        if entity not in PII_ENTITIES:
            raise _refuse(f"operators: unknown entity type {entity!r}; supported: {', '.join(PII_ENTITIES)}.")
        if operator not in PII_OPERATORS:
            raise _refuse(f"operators: {entity}: unknown operator {operator!r}; choose {', '.join(PII_OPERATORS)}.")
    if operators and not scrub:
        raise _refuse("operators: only used with scrub: true.")
    return {
        "columns": [name for name in declared if name in columns],
        "entities": [e for e in PII_ENTITIES if e in entities],
        "score_threshold": float(threshold),
        "language": language,
        "allow_list": sorted(_string_list(parameters, "allow_list", MAX_ALLOW_LIST)),
        "sample_size": _int(parameters, "sample_size", 1000, 10, 100_000),
        "scrub": scrub,
        "operators": {e: operators[e] for e in PII_ENTITIES if e in operators} if scrub else {},
    }


def explainability_parameters(parameters: dict, dataset: Dataset, version: ModelVersion | None) -> dict:
    """The explainability report's parameters; 400 naming what is wrong.

    Explains the version's model on the dataset's feature columns (schema order): ``sample_size``
    rows for the global view, ``background_size`` rows as the masker's background, a permutation
    budget of ``max_evals`` model calls per row (default: the engine's, from the feature count),
    and local explanations for ``local_count`` sampled rows plus any ``rows`` named (0-based).
    """
    unknown = sorted(set(parameters) - set(EXPLAIN_PARAMETERS))
    if unknown:
        raise _refuse(
            f"Unknown parameter(s) for explainability: {', '.join(unknown)}; known: {', '.join(EXPLAIN_PARAMETERS)}."
        )
    if version is None:
        raise _refuse("An explainability report explains a model: ask for it on a model version, not a dataset.")
    if version.format == ArtifactFormat.PREDICTIONS_ONLY:
        raise _refuse(
            f"Version {version.number} of {version.model.name} holds predictions only: there is no model to explain."
        )
    features = [c.get("name") for c in dataset.schema if c.get("role") == ColumnRole.FEATURE]
    if not features:
        raise _refuse(
            f"Dataset {dataset.pk} has no feature columns (role feature) to explain the model on; declare them."
        )
    rows = parameters.get("rows") or []
    if (
        not isinstance(rows, list)
        or len(rows) > MAX_LOCAL_ROWS
        or not all(isinstance(r, int) and not isinstance(r, bool) and r >= 0 for r in rows)
    ):
        raise _refuse(f"rows: expected a list of at most {MAX_LOCAL_ROWS} row numbers (0-based).")
    if dataset.row_count is not None:
        outside = [r for r in rows if r >= dataset.row_count]
        if outside:
            raise _refuse(f"rows: dataset {dataset.pk} has {dataset.row_count} rows; no row {outside[0]}.")
    max_evals = _int(parameters, "max_evals", None, 2 * len(features) + 1, 100_000)
    return {
        "feature_columns": features,
        "sample_size": _int(parameters, "sample_size", 200, 1, 5000),
        "background_size": _int(parameters, "background_size", 100, 1, 1000),
        "max_evals": max_evals,
        "rows": sorted(set(rows)),
        "local_count": _int(parameters, "local_count", 5, 0, MAX_LOCAL_ROWS),
        "seed": _int(parameters, "seed", 0, 0, 2**31 - 1),
    }


def kind_parameters(kind: str, parameters: Any, dataset: Dataset, version: ModelVersion | None) -> dict:
    """The parameters of a run of ``kind``, checked and completed."""
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise _refuse("parameters: expected an object.")
    if kind == EvidenceKind.BIAS:
        return bias_parameters(parameters, dataset, version)
    if kind == EvidenceKind.PII_SCAN:
        return pii_parameters(parameters, dataset)
    return explainability_parameters(parameters, dataset, version)

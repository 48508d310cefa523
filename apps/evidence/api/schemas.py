"""OpenAPI descriptions of the evidence summaries (assay.bias/v1, assay.explain/v1, assay.pii/v1).

The summaries are what policies read, so their shape is published in the API schema as well as
in docs/evidence-schemas.md. These are documentation of the engines' output, kept next to the API; the
engines' tests pin the output itself.
"""

from __future__ import annotations

_NUMBER_OR_NULL = {"type": "number", "nullable": True}
_LABEL = {"description": "A group label: text, number, boolean, null (missing), or a list for the intersection."}

_METRICS = {
    name: {"type": "number"}
    for name in (
        "selection_rate",
        "accuracy",
        "precision",
        "recall",
        "true_positive_rate",
        "false_positive_rate",
        "false_negative_rate",
    )
}

_EXTREME = {
    "type": "object",
    "properties": {"value": {"type": "number"}, "groups": {"type": "array", "items": _LABEL}},
}

_BIAS_REPORT = {
    "type": "object",
    "properties": {
        "columns": {"type": "array", "items": {"type": "string"}},
        "n_groups": {"type": "integer"},
        "groups": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "label": _LABEL,
                    "name": {"type": "string"},
                    "count": {"type": "integer"},
                    "tn": {"type": "integer"},
                    "fp": {"type": "integer"},
                    "fn": {"type": "integer"},
                    "tp": {"type": "integer"},
                    **_METRICS,
                },
            },
        },
        "disparities": {
            "type": "object",
            "description": "demographic_parity_difference|ratio, equalized_odds_difference|ratio, "
            "true_positive_rate_difference|ratio, false_positive_rate_difference|ratio.",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "value": _NUMBER_OR_NULL,
                    "metric": {"type": "string"},
                    "max": _EXTREME,
                    "min": _EXTREME,
                },
            },
        },
        "reference": {"type": "object", "nullable": True},
    },
}

BIAS_V1 = {
    "title": "assay.bias/v1",
    "type": "object",
    "properties": {
        "schema": {"type": "string", "enum": ["assay.bias/v1"]},
        "n_rows": {"type": "integer"},
        "positive_label": _LABEL,
        "sensitive_columns": {"type": "array", "items": {"type": "string"}},
        "overall": {"type": "object", "properties": {"count": {"type": "integer"}, **_METRICS}},
        "by_column": {"type": "object", "additionalProperties": _BIAS_REPORT},
        "intersection": {**_BIAS_REPORT, "nullable": True},
    },
}

EXPLAIN_V1 = {
    "title": "assay.explain/v1",
    "type": "object",
    "properties": {
        "schema": {"type": "string", "enum": ["assay.explain/v1"]},
        "method": {"type": "string", "enum": ["tree", "permutation"]},
        "algorithm": {
            "type": "string",
            "enum": ["tree_path_dependent", "tree_interventional", "permutation"],
            "description": "path-dependent TreeSHAP on the library's trees, interventional TreeSHAP on trees "
            "read from an ONNX graph (against background rows), or the permutation estimate",
        },
        "tree_source": {
            "type": "string",
            "nullable": True,
            "description": "native (the library's own trees) or onnx (read from the graph); null for permutation",
        },
        "tree_refusal": {
            "type": "string",
            "nullable": True,
            "description": "why the tree ensemble in an ONNX graph was explained by permutation instead",
        },
        "explainer": {"type": "string"},
        "output": {"type": "string", "enum": ["log_odds", "probability", "raw"]},
        "model": {"type": "object"},
        "feature_names": {"type": "array", "items": {"type": "string"}},
        "n_rows": {"type": "integer"},
        "n_rows_explained": {"type": "integer"},
        "seed": {"type": "integer"},
        "base_value": {"type": "number"},
        "global": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "feature": {"type": "string"},
                    "mean_abs_shap": {"type": "number"},
                    "rank": {"type": "integer"},
                },
            },
        },
        "beeswarm": {
            "type": "object",
            "properties": {
                "features": {"type": "array", "items": {"type": "string"}},
                "points": {"type": "object", "description": "feature -> [[scaled value 0..1 or null, shap], ...]"},
            },
        },
        "local": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "row": {"type": "integer"},
                    "dataset_row": {"type": "integer"},
                    "requested": {"type": "boolean"},
                    "prediction": {"type": "number"},
                    "base_value": {"type": "number"},
                    "contributions": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "feature": {"type": "string"},
                                "value": {"type": "number"},
                                "shap": {"type": "number"},
                            },
                        },
                    },
                },
            },
        },
        "additivity": {
            "type": "object",
            "properties": {
                "checked": {"type": "boolean"},
                "max_abs_error": {"type": "number"},
                "tolerance": {"type": "number"},
                "rtol": {"type": "number"},
                "passed": {"type": "boolean"},
            },
        },
        "budget": {"type": "object"},
        "engine": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

_PII_ENTITY = {
    "type": "object",
    "properties": {
        "entity_type": {"type": "string"},
        "count": {"type": "integer"},
        "rows": {"type": "integer"},
        "share_of_rows": {"type": "number"},
        "score": {"type": "object"},
        "examples": {"type": "array", "items": {"type": "string"}, "description": "masked, never raw values"},
    },
}

PII_V1 = {
    "title": "assay.pii/v1",
    "type": "object",
    "properties": {
        "schema": {"type": "string", "enum": ["assay.pii/v1"]},
        "engine": {"type": "object"},
        "parameters": {"type": "object"},
        "n_rows": {"type": "integer"},
        "columns": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "role": {"type": "string"},
                    "kind": {"type": "string"},
                    "entities": {"type": "array", "items": _PII_ENTITY},
                },
            },
        },
        "findings": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string", "description": "<column>:<ENTITY_TYPE>, what reviews name"},
                    "column": {"type": "string"},
                    "entity_type": {"type": "string"},
                    "count": {"type": "integer"},
                    "rows": {"type": "integer"},
                    "share_of_rows": {"type": "number"},
                    "max_score": {"type": "number"},
                },
            },
        },
        "totals": {"type": "object"},
        "columns_with_pii": {"type": "array", "items": {"type": "string"}},
        "has_pii": {"type": "boolean"},
        "scrubbed_dataset": {
            "type": "object",
            "nullable": True,
            "properties": {"id": {"type": "integer"}, "sha256": {"type": "string"}, "rows": {"type": "integer"}},
        },
    },
}

SUMMARY = {
    "nullable": True,
    "description": "The kind's versioned summary once the run succeeded (every field: docs/evidence-schemas.md).",
    "oneOf": [BIAS_V1, EXPLAIN_V1, PII_V1],
}

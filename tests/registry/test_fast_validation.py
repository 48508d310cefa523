"""The plain-JSON fast path of a version registration's input agrees with DRF's own validation.

``VersionCreateInput.fast_validated`` either declines (None), and DRF validates as before, or
returns exactly what DRF would have put in ``validated_data``; it never accepts what DRF refuses.
"""

from __future__ import annotations

import pytest

from apps.registry.api.serializers import VersionCreateInput

SHA = "ab" * 32

CASES = [
    {},
    {"artifact_uri": "s3://ml-exports/churn/model.onnx", "sha256": SHA, "format": "onnx"},
    {"artifact_uri": "s3://ml-exports/churn/model.onnx", "format": "onnx", "description": "v2, retrained"},
    {"format": "predictions_only", "evaluation_dataset": 7},
    {"format": "predictions_only", "evaluation_dataset": None},
    {"format": "predictions_only", "evaluation_dataset": 0},
    {"format": "predictions_only", "evaluation_dataset": True},
    {"format": "predictions_only", "evaluation_dataset": "7"},
    {"format": "predictions_only", "evaluation_dataset": 7.0},
    {"format": "predictions_only", "evaluation_dataset": 10**1000},
    {"format": "predictions_only", "evaluation_dataset": 2**63},
    {"format": ""},
    {"format": "pickle"},
    {"format": None},
    {"format": 3},
    {"sha256": ""},
    {"sha256": " " + SHA},
    {"sha256": SHA + "\n"},
    {"sha256": "x" * 71},
    {"sha256": "x" * 72},
    {"sha256": None},
    {"sha256": 12345},
    {"description": "ünïcødé text"},
    {"description": "line one\nline two"},
    {"description": "nul \x00 inside"},
    {"description": "   "},
    {"source_commit": "f" * 64},
    {"source_commit": "f" * 65},
    {"ci_run_url": "https://ci.example/run/42", "source_repository": "git@example:ml/churn.git"},
    {"metrics": {"auc": 0.91, "f1": 0.8}},
    {"metrics": {}},
    {"metrics": None},
    {"metrics": [1, 2]},
    {"metrics": '{"auc": 0.9}'},
    {"model_card": {"owner": "ml-team", "nested": {"a": [1, 2]}}},
    {"training_datasets": [1, 2]},
    {"training_datasets": []},
    {"artifact_uri": "s3://" + "k" * 1020},
    {"artifact_uri": "s3://" + "k" * 1019},
    {"unknown_field": "ignored", "format": "onnx"},
]


@pytest.mark.parametrize("data", CASES, ids=[str(i) for i in range(len(CASES))])
def test_the_fast_path_returns_what_drf_returns_or_declines(data):
    # given DRF's own verdict on the body
    serializer = VersionCreateInput(data=data)
    valid = serializer.is_valid()

    # when the fast path looks at it
    fast = VersionCreateInput.fast_validated(data)

    # then it declined, or it accepted a valid body with DRF's exact result
    if fast is not None:
        assert valid, f"the fast path accepted what DRF refuses: {serializer.errors}"
        assert fast == dict(serializer.validated_data)


def test_the_common_registration_bodies_take_the_fast_path():
    # the bodies CI pipelines send: a reference with its digest, and one with lineage and metrics
    plain = {"artifact_uri": "s3://ml-exports/churn/model.onnx", "sha256": SHA, "format": "onnx"}
    rich = {
        **plain,
        "description": "weekly retrain",
        "metrics": {"auc": 0.91},
        "source_repository": "https://git.example/ml/churn",
        "source_commit": "a" * 40,
        "ci_run_url": "https://ci.example/run/42",
        "model_card": {"intended_use": "churn scoring"},
    }
    for body in (plain, rich):
        assert VersionCreateInput.fast_validated(body) is not None, body


def test_a_form_body_is_left_to_drf():
    from django.http import QueryDict

    assert VersionCreateInput.fast_validated(QueryDict("format=onnx")) is None
    assert VersionCreateInput.fast_validated([{"format": "onnx"}]) is None

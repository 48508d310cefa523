"""The evidence worker on real dataset files: a bias run end to end, failures in words, idempotency."""

from __future__ import annotations

import pyarrow as pa
import pytest

from apps.audit.models import AuditEvent
from apps.evidence import services
from apps.evidence.models import EvidenceRun
from apps.jobs.models import JobStatus
from tests.evidence.conftest import scored_rows
from worker.engines import bias

pytestmark = pytest.mark.django_db


def _run_events(run: EvidenceRun) -> list[str]:
    return list(
        AuditEvent.objects.filter(target_type="evidence_run", target_id=str(run.public_id))
        .order_by("id")
        .values_list("action", flat=True)
    )


def _request(actor, **kwargs) -> EvidenceRun:
    return services.evidence_request(actor=actor, kind="bias", **kwargs).run


def test_a_bias_run_on_a_version_computes_the_engines_summary(
    contributor_principal, version, dataset, run, api_client_for, contributor
):
    # given a predictions-only version whose evaluation dataset has two sensitive columns
    rows = scored_rows()
    evidence = _request(contributor_principal, version=("churn", 1))
    # when a worker runs the job
    assert run(evidence.job_id) == "succeeded"
    # then the run succeeded with the engine's own summary of the same data
    evidence.refresh_from_db()
    assert evidence.status == "succeeded" and evidence.error == ""
    expected = bias.bias_summary(
        pa.array([r["label"] for r in rows]),
        pa.array([r["prediction"] for r in rows]),
        {"sex": pa.array([r["sex"] for r in rows]), "region": pa.array([r["region"] for r in rows])},
    )
    assert evidence.summary == expected
    assert evidence.summary["schema"] == "assay.bias/v1" and evidence.summary["n_rows"] == 400
    # and one number agrees with a count by hand: the selection rate of the women
    women = [r for r in rows if r["sex"] == "F"]
    group = next(g for g in evidence.summary["by_column"]["sex"]["groups"] if g["label"] == "F")
    assert group["count"] == len(women)
    assert group["selection_rate"] == sum(r["prediction"] for r in women) / len(women)
    assert group["tp"] == sum(1 for r in women if r["label"] == 1 and r["prediction"] == 1)
    # and the run records what computed it, from which bytes
    assert set(evidence.engine_versions) == {"numpy", "pyarrow", "fairlearn"}
    assert evidence.engine_versions["pyarrow"] == pa.__version__
    assert evidence.input_digests["dataset"] == dataset.sha256
    assert evidence.finished_at is not None and evidence.started_at is not None
    evidence.job.refresh_from_db()
    assert (evidence.job.status, evidence.job.progress) == (JobStatus.SUCCEEDED, 100)
    assert _run_events(evidence) == ["evidence_run.requested", "evidence_run.started", "evidence_run.succeeded"]
    started = AuditEvent.objects.get(action="evidence_run.started", target_id=str(evidence.public_id))
    assert started.actor_type == "system"
    # and the API shows the finished report
    body = api_client_for(contributor).get(f"/api/v1/evidence/{evidence.public_id}/").json()
    assert body["status"] == "succeeded" and body["progress"] == 100 and body["summary"] == expected


def test_a_reference_group_and_a_positive_label_given_as_text_match_the_columns_types(
    contributor_principal, dataset, run
):
    rows = scored_rows()
    evidence = _request(
        contributor_principal,
        dataset_id=dataset.pk,
        parameters={"sensitive_columns": ["sex"], "positive_label": "1", "reference_groups": {"sex": "M"}},
    )
    assert run(evidence.job_id) == "succeeded"
    evidence.refresh_from_db()
    assert evidence.status == "succeeded", evidence.error
    expected = bias.bias_summary(
        [r["label"] for r in rows],
        [r["prediction"] for r in rows],
        {"sex": [r["sex"] for r in rows]},
        positive_label=1,
        reference={"sex": "M"},
    )
    assert evidence.summary == expected
    assert evidence.summary["by_column"]["sex"]["reference"]["label"] == "M"


def test_labels_that_are_not_binary_fail_the_run_in_words_and_the_job_succeeds(
    contributor_principal, make_dataset, run
):
    # given labels "yes"/"no" and no positive label named
    dataset = make_dataset(scored_rows(labels=("no", "yes")), name="worded")
    evidence = _request(contributor_principal, dataset_id=dataset.pk)
    # when
    assert run(evidence.job_id) == "succeeded"
    # then
    evidence.refresh_from_db()
    assert evidence.status == "failed" and evidence.summary is None
    assert evidence.error.startswith("labels are not binary")
    assert "name the positive label" in evidence.error and "Traceback" not in evidence.error
    assert _run_events(evidence) == ["evidence_run.requested", "evidence_run.started", "evidence_run.failed"]
    failed = AuditEvent.objects.get(action="evidence_run.failed", target_id=str(evidence.public_id))
    assert failed.outcome == "failed" and failed.reason == evidence.error
    # and naming the positive label is a different request, which succeeds
    named = _request(contributor_principal, dataset_id=dataset.pk, parameters={"positive_label": "yes"})
    assert named.pk != evidence.pk
    run(named.job_id)
    named.refresh_from_db()
    assert named.status == "succeeded" and named.summary["positive_label"] == "yes"


def test_a_failed_run_is_not_reused(contributor_principal, make_dataset, run):
    dataset = make_dataset(scored_rows(labels=("no", "yes")), name="worded")
    first = _request(contributor_principal, dataset_id=dataset.pk)
    run(first.job_id)
    again = services.evidence_request(actor=contributor_principal, kind="bias", dataset_id=dataset.pk)
    assert again.reused is False and again.run.pk != first.pk


def test_a_succeeded_run_is_reused(contributor_principal, version, run):
    first = _request(contributor_principal, version=("churn", 1))
    run(first.job_id)
    again = services.evidence_request(actor=contributor_principal, kind="bias", version=("churn", 1))
    assert again.reused is True and again.run.pk == first.pk


def test_running_the_job_twice_is_a_no_op(contributor_principal, version, run, audit_mark):
    evidence = _request(contributor_principal, version=("churn", 1))
    run(evidence.job_id)
    from apps.jobs.models import Job

    # a duplicate delivery after the job was put back in the queue finds the run finished
    Job.objects.filter(pk=evidence.job_id).update(status=JobStatus.QUEUED)
    mark = audit_mark()
    assert run(evidence.job_id) == "succeeded"
    assert mark.actions(action__startswith="evidence_run.") == []
    evidence.job.refresh_from_db()
    assert evidence.job.result == {"skipped": "the run is already finished"}


def test_bytes_changed_since_the_request_fail_the_run(contributor_principal, dataset, run):
    evidence = _request(contributor_principal, dataset_id=dataset.pk)
    EvidenceRun.objects.filter(pk=evidence.pk).update(input_digests={"dataset": "0" * 64})
    run(evidence.job_id)
    evidence.refresh_from_db()
    assert evidence.status == "failed"
    assert evidence.error.startswith("the dataset's bytes changed since the run was requested")


def test_an_unexpected_error_fails_the_job_and_the_run_says_internal_error(
    contributor_principal, dataset, run, monkeypatch, caplog
):
    # given an engine that breaks (fault injection: nothing in the data causes this)
    def broken(*args, **kwargs):
        raise RuntimeError("division by a cosmic ray")

    monkeypatch.setattr(bias, "summary", broken)
    evidence = _request(contributor_principal, dataset_id=dataset.pk)
    # when
    assert run(evidence.job_id) == "failed"
    # then the run says so in words, the traceback only in the log
    evidence.refresh_from_db()
    assert evidence.status == "failed" and evidence.error == "internal error"
    evidence.job.refresh_from_db()
    assert evidence.job.status == JobStatus.FAILED and "cosmic ray" not in evidence.job.error
    assert "cosmic ray" in caplog.text
    assert _run_events(evidence)[-1] == "evidence_run.failed"

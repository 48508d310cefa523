"""Large runs in chunks: planned by the run's job, computed by one job per chunk, merged exactly by the last."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.evidence import services
from apps.evidence.models import EvidenceChunk, EvidenceRun
from apps.jobs.models import Job, JobStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def chunked(settings):
    """Runs on more than 150 rows are split into chunks of 150 (the suite's datasets have 400)."""
    settings.ASSAY_EVIDENCE_CHUNK_ROWS = 150


def _bias(actor, **kwargs) -> EvidenceRun:
    return services.evidence_request(actor=actor, kind="bias", **kwargs).run


def test_a_large_bias_run_is_merged_from_its_chunks_into_the_one_pass_summary(
    contributor_principal, version, run, settings, chunked, api_client_for, contributor
):
    # given the one-pass summary of the version's evaluation data
    settings.ASSAY_EVIDENCE_CHUNK_ROWS = 10_000
    whole = _bias(contributor_principal, version=("churn", 1))
    assert run(whole.job_id) == "succeeded"
    whole.refresh_from_db()
    settings.ASSAY_EVIDENCE_CHUNK_ROWS = 150
    # when the same report is computed again on 150-row chunks
    evidence = _bias(contributor_principal, version=("churn", 1), rerun=True)
    assert run(evidence.job_id) == "succeeded"
    # then the run's job planned three chunks, each with its own queued job, and the run is running
    chunks = list(EvidenceChunk.objects.filter(run=evidence).order_by("index"))
    assert [(c.row_start, c.row_stop) for c in chunks] == [(0, 150), (150, 300), (300, 400)]
    assert {c.job.status for c in chunks} == {JobStatus.QUEUED}
    evidence.refresh_from_db()
    assert evidence.status == "running"
    body = api_client_for(contributor).get(f"/api/v1/evidence/{evidence.public_id}/").json()
    assert body["message"] == "0 of 3 chunks done"
    # when the chunks are computed, last one first
    assert run(chunks[2].job_id) == "succeeded"
    assert run(chunks[0].job_id) == "succeeded"
    evidence.refresh_from_db()
    assert evidence.status == "running"  # one chunk still to go
    body = api_client_for(contributor).get(f"/api/v1/evidence/{evidence.public_id}/").json()
    assert body["message"] == "2 of 3 chunks done" and body["progress"] >= 66
    assert run(chunks[1].job_id) == "succeeded"
    # then the last chunk merged them: the summary is the one-pass summary exactly
    evidence.refresh_from_db()
    assert evidence.status == "succeeded"
    assert evidence.summary == whole.summary
    assert [f.name for f in evidence.files.all()] == ["group_metrics.csv"]
    # and the partials were dropped once merged (a PII partial holds fingerprints of sampled values)
    assert list(EvidenceChunk.objects.filter(run=evidence).values_list("partial", flat=True)) == [None] * 3
    actions = list(
        AuditEvent.objects.filter(target_type="evidence_run", target_id=str(evidence.public_id))
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == [
        "evidence_run.requested",
        "evidence_run.started",
        "evidence_run.chunked",
        "evidence_run.succeeded",
    ]


def test_a_chunk_run_twice_and_a_planning_job_run_again_change_nothing(contributor_principal, dataset, run, chunked):
    evidence = _bias(contributor_principal, dataset_id=dataset.pk)
    assert run(evidence.job_id) == "succeeded"
    first = list(EvidenceChunk.objects.filter(run=evidence).order_by("index"))
    # the planning job again (its worker died after committing the plan): the same chunks, no new jobs
    evidence.job.status = JobStatus.QUEUED
    Job.objects.filter(pk=evidence.job_id).update(status=JobStatus.QUEUED)
    assert run(evidence.job_id) == "succeeded"
    assert list(EvidenceChunk.objects.filter(run=evidence).order_by("index")) == first
    # a chunk computed, then its job delivered again: skipped, its partial kept
    assert run(first[0].job_id) == "succeeded"
    stored = EvidenceChunk.objects.get(pk=first[0].pk).partial
    Job.objects.filter(pk=first[0].job_id).update(status=JobStatus.QUEUED)
    assert run(first[0].job_id) == "succeeded"
    assert EvidenceChunk.objects.get(pk=first[0].pk).partial == stored
    assert Job.objects.get(pk=first[0].job_id).result == {"skipped": "the chunk or its run is already finished"}


def test_a_chunk_whose_data_is_bad_fails_the_run_and_cancels_the_other_chunks(
    contributor_principal, make_dataset, run, chunked
):
    # given labels that are not binary, beyond the first chunk only
    from tests.evidence.conftest import scored_rows

    rows = scored_rows()
    for row in rows[200:]:
        row["label"] = 7
    dataset = make_dataset(rows, name="bad-tail")
    evidence = _bias(contributor_principal, dataset_id=dataset.pk)
    assert run(evidence.job_id) == "succeeded"
    chunks = list(EvidenceChunk.objects.filter(run=evidence).order_by("index"))
    # when the second chunk meets them
    assert run(chunks[1].job_id) == "succeeded"  # the job did its work: the run failed for a reason
    # then the run failed in words and the chunks not yet computed were cancelled with their jobs
    evidence.refresh_from_db()
    assert evidence.status == "failed" and "not binary" in evidence.error
    for chunk in EvidenceChunk.objects.filter(pk__in=[chunks[0].pk, chunks[2].pk]):
        assert chunk.status == "cancelled" and chunk.job.status == JobStatus.CANCELLED
    assert run(chunks[0].job_id) == "skipped"


def test_cancelling_a_chunked_run_cancels_every_chunk(contributor_principal, dataset, run, chunked):
    evidence = _bias(contributor_principal, dataset_id=dataset.pk)
    assert run(evidence.job_id) == "succeeded"
    chunks = list(EvidenceChunk.objects.filter(run=evidence).order_by("index"))
    assert run(chunks[0].job_id) == "succeeded"
    services.evidence_run_cancel(actor=contributor_principal, run_id=evidence.public_id)
    statuses = {c.status for c in EvidenceChunk.objects.filter(run=evidence)}
    assert statuses == {"succeeded", "cancelled"}
    assert {Job.objects.get(pk=c.job_id).status for c in chunks[1:]} == {JobStatus.CANCELLED}
    for chunk in chunks[1:]:
        assert run(chunk.job_id) == "skipped"
    evidence.refresh_from_db()
    assert evidence.status == "cancelled" and evidence.summary is None

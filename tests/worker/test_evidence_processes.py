"""Evidence runs across real worker processes: a killed worker's run resumes elsewhere; chunks merge exactly.

The workers are ``celery worker`` subprocesses on the suite's database and broker (see
``tests/worker/test_processes.py``, whose harness this reuses), sharing this test's artifact
folder. Nothing is mocked: the workers fetch the stored bytes, load the models and run shap and
presidio themselves.
"""

from __future__ import annotations

import io

import pyarrow.csv as pacsv
import pytest

from apps.accounts.principals import principal_for_user
from apps.audit.models import AuditEvent
from apps.demo import artifacts as demo
from apps.demo import customers
from apps.evidence import services as evidence
from apps.evidence.models import EvidenceChunk, EvidenceRun
from apps.jobs import services as jobs
from apps.jobs.models import FINISHED, Job, JobStatus
from apps.registry import services as registry
from apps.registry.models import Dataset, ModelVersion
from tests.registry.fixtures import upload
from tests.worker.test_processes import LEASE_SECONDS, job_state, wait_for, workers  # noqa: F401 - fixture

pytestmark = [
    pytest.mark.broker,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(240),
]

FEATURES = ["income", "tenure", "balance", "visits"]


@pytest.fixture
def author(make_user, team):
    user = make_user("contributor", team=team, member_of=[team])
    return principal_for_user(user)


@pytest.fixture
def shared_storage(workers, settings):  # noqa: F811 - the fixture imported above
    """The workers read and write this test's artifact folder."""
    workers.env["ASSAY_STORAGE_URL"] = settings.ASSAY_STORAGE_URL
    return workers


def _ready(obj, what: str):
    model = type(obj)
    return wait_for(
        f"the {what} to be verified",
        lambda: model.objects.filter(pk=obj.pk, status="ready").first(),
        timeout=60,
        state=lambda: str(model.objects.filter(pk=obj.pk).values("status", "status_reason").first()),
    )


def _run_state(run: EvidenceRun):
    def describe() -> str:
        row = EvidenceRun.objects.filter(pk=run.pk).values("status", "error").first()
        return f"run {row}; {job_state(Job.objects.get(pk=run.job_id))()}"

    return describe


def test_an_explainability_run_whose_worker_is_killed_resumes_on_another_worker(shared_storage, author, team):
    # given a worker, and an ONNX version on 300 evaluation rows that it has verified
    shared_storage.start("first")
    data = demo.make_data(11, FEATURES, rows=300)
    dataset = registry.dataset_create(
        actor=author, name="eval", owner_team=team, file=upload(data.csv_bytes(), "eval.csv"), schema=data.schema()
    )
    registry.model_create(actor=author, name="churn", owner_team=team)
    version = registry.version_create(
        actor=author,
        model_name="churn",
        artifact=upload(demo.onnx_logistic(data), "model.onnx"),
        format="onnx",
        evaluation_dataset_id=dataset.pk,
    )
    _ready(dataset, "dataset")
    _ready(version, "version")
    # and a permutation explanation slow enough to be caught in the middle
    run = evidence.evidence_request(
        actor=author,
        kind="explainability",
        version=ModelVersion.objects.get(pk=version.pk),
        parameters={"sample_size": 80, "background_size": 50, "max_evals": 200},
    ).run
    wait_for(
        "the worker to be explaining",
        lambda: Job.objects.filter(pk=run.job_id, progress__gt=35, status=JobStatus.RUNNING).exists(),
        timeout=120,
        state=_run_state(run),
    )
    # when the worker is killed mid-run
    shared_storage.kill("first")
    run.refresh_from_db()
    assert run.status == "running"
    # then, once its lease expires, the sweeper puts the job back, and a second worker finishes the run
    wait_for("the sweeper to re-queue the job", lambda: jobs.job_sweep(), timeout=LEASE_SECONDS * 10)
    shared_storage.start("second")
    wait_for(
        "the run to finish",
        lambda: EvidenceRun.objects.filter(pk=run.pk, status__in=["succeeded", "failed"]).exists(),
        timeout=150,
        state=_run_state(run),
    )
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.summary["method"] == "permutation" and run.summary["additivity"]["passed"]
    assert run.summary["n_rows_explained"] == 80
    # the job is marked finished just after its task has finished the run
    job = wait_for("the run's job to finish", lambda: Job.objects.filter(pk=run.job_id, status__in=FINISHED).first())
    assert job.attempts == 2 and job.status == JobStatus.SUCCEEDED
    actions = list(
        AuditEvent.objects.filter(target_id=str(run.public_id)).order_by("id").values_list("action", flat=True)
    )
    assert actions == [
        "evidence_run.requested",
        "evidence_run.started",
        "evidence_run.started",  # the second worker took the interrupted run over
        "evidence_run.succeeded",
    ]
    assert AuditEvent.objects.filter(action="job.requeued", target_id=str(job.pk)).count() == 1
    assert [f.name for f in run.files.all()] == ["shap_values.csv"]


def test_a_chunked_pii_scan_on_two_workers_equals_the_single_pass(shared_storage, author, team, settings, tmp_path):
    # given two workers that split PII scans into 100-row chunks, and 300 customer records
    shared_storage.env["ASSAY_EVIDENCE_CHUNK_ROWS"] = "100"
    shared_storage.start("a", "b")
    table, _ = customers.customer_table(300, seed=5)
    out = io.BytesIO()
    pacsv.write_csv(table, out)
    dataset = registry.dataset_create(
        actor=author,
        name="customers",
        owner_team=team,
        file=upload(out.getvalue(), "customers.csv"),
        schema=customers.column_schema(),
    )
    _ready(dataset, "dataset")
    # when a scan is asked for
    run = evidence.evidence_request(actor=author, kind="pii_scan", dataset_id=dataset.pk).run
    wait_for(
        "the chunked run to finish",
        lambda: EvidenceRun.objects.filter(pk=run.pk, status__in=["succeeded", "failed"]).exists(),
        timeout=150,
        state=_run_state(run),
    )
    # then it was computed in three chunks, each by its own job, merged once
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    chunks = list(EvidenceChunk.objects.filter(run=run).order_by("index"))
    assert [(c.row_start, c.row_stop, c.status) for c in chunks] == [
        (0, 100, "succeeded"),
        (100, 200, "succeeded"),
        (200, 300, "succeeded"),
    ]
    # the last chunk's job merges the run inside its task and is marked finished just after
    # returning, so the run can read succeeded a moment before that job does
    chunk_jobs = Job.objects.filter(pk__in=[c.job_id for c in chunks])
    wait_for("the chunks' jobs to finish", lambda: not chunk_jobs.exclude(status__in=FINISHED).exists(), timeout=30)
    assert {job.status for job in chunk_jobs} == {JobStatus.SUCCEEDED}
    assert AuditEvent.objects.filter(action="evidence_run.succeeded", target_id=str(run.public_id)).count() == 1
    # and the merged summary is the one a single pass over the same file gives
    from worker import compute

    path = tmp_path / "customers.csv"
    path.write_bytes(out.getvalue())
    stored = Dataset.objects.get(pk=dataset.pk)
    single, _ = compute.compute_pii(path, "csv", run.parameters, stored.schema, 300, lambda *_: None)
    assert run.summary == single

"""What the end-to-end rollout tests share: real ONNX models, and the workers' loop run in this process.

``drive`` does what the workers do: the periodic tick queues every rollout that is due, and each queued
``deployments.advance`` job runs through the real job runner (``worker.runner.run_job``), until the
deployment reaches one of the states asked for with its target converged.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

from apps.deployments import services
from apps.deployments.models import Deployment
from apps.jobs.models import Job, JobStatus
from tests.registry.artifacts import training_data
from worker.runner import run_job


@functools.cache
def onnx_model(features: int = 4, seed: int = 0) -> bytes:
    """A logistic regression on ``features`` inputs, converted with skl2onnx (no ZipMap)."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x, y = training_data(features=features, seed=seed)
    model = LogisticRegression().fit(x, y)
    return to_onnx(model, x[:1], options={"zipmap": False}).SerializeToString()


def run_due_jobs() -> int:
    """Tick once, then run every queued rollout job; how many ran."""
    services.deployments_enqueue_due()
    ran = 0
    for job_id in Job.objects.filter(kind=services.ADVANCE_JOB, status=JobStatus.QUEUED).values_list("pk", flat=True):
        run_job(job_id)
        ran += 1
    return ran


def drive(
    deployment: Deployment,
    *,
    until: tuple[str, ...],
    timeout: float = 60.0,
    between: Callable[[], None] | None = None,
    pause: float = 0.2,
    phase: str = "",
) -> Deployment:
    """Run the rollout's jobs (and ``between``, e.g. traffic) until its state is one of ``until``, converged
    (and, when given, in ``phase``)."""
    deadline = time.monotonic() + timeout
    while True:
        deployment.refresh_from_db()
        if deployment.state in until and deployment.converged and (not phase or deployment.phase == phase):
            return deployment
        if time.monotonic() > deadline:
            raise AssertionError(
                f"deployment {deployment.public_id} is {deployment.state} ({deployment.phase}, step "
                f"{deployment.step_index}): {deployment.message}; wanted {until}"
            )
        run_due_jobs()
        if between is not None:
            between()
        time.sleep(pause)

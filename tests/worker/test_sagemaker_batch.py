"""Batch plans on an AWS target (worker/drivers/sagemaker/batch.py): AWS Batch job definitions, against
moto_server's AWS Batch (RegisterJobDefinition, DescribeJobDefinitions, DeregisterJobDefinition; moto keeps
the definitions as AWS does, and runs no job)."""

from __future__ import annotations

import pytest

from apps.deployments.plans import LABEL_FENCE, LABEL_VERSION_ID, DriverError, Plan, StaleFence
from tests.worker.sagemaker_fixtures import (
    IMAGES,
    Requests,
    aws_client,
    driver,
    member,
)

pytestmark = [pytest.mark.service, pytest.mark.slow]

GPU_JOB = {"vcpus": 4, "memory_mb": 16384, "gpus": 1, "command": ["python", "-m", "assay_score"]}


def nightly(*members, fence: int) -> Plan:
    return Plan(
        service="credit-scoring-nightly",
        model="credit-scoring",
        members=tuple(members),
        fence=fence,
        kind="batch",
        schedule="0 2 * * *",
    )


def _active(moto) -> list[dict]:
    batch = aws_client(moto, "batch")
    found = batch.describe_job_definitions(jobDefinitionName="credit-scoring-nightly", status="ACTIVE")
    return sorted(found["jobDefinitions"], key=lambda d: d["revision"])


def test_a_batch_plan_registers_a_job_definition_with_the_model_digest_and_a_gpu(moto):
    """Against moto_server's AWS Batch."""
    # given a target whose scoring jobs take a GPU
    drv = driver(moto, batch=GPU_JOB)
    version = member("3", 100, uri="s3://assay-models/credit-scoring/3/model.onnx")

    # when a batch plan is applied
    drv.apply(nightly(version, fence=2))

    # then one active job definition runs the ONNX image with the model's URI and digest and one GPU
    [definition] = _active(moto)
    container = definition["containerProperties"]
    assert container["image"] == IMAGES["onnx"] and container["command"] == GPU_JOB["command"]
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["ASSAY_MODEL_URI"] == version.artifact_uri and env["ASSAY_MODEL_SHA256"] == version.digest
    assert env["ASSAY_SCHEDULE"] == "0 2 * * *"
    assert {(r["type"], r["value"]) for r in container["resourceRequirements"]} == {
        ("VCPU", "4"),
        ("MEMORY", "16384"),
        ("GPU", "1"),
    }
    assert definition["tags"][LABEL_FENCE] == "2" and definition["tags"][LABEL_VERSION_ID] == "ver3"


def test_the_same_batch_plan_registers_nothing_and_a_new_version_replaces_the_revision(moto):
    """Against moto_server's AWS Batch: revisions and their status."""
    drv = driver(moto, batch=GPU_JOB)
    drv.apply(nightly(member("3", 100), fence=2))

    # the same plan again: nothing registered
    batch_calls = Requests(drv)
    drv.apply(nightly(member("3", 100), fence=2))
    assert [d["revision"] for d in _active(moto)] == [1]
    assert batch_calls.changing() == []

    # a new version under a newer fence: a new revision, the old one deregistered
    drv.apply(nightly(member("4", 100), fence=3))
    [definition] = _active(moto)
    assert definition["revision"] == 2 and definition["tags"][LABEL_VERSION_ID] == "ver4"

    # an older fence is refused
    with pytest.raises(StaleFence, match="fence 3"):
        drv.apply(nightly(member("3", 100), fence=2))
    assert [d["revision"] for d in _active(moto)] == [2]


def test_a_batch_plan_scores_with_one_version(moto):
    """Refused before any call to moto_server."""
    drv = driver(moto, batch=GPU_JOB)
    with pytest.raises(DriverError, match="exactly one version"):
        drv.apply(nightly(member("3", 60), member("4", 40), fence=1))
    assert _active(moto) == []

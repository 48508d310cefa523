# ruff: noqa: F811 - pytest fixtures imported from other modules are parameters here
"""A rollout end to end on a SageMaker target: the real engine, the real driver, servers standing in for AWS.

The approved version's artifact is stored in a real S3-compatible server (Ceph RADOS Gateway,
``scripts/services/s3.sh``, started by ``.ci/run``): the governance re-check re-hashes it from there before
the apply, and the driver hands SageMaker its ``s3://`` URI. SageMaker and CloudWatch are ``moto_server``, a
real process answering AWS's HTTP APIs: CreateModel, CreateEndpointConfig, CreateEndpoint (its endpoints are
in service at once), tags, and the metrics the step is judged on (the test publishes them with
PutMetricData, as SageMaker would). moto_server does not implement UpdateEndpoint, so a second version's
rollout onto the endpoint is not run here (tests/worker/test_sagemaker_driver.py checks those requests
against botocore's service model). The rollout's jobs run through the real job runner, as workers run them.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apps.deployments import services
from apps.deployments.choices import DeploymentState, Phase
from tests.deployments.conftest import stored_version, who
from tests.deployments.serving import drive
from tests.registry.fixtures import s3  # noqa: F401 - a real S3-compatible server as the artifact storage
from tests.worker.sagemaker_fixtures import ROLE, SECRETS, aws_client, moto, moto_process  # noqa: F401

pytestmark = [
    pytest.mark.slow,
    pytest.mark.service,
    pytest.mark.django_db,
    pytest.mark.timeout(240),
    pytest.mark.embedded_pass,
]


@pytest.fixture(autouse=True)
def _quick_rollouts(settings):
    settings.ASSAY_DEPLOY_POLL_SECONDS = 0.2
    settings.ASSAY_DEPLOY_READY_TIMEOUT_SECONDS = 20


@pytest.fixture
def endpoint_target(admin, staging, moto):
    return services.target_create(
        actor=who(admin),
        name="sagemaker-eu",
        kind="sagemaker",
        environment="staging",
        settings={
            "region": "eu-west-1",
            "endpoint_url": moto.url,
            "execution_role_arn": ROLE,
            "images": {"onnx": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/assay-serve-onnx:1.4"},
            "instance_type": "ml.g4dn.xlarge",
        },
        credentials=dict(SECRETS),
    )


def test_an_approved_version_goes_to_a_sagemaker_endpoint_judged_on_its_cloudwatch_figures(
    s3, endpoint_target, moto, model, author, approve, start, audit_mark
):
    # given an approved version whose artifact is in S3
    version = stored_version(model, author, 1, b"onnx bytes of version 1, in S3")
    mark = audit_mark()
    # when it is deployed to the SageMaker target with a step judged over a short window
    deployment = start(
        approve(version),
        target="sagemaker-eu",
        thresholds={"min_requests": 20, "max_error_rate": 0.05},
        steps=[{"weight": 100, "analysis": 2}],
    )
    cloudwatch, sagemaker = aws_client(moto, "cloudwatch"), aws_client(moto, "sagemaker")
    published = []

    def sagemaker_publishes() -> None:
        # while the step is analysed, SageMaker publishes a minute of the variant's metrics: 50 requests, 1 error
        deployment.refresh_from_db()
        if deployment.phase != Phase.ANALYSE or published:
            return
        [variant] = sagemaker.describe_endpoint(EndpointName=deployment.service)["ProductionVariants"]
        dims = [
            {"Name": "EndpointName", "Value": deployment.service},
            {"Name": "VariantName", "Value": variant["VariantName"]},
        ]
        at = datetime.now(UTC)  # not earlier: the counters count from the model's creation (to the minute)
        cloudwatch.put_metric_data(
            Namespace="AWS/SageMaker",
            MetricData=[
                {"MetricName": "Invocations", "Dimensions": dims, "Value": 50, "Timestamp": at},
                {"MetricName": "Invocation5XXErrors", "Dimensions": dims, "Value": 1, "Timestamp": at},
            ],
        )
        published.append(variant["VariantName"])

    done = drive(
        deployment, until=(DeploymentState.SUCCEEDED, DeploymentState.ROLLED_BACK), between=sagemaker_publishes
    )
    # then the step passed on CloudWatch's figures and the endpoint serves the approved model from S3
    assert done.state == DeploymentState.SUCCEEDED, done.message
    [step] = done.timeline.all()
    assert (step.outcome, step.figures["requests"], step.figures["errors"]) == ("passed", 50, 1)
    endpoint = sagemaker.describe_endpoint(EndpointName=done.service)
    assert endpoint["EndpointStatus"] == "InService"
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    [variant] = config["ProductionVariants"]
    container = sagemaker.describe_model(ModelName=variant["ModelName"])["PrimaryContainer"]
    source = container.get("ModelDataUrl") or container["ModelDataSource"]["S3DataSource"]["S3Uri"]
    assert source == f"s3://{s3.bucket}/{s3.prefix}/{version.artifact_uri}"
    assert version.sha256 in container["Environment"].values()
    assert mark.actions(target_type="deployment")[-1] == "deployment.succeeded"

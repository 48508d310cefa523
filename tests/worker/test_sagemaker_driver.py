"""The SageMaker driver (worker/drivers/sagemaker/) against moto_server, a real process answering AWS's HTTP
APIs, for what moto implements: models, endpoint configs, endpoints, weights and capacities, tags,
CloudWatch alarms, Application Auto Scaling. moto_server does not implement ``UpdateEndpoint`` (see the
last test), so the requests the driver builds for it are checked against botocore's published sagemaker
service model instead: the driver's real botocore client builds, validates and serializes them, and the
test keeps them at botocore's ``before-call`` event, before anything is sent. Each docstring says which
part ran where."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator

from apps.deployments.plans import (
    LABEL_DIGEST,
    LABEL_FENCE,
    LABEL_VERSION_ID,
    DigestMismatch,
    DriverError,
    Plan,
    StaleFence,
)
from tests.worker.sagemaker_fixtures import (
    ALARMS,
    IMAGES,
    SECRETS,
    NotSent,
    Requests,
    aws_client,
    driver,
    member,
    plan,
)
from worker.drivers.sagemaker.desired import model_spec
from worker.drivers.sagemaker.states import ENDPOINT_STATES, endpoint_state, ready_instances

pytestmark = [pytest.mark.service, pytest.mark.slow]

CANARY = {"mode": "canary", "size_percent": 10, "wait_seconds": 300}


def _tags(sm, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}


def _config(sm, service: str) -> dict:
    return sm.describe_endpoint_config(
        EndpointConfigName=sm.describe_endpoint(EndpointName=service)["EndpointConfigName"]
    )


def _validated(drv, operation: str, params: dict) -> None:
    """botocore's own validator, on the sagemaker service model's input shape for the operation."""
    shape = drv.aws.sagemaker.meta.service_model.operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    assert not report.has_errors(), report.generate_report()


def test_apply_creates_a_model_per_member_a_config_and_the_endpoint(moto):
    """All against moto_server: CreateModel, CreateEndpointConfig, CreateEndpoint, ListTags, then observe."""
    # given a plan with two live versions, 90/10, on GPU instances
    drv = driver(moto, instance_count=2)
    first, second = member("1", 90), member("2", 10)

    # when it is applied
    drv.apply(plan(first, second, fence=3))

    # then each member has a model with its image, S3 object, digest and labels
    sm = aws_client(moto, "sagemaker")
    models = sm.list_models()["Models"]
    assert len(models) == 2
    for m in (first, second):
        [name] = [x["ModelName"] for x in models if _tags(sm, x["ModelArn"]).get(LABEL_VERSION_ID) == m.version_id]
        described = sm.describe_model(ModelName=name)
        container = described["PrimaryContainer"]
        assert container["Image"] == IMAGES["onnx"]
        assert container["ModelDataSource"]["S3DataSource"]["S3Uri"] == m.artifact_uri
        assert container["Environment"]["ASSAY_MODEL_SHA256"] == m.digest
        tags = _tags(sm, described["ModelArn"])
        assert tags[LABEL_DIGEST] == m.digest and tags[LABEL_FENCE] == "3"
        assert tags["app.kubernetes.io/managed-by"] == "assay" and tags["assay.dev/release-id"] == m.release_id
    # and the endpoint runs a config with one production variant per member, weighted 90/10
    config = _config(sm, "credit-scoring")
    variants = sorted(config["ProductionVariants"], key=lambda v: -v["InitialVariantWeight"])
    assert [(v["VariantName"], v["InitialVariantWeight"]) for v in variants] == [("v1", 90.0), ("v2", 10.0)]
    assert {(v["InstanceType"], v["InitialInstanceCount"]) for v in variants} == {("ml.g4dn.xlarge", 2)}
    endpoint = sm.describe_endpoint(EndpointName="credit-scoring")
    assert _tags(sm, endpoint["EndpointArn"])[LABEL_FENCE] == "3"
    # and observe reads it back: versions, digests, shares, instances
    observed = drv.observe("credit-scoring")
    assert observed.exists and observed.fence == 3 and observed.model == "credit-scoring"
    got = sorted((s.version_id, s.digest, s.weight, s.desired_replicas, s.state) for s in observed.members)
    assert got == [
        ("ver1", first.digest, 90, 2, "InService"),
        ("ver2", second.digest, 10, 2, "InService"),
    ]


def test_applying_the_same_plan_again_creates_and_changes_nothing(moto):
    """moto_server holds the state; the calls are those the driver's real botocore clients were asked to make."""
    # given an applied plan
    drv = driver(moto, alarms=ALARMS, traffic=CANARY)
    the_plan = plan(member("1", 80), member("2", 20), fence=2)
    drv.apply(the_plan)
    sm = aws_client(moto, "sagemaker")
    before = (sm.list_models()["Models"], sm.list_endpoint_configs()["EndpointConfigs"])

    # when it is applied again
    requests = Requests(drv)
    drv.apply(the_plan)

    # then only reads were made, and moto holds the same models and configs
    assert requests.names() and requests.changing() == []
    assert (sm.list_models()["Models"], sm.list_endpoint_configs()["EndpointConfigs"]) == before


def test_a_weight_change_uses_update_endpoint_weights_and_capacities(moto):
    """Against moto_server: create, then UpdateEndpointWeightsAndCapacities, then DescribeEndpoint."""
    # given 90/10 applied
    drv = driver(moto, alarms=ALARMS, traffic=CANARY)
    drv.apply(plan(member("1", 90), member("2", 10), fence=1))

    # when the plan moves to 50/50 under a newer fence
    requests = Requests(drv)
    drv.apply(plan(member("1", 50), member("2", 50), fence=2))

    # then the weights moved in place: no new config, no endpoint update
    # (AddTags: the newer fence goes onto the endpoint and the models it keeps)
    assert [n for n in requests.changing() if n != "AddTags"] == ["UpdateEndpointWeightsAndCapacities"]
    [update] = requests.params("UpdateEndpointWeightsAndCapacities")
    assert sorted((u["VariantName"], u["DesiredWeight"]) for u in update["DesiredWeightsAndCapacities"]) == [
        ("v1", 50.0),
        ("v2", 50.0),
    ]
    sm = aws_client(moto, "sagemaker")
    assert len(sm.list_endpoint_configs()["EndpointConfigs"]) == 1
    assert sorted(s.weight for s in drv.observe("credit-scoring").members) == [50, 50]
    assert drv.observe("credit-scoring").fence == 2


def test_a_new_member_goes_out_by_update_endpoint_with_a_canary_and_its_alarms(moto):
    """Models, the new endpoint config and the endpoint ran against moto_server; UpdateEndpoint (not
    implemented by moto_server) was built by the real botocore client, kept at before-call, and checked
    against botocore's sagemaker service model."""
    # given version 1 alone, on a target that shifts by a 10 % canary guarded by two alarms
    drv = driver(moto, alarms=ALARMS, traffic=CANARY)
    drv.apply(plan(member("1", 100), fence=1))

    # when version 2 joins at 10 %
    requests = Requests(drv)
    requests.hold("UpdateEndpoint")
    with pytest.raises(NotSent):
        drv.apply(plan(member("1", 90), member("2", 10), fence=2))

    # then a model and a config were made for it on moto_server, and the update names that config
    assert [n for n in requests.changing() if n != "AddTags"] == [
        "CreateModel",
        "CreateEndpointConfig",
        "UpdateEndpoint",
    ]
    [update] = requests.params("UpdateEndpoint")
    _validated(drv, "UpdateEndpoint", update)
    [(_, sent)] = requests.held
    assert sent["body"] == update  # what botocore serialized is the request checked here
    assert sent["headers"]["X-Amz-Target"] == "SageMaker.UpdateEndpoint"
    sm = aws_client(moto, "sagemaker")
    new_config = sm.describe_endpoint_config(EndpointConfigName=update["EndpointConfigName"])
    assert sorted((v["VariantName"], v["InitialVariantWeight"]) for v in new_config["ProductionVariants"]) == [
        ("v1", 90.0),
        ("v2", 10.0),
    ]
    assert update["DeploymentConfig"] == {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "WaitIntervalInSeconds": 300,
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
            },
            "TerminationWaitInSeconds": 0,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": a} for a in ALARMS]},
    }


def test_a_replacing_version_takes_over_the_variant_so_sagemaker_can_shift_and_roll_back(moto):
    """Create against moto_server; the UpdateEndpoint request checked against botocore's service model
    (linear shifting)."""
    # given version 1 alone, on a target shifting linearly by 20 % every 2 minutes
    drv = driver(moto, alarms=ALARMS[:1], traffic={"mode": "linear", "step_percent": 20, "interval_seconds": 120})
    drv.apply(plan(member("1", 100)))

    # when version 2 replaces it
    requests = Requests(drv)
    requests.hold("UpdateEndpoint")
    with pytest.raises(NotSent):
        drv.apply(plan(member("2", 100)))

    # then the new config keeps the variant's name (SageMaker shifts traffic within a variant) with the new model
    [update] = requests.params("UpdateEndpoint")
    _validated(drv, "UpdateEndpoint", update)
    routing = update["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {
        "Type": "LINEAR",
        "WaitIntervalInSeconds": 120,
        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 20},
    }
    sm = aws_client(moto, "sagemaker")
    [variant] = sm.describe_endpoint_config(EndpointConfigName=update["EndpointConfigName"])["ProductionVariants"]
    model = sm.describe_model(ModelName=variant["ModelName"])
    assert variant["VariantName"] == "v1" and _tags(sm, model["ModelArn"])[LABEL_VERSION_ID] == "ver2"


@pytest.mark.parametrize("traffic", [CANARY, {"mode": "linear", "step_percent": 25, "interval_seconds": 60}])
def test_canary_or_linear_shifting_without_alarms_is_refused_before_anything_is_made(moto, traffic):
    """Against moto_server: the refusal comes before any call, so moto holds nothing."""
    drv = driver(moto, traffic=traffic)
    with pytest.raises(DriverError, match="needs CloudWatch alarms"):
        drv.apply(plan(member("1", 100)))
    assert aws_client(moto, "sagemaker").list_models()["Models"] == []


def test_a_plan_under_an_older_fence_is_refused_and_changes_nothing(moto):
    """Against moto_server: the endpoint's assay.dev/fence tag decides."""
    drv = driver(moto)
    drv.apply(plan(member("1", 100), fence=5))
    sm = aws_client(moto, "sagemaker")
    before = sm.list_models()["Models"]

    with pytest.raises(StaleFence, match="fence 5"):
        drv.apply(plan(member("2", 100), fence=4))
    with pytest.raises(StaleFence):
        drv.remove("credit-scoring", fence=4)

    # nor does another model's plan take the endpoint over, whatever its fence
    other = Plan(service="credit-scoring", model="credit-limits", members=(member("7", 100),), fence=9)
    with pytest.raises(DriverError, match="serves model credit-scoring, not credit-limits"):
        drv.apply(other)

    assert sm.list_models()["Models"] == before
    assert drv.observe("credit-scoring").fence == 5


def test_artifacts_outside_s3_and_formats_without_an_image_are_refused(moto):
    """Against moto_server: refused before any call."""
    drv = driver(moto)
    with pytest.raises(DriverError, match="not in S3"):
        drv.apply(plan(member("1", 100, uri="file:///var/lib/assay/artifacts/abc")))
    with pytest.raises(DriverError, match="no serving image for the .onnx. format"):
        driver(moto, images={"xgboost": IMAGES["xgboost"]}).apply(plan(member("1", 100)))
    assert aws_client(moto, "sagemaker").list_models()["Models"] == []


def test_statuses_map_to_member_states_and_readiness(moto):
    """InService (the only status moto_server reports: its endpoints are in service at once) against
    moto_server; the rest of the table is the driver's own code, checked here as a unit."""
    drv = driver(moto)
    drv.apply(plan(member("1", 100, replicas=3)))
    [status] = drv.observe("credit-scoring").members
    assert (status.state, status.desired_replicas, status.ready_replicas) == ("InService", 3, 3)

    assert set(ENDPOINT_STATES) >= {"Creating", "Updating", "SystemUpdating", "RollingBack", "InService"}
    assert set(ENDPOINT_STATES) >= {"Deleting", "Failed", "UpdateRollbackFailed"}
    # the old fleet keeps serving while SageMaker updates or rolls back; a rollback is under way, not failed
    assert [ready_instances(s, 2, False) for s in ("Creating", "Updating", "RollingBack", "Deleting", "Failed")] == [
        0, 2, 2, 0, 0,
    ]  # fmt: skip
    assert endpoint_state("RollingBack").busy and not endpoint_state("RollingBack").failed
    assert endpoint_state("UpdateRollbackFailed").failed and not endpoint_state("UpdateRollbackFailed").busy
    assert endpoint_state("InService").serving and not endpoint_state("InService").busy
    assert endpoint_state("SomethingNew").busy and ready_instances("SomethingNew", 4, False) == 0


def test_shadow_members_become_shadow_variants(moto):
    """The models, the production variant and the endpoint against moto_server, which stores no shadow
    variants (it drops ShadowProductionVariants); the CreateEndpointConfig request, shadow variants
    included, checked against botocore's sagemaker service model."""
    drv = driver(moto, shadow_instance_type="ml.g4dn.2xlarge")
    requests = Requests(drv)
    drv.apply(plan(member("1", 100), member("2", 0, shadow=True)))

    [request] = requests.params("CreateEndpointConfig")
    _validated(drv, "CreateEndpointConfig", request)
    [live], [shadow] = request["ProductionVariants"], request["ShadowProductionVariants"]
    # a shadow weight equal to the live weights' sum: SageMaker mirrors all live requests to it
    assert (live["VariantName"], live["InitialVariantWeight"]) == ("v1", 100.0)
    assert (shadow["VariantName"], shadow["InitialVariantWeight"], shadow["InstanceType"]) == (
        "v2",
        100.0,
        "ml.g4dn.2xlarge",
    )
    sm = aws_client(moto, "sagemaker")
    shadow_model = sm.describe_model(ModelName=shadow["ModelName"])
    assert _tags(sm, shadow_model["ModelArn"])[LABEL_VERSION_ID] == "ver2"
    assert [v["VariantName"] for v in _config(sm, "credit-scoring")["ProductionVariants"]] == ["v1"]


def test_a_serverless_target_declares_memory_and_concurrency_instead_of_instances(moto):
    """Against moto_server: the variant's ServerlessConfig."""
    drv = driver(moto, instance_type=None, serverless={"memory_mb": 4096, "max_concurrency": 8})
    drv.apply(plan(member("1", 100)))
    [variant] = _config(aws_client(moto, "sagemaker"), "credit-scoring")["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 4096, "MaxConcurrency": 8}
    assert "InstanceType" not in variant


def test_auto_scaling_is_registered_once_per_live_variant(moto):
    """Against moto_server's Application Auto Scaling: scalable target and target-tracking policy."""
    scaling = {"min_capacity": 2, "max_capacity": 6, "target_invocations_per_instance": 150}
    drv = driver(moto, autoscaling=scaling)
    the_plan = plan(member("1", 70), member("2", 30))
    drv.apply(the_plan)

    aas = aws_client(moto, "application-autoscaling")
    targets = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert sorted((t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in targets) == [
        ("endpoint/credit-scoring/variant/v1", 2, 6),
        ("endpoint/credit-scoring/variant/v2", 2, 6),
    ]
    policies = aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    assert {p["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] for p in policies} == {150.0}
    assert {
        p["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]["PredefinedMetricType"]
        for p in policies
    } == {"SageMakerVariantInvocationsPerInstance"}

    requests = Requests(drv)
    drv.apply(the_plan)
    assert requests.changing() == []


def test_alarm_states_are_a_health_signal_in_observe(moto):
    """Against moto_server's CloudWatch: PutMetricAlarm, SetAlarmState, DescribeAlarms."""
    cloudwatch = aws_client(moto, "cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=ALARMS[0], MetricName="Invocation5XXErrors", Namespace="AWS/SageMaker", Statistic="Sum",
        Period=60, EvaluationPeriods=1, Threshold=5, ComparisonOperator="GreaterThanThreshold",
    )  # fmt: skip
    cloudwatch.set_alarm_state(AlarmName=ALARMS[0], StateValue="ALARM", StateReason="5xx above 5 for 1 minute")
    drv = driver(moto, alarms=ALARMS, traffic=CANARY)
    drv.apply(plan(member("1", 100)))

    observed = drv.observe("credit-scoring")
    assert f"alarm {ALARMS[0]} is in ALARM (5xx above 5 for 1 minute)" in observed.message
    assert f"alarm {ALARMS[1]} does not exist" in observed.message
    assert f"alarm {ALARMS[0]} is in ALARM" in observed.members[0].message


def test_remove_deletes_what_assay_made_and_services_lists_assay_endpoints(moto):
    """Against moto_server: ListEndpoints and ListTags, then DeleteEndpoint, DeleteEndpointConfig, DeleteModel."""
    drv = driver(moto)
    drv.apply(plan(member("1", 100), fence=1))
    drv.apply(plan(member("1", 100), fence=1, service="fraud-check"))
    sm = aws_client(moto, "sagemaker")
    # an endpoint Assay did not make is not its business
    sm.create_model(ModelName="hand-made", ExecutionRoleArn="arn:aws:iam::123456789012:role/x",
                    PrimaryContainer={"Image": IMAGES["onnx"]})  # fmt: skip
    sm.create_endpoint_config(EndpointConfigName="hand-made", ProductionVariants=[
        {"VariantName": "a", "ModelName": "hand-made", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
    ])  # fmt: skip
    sm.create_endpoint(EndpointName="hand-made", EndpointConfigName="hand-made")

    assert sorted(o.service for o in drv.services()) == ["credit-scoring", "fraud-check"]

    drv.remove("credit-scoring", fence=1)
    drv.remove("credit-scoring", fence=1)  # idempotent

    assert drv.observe("credit-scoring").exists is False
    assert sorted(e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]) == ["fraud-check", "hand-made"]
    assert not [
        c for c in sm.list_endpoint_configs()["EndpointConfigs"] if c["EndpointConfigName"].startswith("credit")
    ]
    assert sorted(m["ModelName"].split("-")[0] for m in sm.list_models()["Models"]) == ["fraud", "hand"]
    with pytest.raises(DriverError, match="Assay did not make it"):
        drv.remove("hand-made", fence=99)


def test_aws_failures_are_driver_errors_without_credentials():
    """Against nothing (a closed loopback port): botocore's connection failure becomes a DriverError."""
    drv = driver(None)
    with pytest.raises(DriverError) as failed:
        drv.observe("credit-scoring")
    text = f"{failed.value} {drv!r}"
    assert "DescribeEndpoint" in text or "describe_endpoint" in text
    assert SECRETS["secret_access_key"] not in text and SECRETS["access_key_id"] not in text
    assert drv.aws.redact(f"key {SECRETS['secret_access_key']}") == "key ***"


def test_moto_server_does_not_implement_update_endpoint(moto):
    """Against moto_server, directly: why UpdateEndpoint is checked against botocore's model above. If this
    fails, moto_server has learnt UpdateEndpoint and the tests above can send it there."""
    drv = driver(moto)
    drv.apply(plan(member("1", 100)))
    sm = aws_client(moto, "sagemaker", retries=1)
    config = sm.describe_endpoint(EndpointName="credit-scoring")["EndpointConfigName"]
    with pytest.raises(ClientError) as answered:
        sm.update_endpoint(EndpointName="credit-scoring", EndpointConfigName=config)
    assert answered.value.response["ResponseMetadata"]["HTTPStatusCode"] >= 500


def test_a_model_of_the_expected_name_with_another_digest_is_refused(moto):
    """Against moto_server: a model put in the driver's way (same name, another digest in its environment)."""
    # given a model named as the driver would name version 1's, but telling the container another digest
    version = member("1", 100)
    drv = driver(moto)
    name = model_spec(plan(version), version, drv.settings).name
    sm = aws_client(moto, "sagemaker")
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn="arn:aws:iam::123456789012:role/x",
        PrimaryContainer={"Image": IMAGES["onnx"], "Environment": {"ASSAY_MODEL_SHA256": "0" * 64}},
    )

    # when the plan is applied, then it is refused before any endpoint config or endpoint is made
    with pytest.raises(DigestMismatch, match=f"not version 1's approved {version.digest}"):
        drv.apply(plan(version))
    assert sm.list_endpoint_configs()["EndpointConfigs"] == [] and sm.list_endpoints()["Endpoints"] == []


def _publish(cloudwatch, service: str, variant: str, **sums: float) -> None:
    """Put one minute of a variant's metrics, as SageMaker publishes them (AWS/SageMaker, endpoint and variant)."""
    dims = [{"Name": "EndpointName", "Value": service}, {"Name": "VariantName", "Value": variant}]
    at = datetime.now(UTC)  # not earlier: the counters count from the model's creation (to the minute)
    cloudwatch.put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {"MetricName": name, "Dimensions": dims, "Value": value, "Timestamp": at} for name, value in sums.items()
        ],
    )


def test_observe_reads_each_variant_s_requests_and_errors_from_cloudwatch(moto):
    """Against moto_server: CreateModel/EndpointConfig/Endpoint, PutMetricData (standing in for SageMaker's own
    publishing), GetMetricData. moto computes no percentiles, so the p99 read (GetMetricStatistics with
    ExtendedStatistics p99 over the last five minutes) comes back empty there: the test checks the request."""
    drv = driver(moto)
    drv.apply(plan(member("1", 60), member("2", 40)))
    sm, cloudwatch = aws_client(moto, "sagemaker"), aws_client(moto, "cloudwatch")
    variants = {
        _tags(sm, sm.describe_model(ModelName=v["ModelName"])["ModelArn"])[LABEL_VERSION_ID]: v["VariantName"]
        for v in _config(sm, "credit-scoring")["ProductionVariants"]
    }
    # given a minute of traffic on each variant: version 2 answers some requests with 4xx and 5xx
    _publish(cloudwatch, "credit-scoring", variants["ver1"], Invocations=60, Invocation4XXErrors=0)
    _publish(
        cloudwatch, "credit-scoring", variants["ver2"], Invocations=40, Invocation4XXErrors=3, Invocation5XXErrors=5
    )
    requests = Requests(drv)
    # when the target is observed
    got = {s.version_id: (s.requests, s.errors, s.latency_p99_ms) for s in drv.observe("credit-scoring").members}
    # then each member carries its variant's counters (errors: 4xx and 5xx), and no latency moto cannot compute
    assert got == {"ver1": (60, 0, None), "ver2": (40, 8, None)}
    # and the counters grow as more minutes are published: the engine judges their deltas
    _publish(cloudwatch, "credit-scoring", variants["ver2"], Invocations=10, Invocation5XXErrors=1)
    again = {s.version_id: (s.requests, s.errors) for s in drv.observe("credit-scoring").members}
    assert again == {"ver1": (60, 0), "ver2": (50, 9)}
    # and the latency was asked as SageMaker's ModelLatency p99 per variant over the last five minutes
    latency = [p for p in requests.params("GetMetricStatistics") if p["MetricName"] == "ModelLatency"]
    assert {d["Value"] for p in latency for d in p["Dimensions"] if d["Name"] == "VariantName"} == set(
        variants.values()
    )
    assert all(p["ExtendedStatistics"] == ["p99"] and p["Namespace"] == "AWS/SageMaker" for p in latency)
    assert all(p["EndTime"] - p["StartTime"] >= timedelta(minutes=5) for p in latency)


def test_figures_cloudwatch_cannot_give_are_noted_and_the_observation_stands(moto):
    """Against moto_server, with CloudWatch pointed at a closed port (as when the role may not read metrics):
    the endpoint is still observed, the counters are zero and the member's message says why."""
    drv = driver(moto)
    drv.apply(plan(member("1", 100)))
    drv.aws.cloudwatch = driver(None).aws.cloudwatch  # CloudWatch only: an endpoint nothing answers on
    [status] = drv.observe("credit-scoring").members
    assert status.version_id == "ver1" and (status.requests, status.errors, status.latency_p99_ms) == (0, 0, None)
    assert "request counters unavailable" in status.message and "latency unavailable" in status.message

"""Application Auto Scaling for an endpoint's live variants: a scalable target on the variant's instance
count and one target-tracking policy on invocations per instance.

SageMaker only takes a scalable target for a variant of an endpoint that is in service, and refuses an
update that changes a scaled variant's instances; so the driver registers after the endpoint is in
service (a later apply catches up when it was not) and deregisters a variant before an update replaces
or drops it. Registration is compared first, so applying the same plan again changes nothing.
"""

from __future__ import annotations

import contextlib
from typing import Any

from .aws import Aws, Missing
from .settings import AutoScaling

NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
POLICY_NAME = "assay-invocations-per-instance"


def resource_id(endpoint: str, variant: str) -> str:
    return f"endpoint/{endpoint}/variant/{variant}"


def _policy(scaling: AutoScaling) -> dict[str, Any]:
    return {
        "TargetValue": scaling.target_invocations_per_instance,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        "ScaleInCooldown": scaling.scale_in_cooldown_seconds,
        "ScaleOutCooldown": scaling.scale_out_cooldown_seconds,
    }


def registered(aws: Aws, endpoint: str, variant: str) -> dict[str, Any] | None:
    targets = aws.call(
        aws.autoscaling,
        "describe_scalable_targets",
        ServiceNamespace=NAMESPACE,
        ResourceIds=[resource_id(endpoint, variant)],
        ScalableDimension=DIMENSION,
    ).get("ScalableTargets", [])
    return targets[0] if targets else None


def register_scaling(aws: Aws, scaling: AutoScaling, endpoint: str, variants: list[str]) -> list[str]:
    """Make each variant a scalable target with Assay's policy; returns the calls that changed something."""
    changed = []
    wanted = _policy(scaling)
    for variant in variants:
        rid = resource_id(endpoint, variant)
        target = registered(aws, endpoint, variant)
        if target is None or (target["MinCapacity"], target["MaxCapacity"]) != (
            scaling.min_capacity,
            scaling.max_capacity,
        ):
            aws.call(
                aws.autoscaling,
                "register_scalable_target",
                ServiceNamespace=NAMESPACE,
                ResourceId=rid,
                ScalableDimension=DIMENSION,
                MinCapacity=scaling.min_capacity,
                MaxCapacity=scaling.max_capacity,
            )
            changed.append(f"register_scalable_target {rid}")
        policies = aws.call(
            aws.autoscaling,
            "describe_scaling_policies",
            ServiceNamespace=NAMESPACE,
            ResourceId=rid,
            ScalableDimension=DIMENSION,
            PolicyNames=[POLICY_NAME],
        ).get("ScalingPolicies", [])
        current = policies[0].get("TargetTrackingScalingPolicyConfiguration", {}) if policies else None
        if current is None or any(current.get(k) != v for k, v in wanted.items()):
            aws.call(
                aws.autoscaling,
                "put_scaling_policy",
                PolicyName=POLICY_NAME,
                ServiceNamespace=NAMESPACE,
                ResourceId=rid,
                ScalableDimension=DIMENSION,
                PolicyType="TargetTrackingScaling",
                TargetTrackingScalingPolicyConfiguration=wanted,
            )
            changed.append(f"put_scaling_policy {rid}")
    return changed


def deregister_scaling(aws: Aws, endpoint: str, variants: list[str]) -> None:
    """Drop the scalable targets (and with them their policies) of these variants, where there are any."""
    for variant in variants:
        if registered(aws, endpoint, variant) is None:
            continue
        with contextlib.suppress(Missing):
            aws.call(
                aws.autoscaling,
                "deregister_scalable_target",
                ServiceNamespace=NAMESPACE,
                ResourceId=resource_id(endpoint, variant),
                ScalableDimension=DIMENSION,
            )

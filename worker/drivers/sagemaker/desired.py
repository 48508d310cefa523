"""What SageMaker should hold for a plan: one model per member and one endpoint config, with the names,
tags and request parameters the driver sends. Pure functions of the plan, the target's settings and the
endpoint's current config; no AWS call here.

Names are derived from content, so the same plan always gives the same names and a second apply finds
everything already there: a model is ``<service>-<10 hex of its container and role>``, an endpoint config
``<service>-<10 hex of its variants>`` (service names are at most 52 characters, so both fit SageMaker's 63).

Variant names are slots, not versions. A member keeps the variant that already runs its model; when one
live version replaces another (one live variant before and after), the new one takes over the old variant's
name, because SageMaker's blue/green traffic shifting (canary, linear) and its alarm rollback work on a
variant whose name is the same in the old and the new config; otherwise a new variant is named after the
version (``v3``). ``observe`` reads each variant's version from its model's tags, never from its name.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from apps.deployments.plans import LABEL_FENCE, LABEL_MANAGED_BY, LABEL_MODEL, MANAGED_BY, DriverError, Member, Plan

from .settings import TargetSettings

LABEL_SERVICE = "assay.dev/service"  # the service an Assay-made model or endpoint config belongs to
ENV_DIGEST = "ASSAY_MODEL_SHA256"  # the approved artifact's sha256, for the serving container to check
ENV_FORMAT = "ASSAY_MODEL_FORMAT"
ENV_VERSION_ID = "ASSAY_MODEL_VERSION_ID"
_S3 = re.compile(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]/.+$")


def _short_hash(content: Any) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:10]


def service_tags(plan: Plan) -> dict[str, str]:
    """The tags of the endpoint and its configs: who made them, for which model and service, under which fence."""
    return {
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_MODEL: plan.model,
        LABEL_SERVICE: plan.service,
        LABEL_FENCE: str(plan.fence),
    }


@dataclass(frozen=True)
class ModelSpec:
    """One SageMaker model for one member."""

    member: Member
    name: str
    request: dict[str, Any]  # CreateModel's parameters, tags included
    tags: dict[str, str]


def model_spec(plan: Plan, member: Member, settings: TargetSettings) -> ModelSpec:
    if not _S3.match(member.artifact_uri):
        raise DriverError(
            f"version {member.version}'s artifact is not in S3 ({member.artifact_uri.split('://')[0]}://...): "
            "SageMaker reads model data only from an s3:// object"
        )
    container: dict[str, Any] = {
        "Image": settings.image_for(member),
        "Environment": {ENV_DIGEST: member.digest, ENV_FORMAT: member.format, ENV_VERSION_ID: member.version_id},
    }
    if member.artifact_uri.endswith(".tar.gz"):
        container["ModelDataUrl"] = member.artifact_uri  # SageMaker unpacks the archive into /opt/ml/model
    else:
        # A single model file: SageMaker copies it as it is to /opt/ml/model/<last part of the key>.
        container["ModelDataSource"] = {
            "S3DataSource": {"S3Uri": member.artifact_uri, "S3DataType": "S3Object", "CompressionType": "None"}
        }
    name = f"{plan.service}-{_short_hash({'container': container, 'role': settings.execution_role_arn})}"
    tags = {**member.labels(plan.model), LABEL_SERVICE: plan.service, LABEL_FENCE: str(plan.fence)}
    request = {
        "ModelName": name,
        "PrimaryContainer": container,
        "ExecutionRoleArn": settings.execution_role_arn,
        "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())],
    }
    return ModelSpec(member=member, name=name, request=request, tags=tags)


def _version_variant(member: Member, taken: set[str]) -> str:
    base = re.sub(r"[^a-zA-Z0-9]+", "-", f"v{member.version}").strip("-")[:50] or "v"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def variant_names(models: list[ModelSpec], current: dict[str, Any] | None) -> dict[str, str]:
    """Model name -> variant name, keeping the current config's slots (see the module's docstring)."""
    current = current or {}
    live_now = {v["ModelName"]: v["VariantName"] for v in current.get("ProductionVariants", [])}
    shadow_now = {v["ModelName"]: v["VariantName"] for v in current.get("ShadowProductionVariants", [])}
    names: dict[str, str] = {}
    for spec in models:
        slot = (shadow_now if spec.member.shadow else live_now).get(spec.name)
        if slot:
            names[spec.name] = slot
    live = [s for s in models if not s.member.shadow]
    if len(live) == 1 and len(live_now) == 1 and live[0].name not in names:
        names[live[0].name] = next(iter(live_now.values()))  # one version replaces another: same variant
    shadows = [s for s in models if s.member.shadow]
    if len(shadows) == 1 and len(shadow_now) == 1 and shadows[0].name not in names:
        names[shadows[0].name] = next(iter(shadow_now.values()))
    taken = set(names.values()) | set(live_now.values()) | set(shadow_now.values())
    for spec in models:
        if spec.name not in names:
            names[spec.name] = _version_variant(spec.member, taken)
            taken.add(names[spec.name])
    return names


def shadow_weight(member: Member) -> float:
    """A shadow's weight: SageMaker mirrors to a shadow variant the share of requests given by its weight
    relative to the live weights (which add up to 100). A member weight of 0 means a copy of all traffic."""
    return float(member.weight or 100)


def endpoint_config_request(
    plan: Plan, models: list[ModelSpec], settings: TargetSettings, current: dict[str, Any] | None
) -> dict[str, Any]:
    """CreateEndpointConfig's parameters for the plan, its name derived from its variants."""
    names = variant_names(models, current)
    live, shadows = [], []
    for spec in models:
        variant = {
            "VariantName": names[spec.name],
            "ModelName": spec.name,
            "InitialVariantWeight": shadow_weight(spec.member) if spec.member.shadow else float(spec.member.weight),
            **settings.variant_resources(spec.member),
        }
        (shadows if spec.member.shadow else live).append(variant)
    live.sort(key=lambda v: v["VariantName"])
    shadows.sort(key=lambda v: v["VariantName"])
    if not live:
        raise DriverError("a SageMaker endpoint needs at least one live (not shadow) version")
    request: dict[str, Any] = {"ProductionVariants": live}
    if shadows:
        request["ShadowProductionVariants"] = shadows
    request["EndpointConfigName"] = f"{plan.service}-{_short_hash(request)}"
    request["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(service_tags(plan).items())]
    return request


def shape(config: dict[str, Any]) -> set[tuple]:
    """What an update must change by a new config: each variant's name, model, resources and kind.
    Weights and instance counts are left out: ``UpdateEndpointWeightsAndCapacities`` changes those."""
    out = set()
    for kind in ("ProductionVariants", "ShadowProductionVariants"):
        for v in config.get(kind, []):
            serverless = v.get("ServerlessConfig") or {}
            resources = (v.get("InstanceType", ""), serverless.get("MemorySizeInMB"), serverless.get("MaxConcurrency"))
            # a shadow's weight is its sampling share: changed by a new config, not by a weights update
            weight = v.get("InitialVariantWeight") if kind == "ShadowProductionVariants" else None
            out.add((kind, v["VariantName"], v["ModelName"], resources, weight))
    return out

"""The built-in objects the driver renders from a plan and the target's profile, as plain manifests (dicts):
pod templates, Deployments, the Service, HorizontalPodAutoscalers, PodDisruptionBudgets, CronJobs and the
anchor ConfigMap. Pure functions: the API versions to render come in as arguments (the driver discovers them),
so the same manifests are validated offline against current Kubernetes schemas in the tests.

Weights in the ``deployment`` runtime are approximated by replica ratios: a Service spreads requests over the
ready pods it selects, so a member with 1 of 10 live pods gets about 10 % of the traffic. Exact splits need
the ``kserve`` or ``argo`` runtime (with a traffic router).
"""

from __future__ import annotations

import json

from apps.deployments.plans import Member, Plan

from .naming import (
    ANNOTATION_AUTOSCALED,
    ANNOTATION_FENCE,
    ANNOTATION_IMAGE,
    ANNOTATION_MODEL,
    ANNOTATION_REPLICAS,
    ANNOTATION_WEIGHT,
    LABEL_TRAFFIC,
    anchor_name,
    member_annotations,
    member_labels,
    member_name,
    member_selector,
    service_labels,
    service_selector_labels,
)
from .objects import CONFIG_MAP, DEPLOYMENT, SERVICE, Kind
from .profile import Profile

CONTAINER = "server"
READY_PATH = "/v2/health/ready"  # the V2 (Open Inference) protocol's readiness endpoint
LIVE_PATH = "/v2/health/live"


def _meta(name: str, labels: dict, annotations: dict) -> dict:
    return {"name": name, "labels": labels, "annotations": annotations}


def model_env(plan: Plan, member: Member) -> list[dict]:
    """What the serving container needs to fetch and check the approved artifact."""
    return [
        {"name": "ASSAY_MODEL_URI", "value": member.artifact_uri},
        {"name": "ASSAY_MODEL_SHA256", "value": member.digest},
        {"name": "ASSAY_MODEL_FORMAT", "value": member.format},
        {"name": "ASSAY_MODEL_NAME", "value": plan.model},
        {"name": "ASSAY_MODEL_VERSION", "value": member.version},
    ]


def container(plan: Plan, member: Member, profile: Profile, *, probes: bool = True) -> dict:
    out = {
        "name": CONTAINER,
        "image": profile.image_for(member.format),
        "env": model_env(plan, member),
    }
    if probes:
        out["ports"] = [{"name": "http", "containerPort": profile.port, "protocol": "TCP"}]
        out["readinessProbe"] = {
            "httpGet": {"path": READY_PATH, "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 3,
        }
        out["livenessProbe"] = {
            "httpGet": {"path": LIVE_PATH, "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 6,
        }
    if profile.model_credentials_secret:
        out["envFrom"] = [{"secretRef": {"name": profile.model_credentials_secret}}]
    resources = profile.resources()
    if resources:
        out["resources"] = resources
    return out


def pod_spec_extras(profile: Profile) -> dict:
    """Where the pods may run and as whom: the GPU node pool's selector and tolerations, the service account."""
    out: dict = {}
    if profile.node_selector:
        out["nodeSelector"] = dict(profile.node_selector)
    if profile.tolerations:
        out["tolerations"] = [dict(t) for t in profile.tolerations]
    if profile.service_account:
        out["serviceAccountName"] = profile.service_account
    if profile.image_pull_secrets:
        out["imagePullSecrets"] = [{"name": name} for name in profile.image_pull_secrets]
    return out


def pod_template(plan: Plan, member: Member, profile: Profile, *, probes: bool = True, restart: str = "") -> dict:
    # No fence on the template: a new token alone must not restart the pods.
    spec = {"containers": [container(plan, member, profile, probes=probes)], **pod_spec_extras(profile)}
    if restart:
        spec["restartPolicy"] = restart
    return {
        "metadata": {
            "labels": member_labels(plan.service, plan.model, member),
            "annotations": member_annotations(plan.model, member),
        },
        "spec": spec,
    }


def live_replicas(plan: Plan, profile: Profile) -> dict[str, int]:
    """Replicas per live member in proportion to the weights (largest remainder; a weight above 0 gets at least
    one pod, a weight of 0 none). The pool is the plan's replicas for its live members, at least the profile's
    minimum."""
    live = [m for m in plan.members if not m.shadow]
    weighted = [m for m in live if m.weight > 0]
    pool = max(sum(m.replicas for m in live), profile.min_replicas, len(weighted))
    shares = {m.version_id: pool * m.weight / 100 for m in live}
    counts = {vid: int(share) for vid, share in shares.items()}
    for m in weighted:
        counts[m.version_id] = max(counts[m.version_id], 1)
    left = pool - sum(counts.values())
    for vid in sorted(shares, key=lambda v: shares[v] - int(shares[v]), reverse=True)[: max(left, 0)]:
        counts[vid] += 1
    return counts


def replica_bounds(plan: Plan, member: Member, replicas: int, profile: Profile) -> tuple[int, int]:
    """An autoscaled member's HPA bounds: from its share of the pods to its share of the profile's maximum."""
    if member.shadow:
        return max(member.replicas, 1), max(member.replicas, profile.max_replicas)
    return replicas, max(replicas, -(-profile.max_replicas * member.weight // 100))


def deployment(plan: Plan, member: Member, replicas: int, profile: Profile, fence: int) -> dict:
    template = pod_template(plan, member, profile)
    annotations = {
        **member_annotations(plan.model, member),
        ANNOTATION_FENCE: str(fence),
        ANNOTATION_IMAGE: template["spec"]["containers"][0]["image"],
        ANNOTATION_REPLICAS: str(replicas),
        ANNOTATION_WEIGHT: str(member.weight),
    }
    if profile.autoscaled and replicas > 0:
        annotations[ANNOTATION_AUTOSCALED] = "true"
    return {
        "apiVersion": DEPLOYMENT.api_version,
        "kind": DEPLOYMENT.kind,
        "metadata": _meta(
            member_name(plan.service, member), member_labels(plan.service, plan.model, member), annotations
        ),
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": member_selector(plan.service, member)},
            "template": template,
        },
    }


def service(plan: Plan, profile: Profile, fence: int) -> dict:
    """One Service in front of the live members' pods; shadow pods carry ``traffic: shadow`` and stay out."""
    labels = service_labels(plan.service, plan.model)
    return {
        "apiVersion": SERVICE.api_version,
        "kind": SERVICE.kind,
        "metadata": _meta(plan.service, labels, {ANNOTATION_FENCE: str(fence), ANNOTATION_MODEL: plan.model}),
        "spec": {
            "type": profile.service_type,
            "selector": {**service_selector_labels(plan.service), LABEL_TRAFFIC: "live"},
            "ports": [{"name": "http", "port": profile.service_port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def autoscaler(plan: Plan, member: Member, bounds: tuple[int, int], profile: Profile, kind: Kind, fence: int) -> dict:
    """A HorizontalPodAutoscaler on CPU for one member's Deployment (autoscaling/v2 and v2beta2 share the shape)."""
    name = member_name(plan.service, member)
    return {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "metadata": _meta(name, member_labels(plan.service, plan.model, member), {ANNOTATION_FENCE: str(fence)}),
        "spec": {
            "scaleTargetRef": {"apiVersion": DEPLOYMENT.api_version, "kind": DEPLOYMENT.kind, "name": name},
            "minReplicas": bounds[0],
            "maxReplicas": bounds[1],
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": profile.cpu_utilization},
                    },
                }
            ],
        },
    }


def disruption_budget(plan: Plan, member: Member, profile: Profile, kind: Kind, fence: int) -> dict:
    """A PodDisruptionBudget for one member's pods (policy/v1 and v1beta1 share the shape)."""
    spec: dict = {"selector": {"matchLabels": member_selector(plan.service, member)}}
    if profile.pdb_min_available is not None:
        spec["minAvailable"] = profile.pdb_min_available
    else:
        spec["maxUnavailable"] = profile.pdb_max_unavailable
    return {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "metadata": _meta(
            member_name(plan.service, member),
            member_labels(plan.service, plan.model, member),
            {ANNOTATION_FENCE: str(fence)},
        ),
        "spec": spec,
    }


def cron_job(plan: Plan, member: Member, profile: Profile, kind: Kind, fence: int) -> dict:
    """A batch plan's scheduled scoring job: the member's image and GPU profile, one run at a time."""
    template = pod_template(plan, member, profile, probes=False, restart="OnFailure")
    box = template["spec"]["containers"][0]
    if profile.batch_command:
        box["command"] = list(profile.batch_command)
    if profile.batch_args:
        box["args"] = list(profile.batch_args)
    annotations = {
        **member_annotations(plan.model, member),
        ANNOTATION_FENCE: str(fence),
        ANNOTATION_IMAGE: box["image"],
        ANNOTATION_WEIGHT: str(member.weight),
    }
    labels = member_labels(plan.service, plan.model, member)
    return {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "metadata": _meta(member_name(plan.service, member), labels, annotations),
        "spec": {
            "schedule": plan.schedule,
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": labels},
                "spec": {"backoffLimit": profile.batch_backoff_limit, "template": template},
            },
        },
    }


def anchor(plan: Plan, runtime: str, fence: int) -> dict:
    """The ConfigMap that claims the service for a fence and records the plan last applied (members, weights);
    ``apply`` writes it first, fenced, so a worker under an older token stops before touching anything else."""
    members = [
        {
            "version_id": m.version_id,
            "version": m.version,
            "digest": m.digest,
            "weight": m.weight,
            "shadow": m.shadow,
            "replicas": m.replicas,
        }
        for m in plan.members
    ]
    record = {"model": plan.model, "kind": plan.kind, "runtime": runtime, "schedule": plan.schedule}
    return {
        "apiVersion": CONFIG_MAP.api_version,
        "kind": CONFIG_MAP.kind,
        "metadata": _meta(
            anchor_name(plan.service),
            service_labels(plan.service, plan.model),
            {ANNOTATION_FENCE: str(fence), ANNOTATION_MODEL: plan.model},
        ),
        "data": {"plan": json.dumps(record, sort_keys=True), "members": json.dumps(members, sort_keys=True)},
    }

"""The custom resources of the delivery engines teams already run, rendered as plain dicts:

- KServe ``serving.kserve.io/v1beta1`` ``InferenceService`` (one per service): the predictor serves one
  version from ``storageUri``; during a canary it serves the new version and ``canaryTrafficPercent`` sends that
  share of the traffic to it, while KServe keeps the previous rolled-out revision (the stable one) for the rest.
- Argo Rollouts ``argoproj.io/v1alpha1`` ``Rollout`` (one per service): the pod template is the version being
  rolled out and the canary steps are ``setWeight: <the plan's weight>`` then an indefinite ``pause``. A new
  weight changes the steps, and Argo restarts the step sequence when they change (its ``currentStepHash``), so
  the plan, not a fixed step list, drives the weight. Without a traffic router (``argo.trafficRouting`` in the
  settings) Argo approximates the weight with replica counts.

Both hold two live versions at most (stable and canary) and mirror no traffic: a plan with a shadow member
needs the ``deployment`` runtime. Which member is stable is what the object serves now (or the stable one it
records while a canary runs): a canary starts from the version already serving.
"""

from __future__ import annotations

from apps.deployments.plans import DriverError, Member, Plan

from .manifests import live_replicas, model_env, pod_spec_extras, pod_template
from .naming import (
    ANNOTATION_FENCE,
    ANNOTATION_MODEL,
    ANNOTATION_STABLE,
    member_annotations,
    member_labels,
    service_labels,
    service_selector_labels,
)
from .objects import INFERENCE_SERVICE, ROLLOUT
from .profile import Profile

# Where KServe's storage initializer can fetch a model from (a worker's local disk is not among them).
KSERVE_STORAGE_SCHEMES = ("s3://", "gs://", "https://", "http://", "pvc://", "hdfs://", "webhdfs://", "oci://", "hf://")


def canary_split(
    plan: Plan, runtime: str, serving_now: str | None, recorded_stable: str | None
) -> tuple[Member, Member | None]:
    """(stable, canary or None) for a two-version runtime, given what the object serves now."""
    if any(m.shadow for m in plan.members):
        raise DriverError(f"the {runtime} runtime cannot mirror traffic to a shadow member; use the deployment runtime")
    live = list(plan.members)
    if len(live) == 1:
        return live[0], None
    if len(live) != 2:
        raise DriverError(f"the {runtime} runtime splits traffic between two versions at most, not {len(live)}")
    by_id = {m.version_id: m for m in live}
    if serving_now in by_id and recorded_stable in by_id and serving_now != recorded_stable:
        stable = by_id[recorded_stable]  # a canary under way: the stable side stays what it was
    elif serving_now in by_id:
        stable = by_id[serving_now]
    else:
        raise DriverError(
            f"a {runtime} canary starts from the version the service runs now ({serving_now or 'none'}); "
            "apply a plan with the stable version alone first"
        )
    canary = next(m for m in live if m.version_id != stable.version_id)
    return stable, canary


def _service_meta(plan: Plan, stable: Member, fence: int, extra: dict[str, str]) -> dict:
    return {
        "name": plan.service,
        "labels": service_labels(plan.service, plan.model),
        "annotations": {
            **extra,
            ANNOTATION_FENCE: str(fence),
            ANNOTATION_MODEL: plan.model,
            ANNOTATION_STABLE: stable.version_id,
        },
    }


def inference_service(plan: Plan, stable: Member, canary: Member | None, profile: Profile, fence: int) -> dict:
    serving = canary or stable
    if not serving.artifact_uri.startswith(KSERVE_STORAGE_SCHEMES):
        raise DriverError(
            f"KServe cannot fetch the artifact of version {serving.version} from its URI's scheme; "
            "store artifacts in S3 (or another location KServe's storage initializer reads)"
        )
    replicas = max(sum(m.replicas for m in plan.members), profile.min_replicas, 1)
    model = {
        "modelFormat": {"name": profile.kserve_format(serving.format)},
        "protocolVersion": "v2",
        "storageUri": serving.artifact_uri,
        "env": model_env(plan, serving),
    }
    if profile.kserve_runtime:
        model["runtime"] = profile.kserve_runtime
    resources = profile.resources()
    if resources:
        model["resources"] = resources
    predictor = {
        "minReplicas": replicas,
        "maxReplicas": max(replicas, profile.max_replicas),
        "labels": member_labels(plan.service, plan.model, serving),
        "annotations": member_annotations(plan.model, serving),
        "model": model,
        **pod_spec_extras(profile),
    }
    if canary is not None:
        predictor["canaryTrafficPercent"] = canary.weight
    return {
        "apiVersion": INFERENCE_SERVICE.api_version,
        "kind": INFERENCE_SERVICE.kind,
        "metadata": _service_meta(plan, stable, fence, profile.kserve_annotations),
        "spec": {"predictor": predictor},
    }


def rollout(plan: Plan, stable: Member, canary: Member | None, profile: Profile, fence: int) -> dict:
    serving = canary or stable
    replicas = sum(live_replicas(plan, profile).values())
    canary_strategy = {key: value for key, value in profile.argo_canary.items() if key != "steps"}
    canary_strategy["steps"] = [{"setWeight": canary.weight}, {"pause": {}}] if canary else []
    return {
        "apiVersion": ROLLOUT.api_version,
        "kind": ROLLOUT.kind,
        "metadata": _service_meta(plan, stable, fence, {}),
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": service_selector_labels(plan.service)},
            "template": pod_template(plan, serving, profile),
            "strategy": {"canary": canary_strategy},
        },
    }

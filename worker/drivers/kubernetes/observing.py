"""Reading back what a service runs now: Deployments, their ReplicaSets and pods; an InferenceService; a
Rollout; CronJobs. Everything is read as it is on the server, so a replica count or an image another client
changed by hand shows (state ``Drifted``, with what differs), and so do restarts and crash loops (from the pods'
container statuses) and the artifact digest actually on the pod template.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from apps.deployments.plans import MemberStatus

from .naming import (
    ANNOTATION_AUTOSCALED,
    ANNOTATION_DIGEST,
    ANNOTATION_IMAGE,
    ANNOTATION_REPLICAS,
    ANNOTATION_STABLE,
    ANNOTATION_VERSION_ID,
    ANNOTATION_WEIGHT,
    LABEL_TRAFFIC,
    service_selector,
)
from .objects import DEPLOYMENT, INFERENCE_SERVICE, POD, REPLICA_SET, ROLLOUT, Kind, Reader


@dataclass
class PodTally:
    """One member's pods: how many are ready, how often their containers restarted, why any wait."""

    pods: int = 0
    ready: int = 0
    restarts: int = 0
    reasons: set[str] = field(default_factory=set)


def _annotations(obj: dict | None) -> dict:
    return ((obj or {}).get("metadata") or {}).get("annotations") or {}


def _labels(obj: dict | None) -> dict:
    return ((obj or {}).get("metadata") or {}).get("labels") or {}


def _version_id(obj: dict) -> str:
    return _annotations(obj).get(ANNOTATION_VERSION_ID) or _labels(obj).get(ANNOTATION_VERSION_ID, "")


def tally_pods(store: Reader, service: str) -> dict[str, PodTally]:
    tallies: dict[str, PodTally] = defaultdict(PodTally)
    for pod in store.list(POD, service_selector(service)):
        if pod["metadata"].get("deletionTimestamp"):
            continue
        tally = tallies[_version_id(pod)]
        tally.pods += 1
        status = pod.get("status") or {}
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []):
            tally.ready += 1
        for box in status.get("containerStatuses") or []:
            tally.restarts += box.get("restartCount") or 0
            waiting = (box.get("state") or {}).get("waiting") or {}
            if waiting.get("reason"):
                tally.reasons.add(waiting["reason"])
        if not status.get("containerStatuses") and status.get("phase") == "Pending":
            tally.reasons.add("Unscheduled" if not (pod.get("spec") or {}).get("nodeName") else "ContainerCreating")
    return tallies


def _first_container(template: dict) -> dict:
    boxes = ((template or {}).get("spec") or {}).get("containers") or [{}]
    return next((b for b in boxes if b.get("name") == "server"), boxes[0])


def share_weights(statuses: list[MemberStatus]) -> None:
    """Observed weight of the live members: their share of the ready live pods (what a Service balances over)."""
    live = [s for s in statuses if not s.shadow]
    ready = sum(s.ready_replicas for s in live)
    for s in live:
        s.weight = round(100 * s.ready_replicas / ready) if ready else 0


def deployment_members(store: Reader, service: str) -> list[MemberStatus]:
    """One status per member Deployment: replicas as they are now, the digest on its pod template, drift."""
    pods = tally_pods(store, service)
    replica_sets = store.list(REPLICA_SET, service_selector(service))
    statuses = []
    for dep in store.list(DEPLOYMENT, service_selector(service)):
        meta, spec, status = dep["metadata"], dep.get("spec") or {}, dep.get("status") or {}
        template = spec.get("template") or {}
        version_id = _version_id(template)
        tally = pods.get(version_id, PodTally())
        desired, ready = spec.get("replicas", 1), status.get("readyReplicas") or 0
        drift = []
        applied_image, image = _annotations(dep).get(ANNOTATION_IMAGE), _first_container(template).get("image")
        if applied_image and image != applied_image:
            drift.append(f"image is {image}, Assay applied {applied_image}")
        applied_replicas = _annotations(dep).get(ANNOTATION_REPLICAS)
        autoscaled = _annotations(dep).get(ANNOTATION_AUTOSCALED) == "true"
        if applied_replicas and not autoscaled and str(desired) != applied_replicas:
            drift.append(f"replicas set to {desired}, Assay applied {applied_replicas}")
        running = {
            _annotations(rs["spec"].get("template")).get(ANNOTATION_DIGEST, "")
            for rs in replica_sets
            if any(ref.get("uid") == meta.get("uid") for ref in rs["metadata"].get("ownerReferences") or [])
            and (rs.get("status") or {}).get("replicas")
        }
        notes = list(drift)
        if len(running) > 1:
            notes.append(f"pods of {len(running)} artifact digests are running (a rollout is under way)")
        conditions = {c.get("type"): c for c in status.get("conditions") or []}
        if drift:
            state = "Drifted"
        elif tally.reasons - {"ContainerCreating"}:
            state = sorted(tally.reasons - {"ContainerCreating"})[0]
        elif (conditions.get("Progressing") or {}).get("reason") == "ProgressDeadlineExceeded":
            state = "ProgressDeadlineExceeded"
        elif desired == 0:
            state = "ScaledToZero"
        elif (conditions.get("Available") or {}).get("status") == "True" and ready >= desired:
            state = "Available"
        else:
            state = "Progressing"
        statuses.append(
            MemberStatus(
                version_id=version_id,
                digest=_annotations(template).get(ANNOTATION_DIGEST, ""),
                weight=0,
                shadow=(template.get("metadata") or {}).get("labels", {}).get(LABEL_TRAFFIC) == "shadow",
                desired_replicas=desired,
                ready_replicas=ready,
                restarts=tally.restarts,
                state=state,
                message="; ".join(notes),
            )
        )
    share_weights(statuses)
    return statuses


def inference_service_members(store: Reader, service: str, recorded: dict[str, dict]) -> list[MemberStatus]:
    """The version the predictor serves and, during a canary, the stable one KServe keeps; traffic shares as
    KServe reports them in ``status.components.predictor.traffic``."""
    isvc = store.get(INFERENCE_SERVICE, service)
    if isvc is None:
        return []
    predictor = (isvc.get("spec") or {}).get("predictor") or {}
    serving = (predictor.get("annotations") or {}).get(ANNOTATION_VERSION_ID, "")
    stable = _annotations(isvc).get(ANNOTATION_STABLE, serving)
    status = isvc.get("status") or {}
    traffic = ((status.get("components") or {}).get("predictor") or {}).get("traffic") or []
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    pods = tally_pods(store, service)
    latest = sum(t.get("percent") or 0 for t in traffic if t.get("latestRevision"))
    previous = sum(t.get("percent") or 0 for t in traffic if not t.get("latestRevision"))
    members = [(serving, (predictor.get("annotations") or {}).get(ANNOTATION_DIGEST, ""), latest)]
    if stable != serving:
        members.append((stable, (recorded.get(stable) or {}).get("digest", ""), previous))
    state = (ready or {}).get("reason") or ("Ready" if (ready or {}).get("status") == "True" else "")
    message = (ready or {}).get("message") or ("" if traffic else "KServe has not reported traffic yet")
    return [
        MemberStatus(
            version_id=version_id,
            digest=digest,
            weight=weight,
            desired_replicas=predictor.get("minReplicas") or 0,
            ready_replicas=pods.get(version_id, PodTally()).ready,
            restarts=pods.get(version_id, PodTally()).restarts,
            state=state or "Unknown",
            message=message,
        )
        for version_id, digest, weight in members
    ]


def rollout_members(store: Reader, service: str, recorded: dict[str, dict]) -> list[MemberStatus]:
    """The Rollout's pod template (the version rolled out) and its stable version; weights from Argo's status
    when it routes traffic, else from the ready pods."""
    ro = store.get(ROLLOUT, service)
    if ro is None:
        return []
    spec, status = ro.get("spec") or {}, ro.get("status") or {}
    template = spec.get("template") or {}
    serving = _version_id(template)
    stable = _annotations(ro).get(ANNOTATION_STABLE, serving)
    steps = ((spec.get("strategy") or {}).get("canary") or {}).get("steps") or []
    set_weight = next((s["setWeight"] for s in steps if "setWeight" in s), 100)
    replicas = spec.get("replicas", 1)
    canary_replicas = -(-replicas * set_weight // 100) if stable != serving else replicas
    routed = (status.get("canary") or {}).get("weights") or {}
    pods = tally_pods(store, service)
    members = [(serving, _annotations(template).get(ANNOTATION_DIGEST, ""), canary_replicas, "canary")]
    if stable != serving:
        members.append((stable, (recorded.get(stable) or {}).get("digest", ""), replicas - canary_replicas, "stable"))
    statuses = [
        MemberStatus(
            version_id=version_id,
            digest=digest,
            weight=(routed.get(side) or {}).get("weight", 0),
            desired_replicas=desired,
            ready_replicas=pods.get(version_id, PodTally()).ready,
            restarts=pods.get(version_id, PodTally()).restarts,
            state=status.get("phase") or "Unknown",
            message=status.get("message") or ("" if status else "Argo Rollouts has not reported status yet"),
        )
        for version_id, digest, desired, side in members
    ]
    if not routed:
        share_weights(statuses)
    return statuses


def cron_job_members(store: Reader, service: str, kind: Kind) -> list[MemberStatus]:
    """A batch service's CronJobs: running jobs as ready replicas, the schedule and last run as the message."""
    statuses = []
    for cron in store.list(kind, service_selector(service)):
        spec, status = cron.get("spec") or {}, cron.get("status") or {}
        template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
        image, applied = _first_container(template).get("image"), _annotations(cron).get(ANNOTATION_IMAGE)
        drift = f"image is {image}, Assay applied {applied}" if applied and image != applied else ""
        statuses.append(
            MemberStatus(
                version_id=_version_id(template),
                digest=_annotations(template).get(ANNOTATION_DIGEST, ""),
                weight=int(_annotations(cron).get(ANNOTATION_WEIGHT) or 0),
                shadow=(template.get("metadata") or {}).get("labels", {}).get(LABEL_TRAFFIC) == "shadow",
                ready_replicas=len(status.get("active") or []),
                state="Drifted" if drift else "Suspended" if spec.get("suspend") else "Scheduled",
                message=drift
                or f"schedule {spec.get('schedule')}; last run {status.get('lastScheduleTime') or 'never'}",
            )
        )
    return statuses

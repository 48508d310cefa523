"""The Kubernetes deployment driver: a plan in, objects on the cluster out; what runs, read back.

Per service (``plan.service``) it writes, in one namespace:

- always: a ConfigMap ``<service>-assay-plan`` (the anchor) holding the fence and the plan last applied;
- runtime ``deployment``: per member a Deployment, per member with pods an HPA (when the profile autoscales)
  and a PodDisruptionBudget, and one Service selecting the live members' pods;
- runtime ``kserve``: one KServe ``InferenceService``; runtime ``argo``: one Argo ``Rollout``;
- a batch plan (``plan.kind == "batch"``): per member a CronJob.

``apply`` writes the anchor first, then each object (fenced, optimistic: ``fencing``), then deletes the objects
of the service the plan no longer lists; it never waits for pods. The API versions of HPAs, PDBs and CronJobs
are the newest the server serves.
"""

from __future__ import annotations

import json

from apps.deployments.plans import DriverError, Member, MemberStatus, Observed, Plan

from .connection import connect
from .custom import canary_split, inference_service, rollout
from .fencing import check_fence, delete, fence_of, put
from .manifests import anchor as anchor_manifest
from .manifests import autoscaler, cron_job, deployment, disruption_budget, live_replicas, replica_bounds
from .manifests import service as service_manifest
from .naming import (
    ANNOTATION_STABLE,
    ANNOTATION_VERSION_ID,
    ANNOTATION_WEIGHT,
    ASSAY_SELECTOR,
    LABEL_SERVICE,
    anchor_name,
    service_selector,
)
from .objects import (
    AUTOSCALERS,
    CONFIG_MAP,
    CRON_JOBS,
    DEPLOYMENT,
    DISRUPTION_BUDGETS,
    INFERENCE_SERVICE,
    ROLLOUT,
    SERVICE,
    Kind,
    ObjectStore,
    Reader,
    Snapshot,
)
from .observing import cron_job_members, deployment_members, inference_service_members, rollout_members
from .profile import profile_from_settings

Desired = list[tuple[Kind, dict, object]]  # (kind, manifest, adjust(current, desired) or None)


def _keep_cluster_addresses(current: dict, desired: dict) -> None:
    """A Service's cluster IPs and node ports are the server's: carry them over instead of changing them."""
    have, want = current.get("spec") or {}, desired["spec"]
    for key in ("clusterIP", "clusterIPs", "healthCheckNodePort"):
        if key in have:
            want[key] = have[key]
    ports = {p.get("name"): p.get("nodePort") for p in have.get("ports") or [] if p.get("nodePort")}
    for port in want["ports"]:
        if port["name"] in ports and want.get("type") != "ClusterIP":
            port["nodePort"] = ports[port["name"]]


def _keep_autoscaled_replicas(bounds: tuple[int, int]):
    """The HPA owns an autoscaled Deployment's replica count: keep it, inside the plan's bounds, while the
    member's weight stays; a new weight is a traffic decision, so it resets the count to the weight's share."""

    def adjust(current: dict, desired: dict) -> None:
        annotations = (current.get("metadata") or {}).get("annotations") or {}
        if annotations.get(ANNOTATION_WEIGHT) != desired["metadata"]["annotations"][ANNOTATION_WEIGHT]:
            return
        now = (current.get("spec") or {}).get("replicas", bounds[0])
        desired["spec"]["replicas"] = min(max(now, bounds[0]), bounds[1])

    return adjust


class KubernetesDriver:
    """Deploys a model's service into one namespace of one cluster (see the module docstring)."""

    kind = "kubernetes"

    def __init__(self, settings: dict, secrets: dict) -> None:
        connection = connect(settings, secrets)
        self.profile = profile_from_settings(settings, connection.namespace)
        self.store = ObjectStore(connection)

    # -- the interface

    def apply(self, plan: Plan) -> None:
        """Make the namespace run exactly ``plan`` (idempotent; refuses a stale fence; never waits)."""
        store, fence = self.store, plan.fence
        if plan.kind == "batch":
            desired = self._batch(plan)
        elif self.profile.runtime == "kserve":
            desired = self._kserve(plan)
        elif self.profile.runtime == "argo":
            desired = self._argo(plan)
        else:
            desired = self._deployments(plan)
        # The anchor first: a worker under an older token fails here, before touching anything else.
        put(store, CONFIG_MAP, anchor_manifest(plan, self.profile.runtime, fence), fence)
        for kind, body, adjust in desired:
            put(store, kind, body, fence, adjust)
        keep = {(kind.kind, body["metadata"]["name"]) for kind, body, _ in desired}
        for kind in self._kinds():
            for obj in store.list(kind, service_selector(plan.service)):
                if (kind.kind, obj["metadata"]["name"]) not in keep:
                    delete(store, kind, obj, fence)

    def observe(self, service: str) -> Observed:
        """What ``service`` runs now, read from the server (``exists=False`` when nothing of it is there)."""
        return self._observe(self.store, service)

    def _observe(self, store: Reader, service: str) -> Observed:
        anchor = store.get(CONFIG_MAP, anchor_name(service))
        data = (anchor or {}).get("data") or {}
        record = json.loads(data.get("plan") or "{}")
        recorded = {m["version_id"]: m for m in json.loads(data.get("members") or "[]")}
        runtime = record.get("runtime") or self.profile.runtime
        notes = []
        if record.get("kind") == "batch":
            members = cron_job_members(store, service, store.first_served(*CRON_JOBS))
        elif runtime == "kserve":
            members = inference_service_members(store, service, recorded)
        elif runtime == "argo":
            members = rollout_members(store, service, recorded)
        else:
            members = deployment_members(store, service)
            live = [m for m in members if not m.shadow and m.desired_replicas]
            if live and store.get(SERVICE, service) is None:
                notes.append(f"the Service {service} is missing")
        seen = {m.version_id for m in members}
        for version_id, entry in recorded.items():
            if version_id not in seen:
                members.append(
                    MemberStatus(
                        version_id=version_id,
                        digest=entry.get("digest", ""),
                        weight=0,
                        shadow=entry.get("shadow", False),
                        state="Missing",
                        message="the plan lists this version but nothing of it runs",
                    )
                )
        return Observed(
            service=service,
            exists=anchor is not None or bool(seen),
            fence=fence_of(anchor),
            model=record.get("model") or "",
            members=members,
            message="; ".join(notes),
        )

    def remove(self, service: str, fence: int) -> None:
        """Delete everything of ``service`` (idempotent; refuses a stale fence); the anchor goes last."""
        anchor = self.store.get(CONFIG_MAP, anchor_name(service))
        check_fence(anchor, fence, CONFIG_MAP.kind)
        for kind in self._kinds():
            for obj in self.store.list(kind, service_selector(service)):
                delete(self.store, kind, obj, fence)
        if anchor is not None:
            delete(self.store, CONFIG_MAP, anchor, fence)

    def services(self) -> list[Observed]:
        """Every service in the namespace that carries Assay's labels, anchored or not.

        One pass reads each kind once (a ``Snapshot``), not each service's objects one request at a time.
        """
        view = Snapshot(self.store, ASSAY_SELECTOR, by=LABEL_SERVICE)
        names = set()
        for kind in (CONFIG_MAP, *self._kinds()):
            names.update(obj["metadata"]["labels"][LABEL_SERVICE] for obj in view.list(kind, ASSAY_SELECTOR))
        return [self._observe(view, name) for name in sorted(names)]

    # -- what each runtime writes

    def _kinds(self) -> list[Kind]:
        """Every kind the driver may have written here: the served version of each, custom ones if installed."""
        kinds = [
            DEPLOYMENT,
            SERVICE,
            self.store.first_served(*AUTOSCALERS),
            self.store.first_served(*DISRUPTION_BUDGETS),
            self.store.first_served(*CRON_JOBS),
        ]
        return kinds + [kind for kind in (INFERENCE_SERVICE, ROLLOUT) if self.store.served(kind)]

    def _deployments(self, plan: Plan) -> Desired:
        profile, fence = self.profile, plan.fence
        counts = live_replicas(plan, profile)
        desired: Desired = []
        for member in plan.members:
            replicas = member.replicas if member.shadow else counts[member.version_id]
            bounds = replica_bounds(plan, member, replicas, profile)
            autoscaled = profile.autoscaled and replicas > 0
            body = deployment(plan, member, replicas, profile, fence)
            desired.append((DEPLOYMENT, body, _keep_autoscaled_replicas(bounds) if autoscaled else None))
            if autoscaled:
                kind = self.store.first_served(*AUTOSCALERS)
                desired.append((kind, autoscaler(plan, member, bounds, profile, kind, fence), None))
            if replicas > 0 and (profile.pdb_max_unavailable is not None or profile.pdb_min_available is not None):
                kind = self.store.first_served(*DISRUPTION_BUDGETS)
                desired.append((kind, disruption_budget(plan, member, profile, kind, fence), None))
        if any(not m.shadow for m in plan.members):
            desired.append((SERVICE, service_manifest(plan, profile, fence), _keep_cluster_addresses))
        return desired

    def _batch(self, plan: Plan) -> Desired:
        if not plan.schedule:
            raise DriverError("a batch plan needs a schedule (a cron expression)")
        kind = self.store.first_served(*CRON_JOBS)
        return [(kind, cron_job(plan, m, self.profile, kind, plan.fence), None) for m in plan.members]

    def _split(self, plan: Plan, kind: Kind, serving_path: tuple[str, ...]) -> tuple[Member, Member | None]:
        if not self.store.served(kind):
            raise DriverError(f"the cluster does not serve {kind.api_version} {kind.plural} (is the CRD installed?)")
        current = self.store.get(kind, plan.service) or {}
        node = current
        for key in serving_path:
            node = (node or {}).get(key) or {}
        serving_now = (node.get("annotations") or {}).get(ANNOTATION_VERSION_ID)
        recorded = ((current.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_STABLE)
        return canary_split(plan, self.profile.runtime, serving_now, recorded)

    def _kserve(self, plan: Plan) -> Desired:
        stable, canary = self._split(plan, INFERENCE_SERVICE, ("spec", "predictor"))
        return [(INFERENCE_SERVICE, inference_service(plan, stable, canary, self.profile, plan.fence), None)]

    def _argo(self, plan: Plan) -> Desired:
        stable, canary = self._split(plan, ROLLOUT, ("spec", "template", "metadata"))
        return [(ROLLOUT, rollout(plan, stable, canary, self.profile, plan.fence), None)]

"""The Kubernetes driver's ``deployment`` runtime against a REAL kube-apiserver 1.20.2 with its
kube-controller-manager (ReplicaSet, Deployment, namespace and garbage-collector controllers running); the
scheduler and kubelet are played by the ``kubelet`` fixture. Objects are created, updated, scaled and deleted
on that server and read back through another client."""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from apps.deployments.plans import StaleFence
from tests.worker.kubernetes.conftest import DIGEST_A, DIGEST_B, GPU_PROFILE, MERGE_PATCH, member, plan, wait_for
from worker.drivers.kubernetes.objects import DEPLOYMENT, ConcurrentWrite

pytestmark = [pytest.mark.service, pytest.mark.slow]

SERVICE = "credit-scoring"


def _deployments(kube_api, namespace) -> dict:
    items = client.AppsV1Api(kube_api).list_namespaced_deployment(namespace).items
    return {d.metadata.name: d for d in items}


def _versions(kube_api, namespace) -> dict[str, set[str]]:
    """Which API versions the server's objects were found under (the 1.20 server's newest of each)."""
    custom = client.CustomObjectsApi(kube_api)
    out = {}
    for group, version, plural in (
        ("autoscaling", "v2beta2", "horizontalpodautoscalers"),
        ("policy", "v1beta1", "poddisruptionbudgets"),
    ):
        found = custom.list_namespaced_custom_object(group, version, namespace, plural)["items"]
        out[plural] = {item["metadata"]["name"] for item in found}
    return out


def _settled(kube_api, namespace, pods: int) -> bool:
    """Every Deployment's controller has caught up with its spec and the namespace holds ``pods`` pods."""
    deployments = client.AppsV1Api(kube_api).list_namespaced_deployment(namespace).items
    caught_up = all(
        d.status.observed_generation == d.metadata.generation and (d.status.replicas or 0) == d.spec.replicas
        for d in deployments
    )
    return caught_up and len(client.CoreV1Api(kube_api).list_namespaced_pod(namespace).items) == pods


def test_a_canary_plan_creates_gpu_deployments_a_service_autoscalers_and_budgets(make_driver, kube_api, namespace):
    """Ran against the real 1.20 API server: every object is created there, and read back by another client."""
    # given a GPU profile that autoscales, and a plan with a 90/10 canary and a shadow
    driver = make_driver(**GPU_PROFILE)
    stable, canary = member("3", 90, replicas=9), member("4", 10, digest=DIGEST_B, replicas=1)
    shadow = member("5", 0, shadow=True, replicas=1, version_id="ver_5")
    # when
    driver.apply(plan(stable, canary, shadow, fence=7))
    # then one Deployment per member, replicas in the weights' ratio, the plan's labels and the fence on each
    deps = _deployments(kube_api, namespace)
    assert sorted(deps) == [f"{SERVICE}-v3", f"{SERVICE}-v4", f"{SERVICE}-v5"]
    assert [deps[f"{SERVICE}-v{v}"].spec.replicas for v in "345"] == [9, 1, 1]
    dep = deps[f"{SERVICE}-v4"]
    assert dep.metadata.annotations["assay.dev/fence"] == "7"
    assert dep.metadata.annotations["assay.dev/digest"] == DIGEST_B  # the full digest: labels stop at 63
    assert dep.metadata.labels["assay.dev/digest"] == DIGEST_B[:63]
    assert dep.metadata.labels["assay.dev/version-id"] == "ver_4"
    assert dep.metadata.labels["app.kubernetes.io/managed-by"] == "assay"
    pod = dep.spec.template
    assert pod.metadata.annotations["assay.dev/digest"] == DIGEST_B
    box = pod.spec.containers[0]
    assert box.image == "registry.example/assay/onnx-server:1.4"
    assert box.resources.limits == {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"}
    assert box.readiness_probe.http_get.path == "/v2/health/ready"
    assert {e.name: e.value for e in box.env}["ASSAY_MODEL_SHA256"] == DIGEST_B
    assert pod.spec.node_selector == {"kubernetes.azure.com/accelerator": "nvidia"}
    assert pod.spec.tolerations[0].key == "nvidia.com/gpu"
    # the Service selects live pods only: the shadow's pods are labelled out of it
    svc = client.CoreV1Api(kube_api).read_namespaced_service(SERVICE, namespace)
    assert svc.spec.selector == {
        "app.kubernetes.io/managed-by": "assay",
        "assay.dev/service": SERVICE,
        "assay.dev/traffic": "live",
    }
    assert deps[f"{SERVICE}-v5"].spec.template.metadata.labels["assay.dev/traffic"] == "shadow"
    # HPAs and PDBs under the newest versions a 1.20 server serves (autoscaling/v2beta2, policy/v1beta1)
    found = _versions(kube_api, namespace)
    assert found["horizontalpodautoscalers"] == {f"{SERVICE}-v3", f"{SERVICE}-v4", f"{SERVICE}-v5"}
    assert found["poddisruptionbudgets"] == {f"{SERVICE}-v3", f"{SERVICE}-v4", f"{SERVICE}-v5"}
    hpa = client.CustomObjectsApi(kube_api).get_namespaced_custom_object(
        "autoscaling", "v2beta2", namespace, "horizontalpodautoscalers", f"{SERVICE}-v4"
    )
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 2)  # 10 % of the profile's 20


def test_applying_the_same_plan_twice_writes_nothing(make_driver, kube_api, namespace):
    """Ran against the real 1.20 API server: once the controllers have written the Deployments' status, no
    resourceVersion of the Deployments, the Service or the anchor moves on the second apply."""
    # given
    driver = make_driver(**GPU_PROFILE)
    the_plan = plan(member("3", 50, replicas=2), member("4", 50, digest=DIGEST_B, replicas=2), fence=2)
    driver.apply(the_plan)

    def versions() -> dict[str, str]:
        out = {name: d.metadata.resource_version for name, d in _deployments(kube_api, namespace).items()}
        core = client.CoreV1Api(kube_api)
        out["service"] = core.read_namespaced_service(SERVICE, namespace).metadata.resource_version
        out["anchor"] = core.read_namespaced_config_map(f"{SERVICE}-assay-plan", namespace).metadata.resource_version
        return out

    def settled() -> dict[str, str] | None:
        first = versions()
        time.sleep(1)
        return first if versions() == first else None

    before = wait_for(settled, what="the controllers to stop updating the Deployments")
    # when
    driver.apply(the_plan)
    # then
    assert versions() == before


def test_observe_reports_ready_replicas_weights_and_the_digest_on_the_pod_template(make_driver, kubelet):
    """Ran against the real 1.20 API server and its controller-manager; pods bound and reported ready by the
    ``kubelet`` fixture, so the Deployment controller's own status is what the driver reads."""
    # given
    driver = make_driver()
    driver.apply(plan(member("3", 75, replicas=3), member("4", 25, digest=DIGEST_B, replicas=1), fence=3))
    wait_for(lambda: len(kubelet.pods()) == 4, what="4 pods from the ReplicaSet controller")
    # when the kubelet reports them running and ready
    kubelet.run()
    observed = wait_for(
        lambda: (
            (o := driver.observe(SERVICE))
            and len(o.members) == 2
            and all(m.state == "Available" for m in o.members)
            and o
        ),
        what="both Deployments available",
    )
    # then
    by_version = {m.version_id: m for m in observed.members}
    assert observed.exists and observed.fence == 3 and observed.model == "credit-scoring"
    assert (by_version["ver_3"].ready_replicas, by_version["ver_3"].desired_replicas) == (3, 3)
    assert (by_version["ver_4"].ready_replicas, by_version["ver_4"].weight) == (1, 25)
    assert by_version["ver_3"].weight == 75
    assert by_version["ver_4"].digest == DIGEST_B
    assert by_version["ver_4"].restarts == 0


def test_the_service_sends_traffic_to_live_pods_only(make_driver, kube_api, namespace, kubelet):
    """Ran against the real 1.20 API server and its endpoints controller: once the pods run, the Service's
    Endpoints hold the ready live pods' addresses, and never a shadow pod's."""
    # given a 50/50 split and a shadow, all pods running and ready
    driver = make_driver()
    driver.apply(plan(member("3", 50), member("4", 50, digest=DIGEST_B), member("5", 0, shadow=True), fence=1))
    wait_for(lambda: len(kubelet.pods()) == 3, what="3 pods")
    kubelet.run()
    core = client.CoreV1Api(kube_api)

    def addresses() -> set[str]:
        endpoints = core.read_namespaced_endpoints(SERVICE, namespace)
        return {a.ip for subset in endpoints.subsets or [] for a in subset.addresses or []}

    # when the endpoints controller has caught up
    ready = wait_for(lambda: len(addresses()) == 2 and addresses(), what="two ready endpoints")
    # then
    shadow_pod = kubelet.pods("assay.dev/traffic=shadow")[0]
    live_pods = kubelet.pods("assay.dev/traffic=live")
    assert ready == {kubelet.address(p.metadata.name) for p in live_pods}
    assert kubelet.address(shadow_pod.metadata.name) not in ready


def test_a_crash_looping_pod_shows_its_restarts_and_reason(make_driver, kubelet):
    """Ran against the real 1.20 API server: the ``kubelet`` fixture reports one member's container waiting in
    CrashLoopBackOff after 4 restarts; the driver reads that from the pod's container statuses."""
    # given
    driver = make_driver()
    driver.apply(plan(member("3", 50, replicas=1), member("4", 50, digest=DIGEST_B, replicas=1), fence=1))
    wait_for(lambda: len(kubelet.pods()) == 2, what="2 pods")
    # when
    kubelet.run("assay.dev/version-id=ver_3")
    kubelet.run("assay.dev/version-id=ver_4", ready=False, restarts=4, reason="CrashLoopBackOff")
    observed = wait_for(
        lambda: (
            (o := driver.observe(SERVICE)) and {m.version_id: m for m in o.members}["ver_3"].ready_replicas == 1 and o
        ),
        what="the healthy member ready",
    )
    # then
    crashing = {m.version_id: m for m in observed.members}["ver_4"]
    assert (crashing.restarts, crashing.ready_replicas, crashing.state) == (4, 0, "CrashLoopBackOff")
    assert {m.version_id: m.weight for m in observed.members} == {"ver_3": 100, "ver_4": 0}


def test_a_stale_fence_is_refused_and_changes_nothing(make_driver, kube_api, namespace):
    """Ran against the real 1.20 API server: the fence annotation written under token 5 refuses token 4."""
    # given
    driver = make_driver()
    driver.apply(plan(member("3", 100, replicas=2), fence=5))
    before = _deployments(kube_api, namespace)[f"{SERVICE}-v3"]
    # when / then
    with pytest.raises(StaleFence, match="fencing token 5"):
        driver.apply(plan(member("4", 100, digest=DIGEST_B), fence=4))
    with pytest.raises(StaleFence):
        driver.remove(SERVICE, fence=4)
    deps = _deployments(kube_api, namespace)
    assert sorted(deps) == [f"{SERVICE}-v3"]
    # the spec was not written again (the controllers still write its status, so its resourceVersion moves)
    assert deps[f"{SERVICE}-v3"].metadata.generation == before.metadata.generation
    assert deps[f"{SERVICE}-v3"].metadata.annotations["assay.dev/fence"] == "5"
    assert driver.observe(SERVICE).fence == 5


def test_a_write_over_a_changed_object_gets_a_409_not_a_lost_update(make_driver, kube_api, namespace):
    """Ran against the real 1.20 API server: a replace carrying the resourceVersion read before another client
    wrote is refused with 409 (``ConcurrentWrite``), and so is a delete with that precondition."""
    # given the driver's view of a Deployment, then another client's change
    driver = make_driver()
    driver.apply(plan(member("3", 100), fence=1))
    seen = driver.store.get(DEPLOYMENT, f"{SERVICE}-v3")
    client.AppsV1Api(kube_api).patch_namespaced_deployment(
        f"{SERVICE}-v3", namespace, {"metadata": {"labels": {"team": "other"}}}, _content_type=MERGE_PATCH
    )
    # when / then
    seen["spec"]["replicas"] = 4
    with pytest.raises(ConcurrentWrite, match="409"):
        driver.store.replace(DEPLOYMENT, seen)
    with pytest.raises(ConcurrentWrite, match="409"):
        driver.store.delete(DEPLOYMENT, f"{SERVICE}-v3", seen["metadata"]["resourceVersion"])
    assert _deployments(kube_api, namespace)[f"{SERVICE}-v3"].spec.replicas == 1


def test_a_hand_edited_deployment_is_visible_and_the_next_apply_puts_it_back(make_driver, kube_api, namespace):
    """Ran against the real 1.20 API server: another client scales a Deployment and changes its image;
    ``observe`` and ``services()`` show both, and applying the plan again restores them."""
    # given
    driver = make_driver()
    the_plan = plan(member("3", 100, replicas=2), fence=1)
    driver.apply(the_plan)
    # when someone edits it by hand
    client.AppsV1Api(kube_api).patch_namespaced_deployment(
        f"{SERVICE}-v3",
        namespace,
        {"spec": {"replicas": 5, "template": {"spec": {"containers": [{"name": "server", "image": "evil/x:1"}]}}}},
        _content_type=MERGE_PATCH,
    )
    # then
    status = driver.observe(SERVICE).members[0]
    assert status.state == "Drifted"
    assert status.desired_replicas == 5
    assert "image is evil/x:1" in status.message and "replicas set to 5, Assay applied 2" in status.message
    listed = {o.service: o for o in driver.services()}
    assert listed[SERVICE].members[0].state == "Drifted"
    # and the next apply (the reconciler's) puts the plan back
    driver.apply(the_plan)
    dep = _deployments(kube_api, namespace)[f"{SERVICE}-v3"]
    assert (dep.spec.replicas, dep.spec.template.spec.containers[0].image) == (
        2,
        "registry.example/assay/onnx-server:1.4",
    )
    assert driver.observe(SERVICE).members[0].state != "Drifted"


def test_a_deployment_or_service_deleted_by_hand_is_reported(make_driver, kube_api, namespace):
    """Ran against the real 1.20 API server: another client deletes one member's Deployment and the Service;
    ``observe`` reports the member as Missing and the Service as missing, and the next apply recreates both."""
    # given
    driver = make_driver()
    the_plan = plan(member("3", 50), member("4", 50, digest=DIGEST_B), fence=1)
    driver.apply(the_plan)
    # when
    client.AppsV1Api(kube_api).delete_namespaced_deployment(f"{SERVICE}-v4", namespace, _preload_content=False)
    client.CoreV1Api(kube_api).delete_namespaced_service(SERVICE, namespace, _preload_content=False)
    # then
    observed = driver.observe(SERVICE)
    assert {(m.version_id, m.digest, m.state) for m in observed.members if m.state == "Missing"} == {
        ("ver_4", DIGEST_B, "Missing")
    }
    assert observed.message == f"the Service {SERVICE} is missing"
    driver.apply(the_plan)
    assert sorted(_deployments(kube_api, namespace)) == [f"{SERVICE}-v3", f"{SERVICE}-v4"]
    assert driver.observe(SERVICE).message == ""


def test_scaling_promoting_and_removing(make_driver, kube_api, namespace):
    """Ran against the real 1.20 API server: a new weight rescales, a promotion deletes the old member's
    Deployment, autoscaler and budget, and ``remove`` deletes everything of the service."""
    # given
    driver = make_driver(**GPU_PROFILE)
    driver.apply(plan(member("3", 90, replicas=9), member("4", 10, digest=DIGEST_B, replicas=1), fence=1))
    # when the canary goes to half
    driver.apply(plan(member("3", 50, replicas=5), member("4", 50, digest=DIGEST_B, replicas=5), fence=1))
    deps = _deployments(kube_api, namespace)
    assert (deps[f"{SERVICE}-v3"].spec.replicas, deps[f"{SERVICE}-v4"].spec.replicas) == (5, 5)
    # when it is promoted
    driver.apply(plan(member("4", 100, digest=DIGEST_B, replicas=4), fence=2))
    assert sorted(_deployments(kube_api, namespace)) == [f"{SERVICE}-v4"]
    assert _versions(kube_api, namespace) == {
        "horizontalpodautoscalers": {f"{SERVICE}-v4"},
        "poddisruptionbudgets": {f"{SERVICE}-v4"},
    }
    # when it is removed
    driver.remove(SERVICE, fence=2)
    assert _deployments(kube_api, namespace) == {}
    assert client.CoreV1Api(kube_api).list_namespaced_service(namespace).items == []
    assert _versions(kube_api, namespace) == {"horizontalpodautoscalers": set(), "poddisruptionbudgets": set()}
    assert driver.observe(SERVICE).exists is False
    assert driver.services() == []
    driver.remove(SERVICE, fence=2)  # idempotent


def test_services_lists_every_assay_service_in_the_namespace(make_driver, kube_api, namespace):
    """Ran against the real 1.20 API server: two services of two models, and a Deployment nobody labelled."""
    # given
    driver = make_driver()
    driver.apply(plan(member("3", 100), fence=1))
    driver.apply(plan(member("1", 100, digest=DIGEST_B), fence=1, service="fraud", model="fraud"))
    client.AppsV1Api(kube_api).create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "unrelated"},
            "spec": {
                "selector": {"matchLabels": {"app": "x"}},
                "template": {
                    "metadata": {"labels": {"app": "x"}},
                    "spec": {"containers": [{"name": "x", "image": "x"}]},
                },
            },
        },
    )
    # when
    listed = driver.services()
    # then
    assert [(o.service, o.model, o.fence) for o in listed] == [
        ("credit-scoring", "credit-scoring", 1),
        ("fraud", "fraud", 1),
    ]
    assert [m.digest for m in listed[1].members] == [DIGEST_B]


def test_reading_back_every_service_lists_each_kind_once_and_answers_as_observe_does(make_driver, kube_api, namespace):
    """Ran against the real 1.20 API server: the reconciler's pass (``services()``) over six services, one scaled
    by hand and one whose Service was deleted, answers for each exactly what ``observe`` answers, with one
    list request per kind whatever the number of services (the per-service reads went from ~5 requests each
    to none). The requests are counted at the driver's one call path; the server answers them all."""
    # given six services, two of them changed by hand
    driver = make_driver()
    names = [f"svc-{i}" for i in range(6)]
    for i, name in enumerate(names):
        driver.apply(plan(member("3", 50), member("4", 50, digest=DIGEST_B), fence=1, service=name, model=f"m{i}"))
    client.AppsV1Api(kube_api).patch_namespaced_deployment(
        "svc-1-v3", namespace, {"spec": {"replicas": 7}}, _content_type=MERGE_PATCH
    )
    client.CoreV1Api(kube_api).delete_namespaced_service("svc-2", namespace, _preload_content=False)
    wait_for(lambda: _settled(kube_api, namespace, pods=6 * 2 + 6), "the controllers to create every pod")
    requests: list[tuple[str, str]] = []
    call = driver.store._call

    def counted(verb, kind, name, fn, missing_ok=False):
        requests.append((verb, kind.plural))
        return call(verb, kind, name, fn, missing_ok=missing_ok)

    # when the pass reads them back (again, should a controller have written a status between the two reads)
    for _ in range(5):
        one_by_one = [driver.observe(name) for name in names]
        driver.store._call, requests[:] = counted, []
        listed = driver.services()
        driver.store._call = call
        if listed == one_by_one:
            break
        time.sleep(0.5)
    # then the same answers, drift included
    assert listed == one_by_one
    assert listed[1].members[0].message == "replicas set to 7, Assay applied 1"
    assert listed[2].message == "the Service svc-2 is missing"
    # and each kind was listed once; the one read is svc-2's Service, which the listing did not hold
    lists = [plural for verb, plural in requests if verb == "list"]
    assert len(lists) == len(set(lists)) and {"configmaps", "deployments", "pods", "replicasets"} <= set(lists)
    assert [r for r in requests if r[0] != "list"] == [("read", "services")]


def test_a_batch_plan_becomes_a_cron_job_with_the_gpu_profile(make_driver, kube_api, namespace):
    """Ran against the real 1.20 API server, which serves CronJobs as batch/v1beta1 only (batch/v1 from 1.21)."""
    # given
    driver = make_driver(**GPU_PROFILE, batch={"args": ["score", "--input", "s3://data/daily/"]})
    # when
    driver.apply(plan(member("3", 100), fence=1, kind="batch", schedule="15 2 * * *"))
    # then
    cron = client.CustomObjectsApi(kube_api).get_namespaced_custom_object(
        "batch", "v1beta1", namespace, "cronjobs", f"{SERVICE}-v3"
    )
    assert cron["spec"]["schedule"] == "15 2 * * *"
    assert cron["metadata"]["annotations"]["assay.dev/fence"] == "1"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]
    assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["spec"]["containers"][0]["args"] == ["score", "--input", "s3://data/daily/"]
    assert pod["spec"]["restartPolicy"] == "OnFailure"
    observed = driver.observe(SERVICE)
    assert [(m.version_id, m.digest, m.state) for m in observed.members] == [("ver_3", DIGEST_A, "Scheduled")]

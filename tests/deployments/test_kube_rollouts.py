# ruff: noqa: F811 - pytest fixtures imported from other modules are parameters here
"""Rollouts end to end on a Kubernetes target: the real engine, the real driver, a REAL API server.

The API server is kube-apiserver and kube-controller-manager 1.20.2 on etcd (``scripts/services/kube.sh``,
started by ``.ci/run``); its own ReplicaSet and Deployment controllers count the pods. There is no
scheduler and no kubelet, so the test plays both (``Kubelet``: binds pods to a node with
``nvidia.com/gpu`` capacity and reports them running, or crash-looping with restarts). The rollout's jobs
run through the real job runner (``tests/deployments/serving.drive``), as workers run them; the
governance re-check re-hashes the approved artifact's bytes from this test's storage before each apply.
A Kubernetes Deployment has no request counters, so the steps here judge readiness and restarts.
"""

from __future__ import annotations

import pytest
from kubernetes import client

from apps.deployments import services
from apps.deployments.choices import DeploymentState
from apps.deployments.plans import LABEL_DIGEST, LABEL_VERSION, LABEL_VERSION_ID
from tests.deployments.conftest import stored_version, who
from tests.deployments.serving import drive
from tests.worker.kubernetes.conftest import (  # noqa: F401 - fixtures
    GPU_PROFILE,
    IMAGES,
    crds,
    gpu_node,
    kube_api,
    kube_server,
    kubelet,
    namespace,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db, pytest.mark.timeout(240), pytest.mark.embedded_pass]


@pytest.fixture(autouse=True)
def _quick_rollouts(settings):
    settings.ASSAY_DEPLOY_POLL_SECONDS = 0.2
    settings.ASSAY_DEPLOY_READY_TIMEOUT_SECONDS = 20


@pytest.fixture
def cluster(admin, staging, kube_server, namespace):
    """A Kubernetes target for staging: the test's namespace, URL + CA + token, the GPU profile."""
    return services.target_create(
        actor=who(admin),
        name="gpu-cluster",
        kind="kubernetes",
        environment="staging",
        settings={
            "auth": "token",
            "server": kube_server.server,
            "namespace": namespace,
            "images": IMAGES,
            **GPU_PROFILE,
        },
        credentials={"token": kube_server.token, "ca_cert": kube_server.ca_pem},
    )


def _apps(kube_api) -> client.AppsV1Api:
    return client.AppsV1Api(kube_api)


def versions_running(kube_api, namespace: str) -> dict[str, int]:
    """{version label: desired replicas} of the Deployments Assay keeps in the namespace."""
    found = {}
    for item in _apps(kube_api).list_namespaced_deployment(namespace).items:
        labels = item.metadata.labels or {}
        if LABEL_VERSION in labels and not item.metadata.deletion_timestamp:
            found[labels[LABEL_VERSION]] = item.spec.replicas
    return found


def deploy(model, author, approve, start, number: int, payload: bytes, **kw):
    version = stored_version(model, author, number, payload)
    return version, start(approve(version), target="gpu-cluster", **kw)


def test_a_canary_rolls_forward_on_the_cluster_and_supersedes_the_stable_version(
    cluster, kubelet, kube_api, namespace, model, author, approve, start, audit_mark
):
    # given version 1 deployed directly to the cluster, its pods started by the stand-in kubelet
    v1_version, v1 = deploy(model, author, approve, start, 1, b"onnx bytes of version 1", steps=[{"weight": 100}])
    v1 = drive(v1, until=(DeploymentState.SUCCEEDED,), between=lambda: kubelet.run())
    assert versions_running(kube_api, namespace) == {"1": 1}
    mark = audit_mark()
    # when version 2 rolls out as a canary (25 %, then 75 %), its pods started as they appear
    v2_version, canary = deploy(
        model,
        author,
        approve,
        start,
        2,
        b"onnx bytes of version 2",
        strategy="canary",
        steps=[{"weight": 25, "analysis": 0}, {"weight": 75, "analysis": 0}],
    )
    done = drive(canary, until=(DeploymentState.SUCCEEDED, DeploymentState.ROLLED_BACK), between=lambda: kubelet.run())
    # then both steps passed on ready pods and version 2 took over the cluster; version 1's objects are gone
    assert done.state == DeploymentState.SUCCEEDED, done.message
    assert [(s.index, s.weight, s.outcome) for s in done.timeline.order_by("id")] == [
        (0, 25, "passed"),
        (1, 75, "passed"),
    ]
    assert all(s.figures["ready_replicas"] >= 1 for s in done.timeline.all())
    assert versions_running(kube_api, namespace) == {"2": 1}
    # and the Deployment carries the approved version's id and digest on its pod template
    [item] = _apps(kube_api).list_namespaced_deployment(namespace).items
    assert item.spec.template.metadata.labels[LABEL_VERSION_ID] == str(v2_version.pk)
    assert item.spec.template.metadata.annotations[LABEL_DIGEST] == v2_version.sha256
    v1.refresh_from_db()
    assert v1.state == DeploymentState.SUPERSEDED
    actions = mark.actions(target_type="deployment")
    assert actions.count("deployment.step_completed") == 2 and actions[-1] == "deployment.succeeded"


def test_a_canary_whose_pods_crash_rolls_back_by_itself_on_the_cluster(
    cluster, kubelet, kube_api, namespace, model, author, approve, start, audit_mark
):
    # given version 1 serving on the cluster
    _, v1 = deploy(model, author, approve, start, 1, b"onnx bytes of version 1", steps=[{"weight": 100}])
    drive(v1, until=(DeploymentState.SUCCEEDED,), between=lambda: kubelet.run())
    mark = audit_mark()
    # when version 2's canary starts ready, then its containers keep restarting during the analysis window
    v2_version, canary = deploy(
        model,
        author,
        approve,
        start,
        2,
        b"onnx bytes of version 2",
        strategy="canary",
        thresholds={"max_restarts": 1},
        steps=[{"weight": 20, "analysis": 2}, {"weight": 100, "analysis": 2}],
    )
    selector = f"{LABEL_VERSION_ID}={v2_version.pk}"
    crashes = {"restarts": 0}

    def kubelet_reports() -> None:
        kubelet.run(f"{LABEL_VERSION_ID}!={v2_version.pk}")
        canary.refresh_from_db()
        if canary.phase == "analyse":
            crashes["restarts"] += 1  # the container died again and the kubelet restarted it
        kubelet.run(selector, restarts=crashes["restarts"])

    done = drive(canary, until=(DeploymentState.SUCCEEDED, DeploymentState.ROLLED_BACK), between=kubelet_reports)
    # then the engine judged the restarts and rolled back on its own, with the figures, audited as the system's act
    assert done.state == DeploymentState.ROLLED_BACK, done.message
    [step] = done.timeline.all()
    assert step.outcome == "failed" and step.figures["restarts"] > 1
    started = mark.new(action="deployment.rollback_started")[0]
    assert started.actor_type == "system" and "restarts" in started.reason
    # and only version 1 runs on the cluster again
    assert versions_running(kube_api, namespace) == {"1": 1}


def test_a_batch_deployment_becomes_a_cron_job_running_only_the_approved_digest(
    cluster, kube_api, namespace, model, author, approve, start, audit_mark
):
    # given an approved version, deployed as scheduled scoring
    version, batch = deploy(
        model,
        author,
        approve,
        start,
        1,
        b"onnx bytes of version 1",
        kind="batch",
        schedule="0 2 * * *",
        steps=[{"weight": 100}],
    )
    # when the engine runs it
    done = drive(batch, until=(DeploymentState.SUCCEEDED, DeploymentState.FAILED, DeploymentState.ROLLED_BACK))
    # then the cluster holds a CronJob on that schedule, with the GPU profile and the approved version's digest
    assert done.state == DeploymentState.SUCCEEDED, done.message
    # (the 1.20 API server serves CronJobs as batch/v1beta1 only, which the client reads as plain objects)
    [job] = client.CustomObjectsApi(kube_api).list_namespaced_custom_object("batch", "v1beta1", namespace, "cronjobs")[
        "items"
    ]
    assert job["spec"]["schedule"] == "0 2 * * *"
    template = job["spec"]["jobTemplate"]["spec"]["template"]
    assert template["metadata"]["labels"][LABEL_VERSION_ID] == str(version.pk)
    assert template["metadata"]["annotations"][LABEL_DIGEST] == version.sha256
    [box] = template["spec"]["containers"]
    assert box["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert not _apps(kube_api).list_namespaced_deployment(namespace).items  # no online serving for a batch

"""Fixtures for the Kubernetes driver's tests, against a REAL API server: kube-apiserver and
kube-controller-manager 1.20.2 on etcd (``scripts/services/kube.sh``, started by ``.ci/run``).

There is no scheduler and no kubelet on that server, so ``Kubelet`` plays both: it binds each pending pod to a
Node with ``nvidia.com/gpu`` capacity and patches the pod's status (running and ready, or crash-looping), after
which the controller-manager's own ReplicaSet and Deployment controllers count the pods as they would on a
cluster. Each test works in a namespace of its own, deleted afterwards. The KServe and Argo Rollouts CRDs are
the minimal ones in ``tests/fixtures/crds/``.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from apps.deployments.plans import Member, Plan
from worker.drivers.kubernetes import KubernetesDriver

REQUIRE_SERVICES = os.environ.get("ASSAY_REQUIRE_SERVICES") == "1"
CRDS = Path(__file__).resolve().parents[2] / "fixtures" / "crds"
NODE = "assay-test-gpu-node"
KUBE_ENV = ("ASSAY_TEST_KUBE_SERVER", "ASSAY_TEST_KUBE_CA_FILE", "ASSAY_TEST_KUBE_TOKEN")
IMAGES = {"onnx": "registry.example/assay/onnx-server:1.4", "skops": "registry.example/assay/skops-server:1.4"}
# Patches the tests send as another client would (kubectl's default): containers merge by name.
MERGE_PATCH = "application/strategic-merge-patch+json"
DIGEST_A = "a" * 63 + "1"
DIGEST_B = "b" * 63 + "2"


@dataclass(frozen=True)
class KubeServer:
    server: str
    ca_pem: str
    token: str
    kubeconfig: str  # the kubeconfig's text (its CA is a file path on this machine)


@pytest.fixture(scope="session")
def kube_server() -> KubeServer:
    missing = [name for name in KUBE_ENV if not os.environ.get(name)]
    if missing:
        message = (
            f"needs a real Kubernetes API server: set {', '.join(KUBE_ENV)} and ASSAY_TEST_KUBE_CONFIG "
            '(eval "$(bash scripts/services/kube.sh)" builds it once and starts it; .ci/run does it for you)'
        )
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    config_path = os.environ.get("ASSAY_TEST_KUBE_CONFIG", "")
    return KubeServer(
        server=os.environ["ASSAY_TEST_KUBE_SERVER"],
        ca_pem=Path(os.environ["ASSAY_TEST_KUBE_CA_FILE"]).read_text(),
        token=os.environ["ASSAY_TEST_KUBE_TOKEN"],
        kubeconfig=Path(config_path).read_text() if config_path else "",
    )


@pytest.fixture(scope="session")
def kube_api(kube_server) -> client.ApiClient:
    """An admin client of the test's own (the driver builds its own from the target's settings)."""
    configuration = client.Configuration()
    configuration.host = kube_server.server
    configuration.ssl_ca_cert = os.environ["ASSAY_TEST_KUBE_CA_FILE"]
    configuration.api_key = {"authorization": f"Bearer {kube_server.token}"}
    return client.ApiClient(configuration)


@pytest.fixture(scope="session")
def gpu_node(kube_api) -> str:
    """A Node with 4 NVIDIA GPUs, labelled and tainted as a GPU node pool is (the kubelet would register it)."""
    body = {
        "metadata": {
            "name": NODE,
            "labels": {"kubernetes.azure.com/accelerator": "nvidia", "kubernetes.io/hostname": NODE},
        },
        "spec": {"taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]},
        "status": {
            "capacity": {"cpu": "32", "memory": "128Gi", "pods": "110", "nvidia.com/gpu": "4"},
            "allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110", "nvidia.com/gpu": "4"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "test"}],
        },
    }
    try:
        client.CoreV1Api(kube_api).create_node(body, _preload_content=False)
    except ApiException as exc:
        if exc.status != 409:
            raise
    return NODE


@pytest.fixture(scope="session")
def crds(kube_api) -> None:
    """Install the minimal KServe and Argo Rollouts CRDs and wait until the server serves them."""
    extensions = client.ApiextensionsV1Api(kube_api)
    for path in sorted(CRDS.glob("*.yaml")):
        body = yaml.safe_load(path.read_text())
        try:
            extensions.create_custom_resource_definition(body, _preload_content=False)
        except ApiException as exc:
            if exc.status != 409:
                raise
        wait_for(lambda name=body["metadata"]["name"]: _established(extensions, name), what=f"CRD {path.name}")


def _established(extensions, name: str) -> bool:
    crd = extensions.read_custom_resource_definition(name)
    return any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])


@pytest.fixture
def namespace(kube_api) -> str:
    """A namespace of this test's own, deleted afterwards (the namespace controller removes what is in it)."""
    name = f"assay-test-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(kube_api)
    core.create_namespace({"metadata": {"name": name}}, _preload_content=False)
    # Pods need the namespace's default service account, which the controller-manager creates.
    wait_for(lambda: _has_default_account(core, name), what="the default service account")
    yield name
    core.delete_namespace(name, _preload_content=False)
    # Pods bound to the stand-in node wait for a kubelet to confirm their deletion: confirm it for them.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod(name).items
        if not pods:
            break
        for pod in pods:
            try:
                core.delete_namespaced_pod(pod.metadata.name, name, grace_period_seconds=0, _preload_content=False)
            except ApiException as exc:
                if exc.status != 404:
                    raise
        time.sleep(0.5)


def _has_default_account(core, namespace: str) -> bool:
    try:
        account = core.read_namespaced_service_account("default", namespace)
    except ApiException:
        return False
    return bool(account.secrets)


def wait_for(check: Callable[[], object], what: str, timeout: float = 30.0):
    """Poll ``check`` until it returns something true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def make_driver(kube_server, namespace) -> Callable[..., KubernetesDriver]:
    """A driver for the test's namespace, connected with a URL + CA + token as a target's settings are."""

    def make(**settings) -> KubernetesDriver:
        base = {"auth": "token", "server": kube_server.server, "namespace": namespace, "images": IMAGES}
        return KubernetesDriver({**base, **settings}, {"token": kube_server.token, "ca_cert": kube_server.ca_pem})

    return make


GPU_PROFILE = {
    "gpu": {"resource": "nvidia.com/gpu", "count": 1},
    "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
    "node_selector": {"kubernetes.azure.com/accelerator": "nvidia"},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "replicas": {"min": 1, "max": 20, "cpu_utilization": 60},
    "disruption_budget": {"max_unavailable": 1},
}


def member(
    version: str, weight: int, *, digest: str = DIGEST_A, shadow: bool = False, replicas: int = 1, **kw
) -> Member:
    return Member(
        deployment_id=kw.get("deployment_id", f"dep_{version}"),
        release_id=kw.get("release_id", f"rel_{version}"),
        version_id=kw.get("version_id", f"ver_{version}"),
        version=version,
        digest=digest,
        artifact_uri=kw.get("artifact_uri", f"s3://models/credit/{version}/model.onnx"),
        format=kw.get("format", "onnx"),
        weight=weight,
        shadow=shadow,
        replicas=replicas,
    )


def plan(*members: Member, fence: int = 1, service: str = "credit-scoring", **kw) -> Plan:
    return Plan(service=service, model=kw.pop("model", "credit-scoring"), members=tuple(members), fence=fence, **kw)


class Kubelet:
    """Plays the scheduler and the kubelet for one namespace: binds pending pods to the GPU node and reports
    their containers running (ready or not, with a restart count), as a kubelet's status updates would."""

    def __init__(self, api: client.ApiClient, namespace: str, node: str) -> None:
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.node = node
        self._addresses: dict[str, str] = {}

    def pods(self, selector: str = "") -> list:
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=selector).items
        return [p for p in pods if not p.metadata.deletion_timestamp]

    def run(self, selector: str = "", *, ready: bool = True, restarts: int = 0, reason: str = "") -> int:
        """Bind and start every pod matching ``selector``; returns how many pods it reported on."""
        pods = self.pods(selector)
        for pod in pods:
            if not pod.spec.node_name:
                binding = {
                    "apiVersion": "v1",
                    "kind": "Binding",
                    "metadata": {"name": pod.metadata.name},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": self.node},
                }
                self.core.create_namespaced_binding(self.namespace, binding, _preload_content=False)
            self.core.patch_namespaced_pod_status(
                pod.metadata.name,
                self.namespace,
                self._status(pod, ready, restarts, reason, self.address(pod.metadata.name)),
                _content_type=MERGE_PATCH,
            )
        return len(pods)

    def address(self, pod_name: str) -> str:
        """The pod's IP, one per pod (as the node's network plugin would hand out)."""
        if pod_name not in self._addresses:
            self._addresses[pod_name] = f"10.244.{len(self._addresses) // 250}.{len(self._addresses) % 250 + 2}"
        return self._addresses[pod_name]

    @staticmethod
    def _status(pod, ready: bool, restarts: int, reason: str, ip: str) -> dict:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        flag = "True" if ready else "False"
        state = {"running": {"startedAt": now}} if ready else {"waiting": {"reason": reason or "CrashLoopBackOff"}}
        return {
            "status": {
                "phase": "Running",
                "startTime": now,
                "hostIP": "10.0.1.10",
                "podIP": ip,
                "podIPs": [{"ip": ip}],
                "conditions": [
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                    {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                    {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
                    {"type": "Ready", "status": flag, "lastTransitionTime": now},
                ],
                "containerStatuses": [
                    {
                        "name": box.name,
                        "image": box.image,
                        "imageID": "",
                        "ready": ready,
                        "started": ready,
                        "restartCount": restarts,
                        "state": state,
                    }
                    for box in pod.spec.containers
                ],
            }
        }


@pytest.fixture
def kubelet(kube_api, namespace, gpu_node) -> Kubelet:
    return Kubelet(kube_api, namespace, gpu_node)

"""The ``kserve`` and ``argo`` runtimes against a REAL kube-apiserver 1.20.2 with the minimal KServe and Argo
Rollouts CRDs of ``tests/fixtures/crds/`` installed (the server validates each custom resource against them).
No KServe or Argo controller runs: where a test needs their status, it writes it through the status
subresource as the controller would."""

from __future__ import annotations

import pytest
from kubernetes import client

from apps.deployments.plans import DriverError, StaleFence
from tests.worker.kubernetes.conftest import DIGEST_A, DIGEST_B, member, plan

pytestmark = [pytest.mark.service, pytest.mark.slow]

SERVICE = "credit-scoring"


def _custom(kube_api, namespace, group, version, plural) -> dict:
    return client.CustomObjectsApi(kube_api).get_namespaced_custom_object(group, version, namespace, plural, SERVICE)


def _isvc(kube_api, namespace) -> dict:
    return _custom(kube_api, namespace, "serving.kserve.io", "v1beta1", "inferenceservices")


def _rollout(kube_api, namespace) -> dict:
    return _custom(kube_api, namespace, "argoproj.io", "v1alpha1", "rollouts")


def test_kserve_serves_one_version_then_a_canary_then_the_promoted_one(crds, make_driver, kube_api, namespace):
    """Ran against the real 1.20 API server with the minimal KServe CRD; KServe's controller is played by
    writing ``status.components.predictor.traffic`` through the status subresource."""
    # given
    driver = make_driver(runtime="kserve", gpu={"count": 1}, replicas={"min": 1, "max": 4})
    stable, canary = member("3", 100, replicas=2), member("4", 10, digest=DIGEST_B, replicas=2)
    # when the stable version alone is applied
    driver.apply(plan(stable, fence=1))
    # then one InferenceService serves it from its storage URI, with the digest for the server to check
    isvc = _isvc(kube_api, namespace)
    model = isvc["spec"]["predictor"]["model"]
    assert model["storageUri"] == "s3://models/credit/3/model.onnx"
    assert model["modelFormat"] == {"name": "onnx"}
    assert model["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert {e["name"]: e["value"] for e in model["env"]}["ASSAY_MODEL_SHA256"] == DIGEST_A
    assert "canaryTrafficPercent" not in isvc["spec"]["predictor"]
    assert isvc["metadata"]["annotations"]["assay.dev/fence"] == "1"
    # when a canary of version 4 takes 10 %
    driver.apply(plan(member("3", 90, replicas=2), canary, fence=2))
    isvc = _isvc(kube_api, namespace)
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == "s3://models/credit/4/model.onnx"
    assert isvc["metadata"]["annotations"]["assay.dev/stable-version-id"] == "ver_3"
    # and KServe reports the split
    isvc["status"] = {
        "components": {
            "predictor": {
                "traffic": [
                    {"revisionName": "credit-scoring-predictor-00002", "percent": 10, "latestRevision": True},
                    {"revisionName": "credit-scoring-predictor-00001", "percent": 90, "tag": "prev"},
                ]
            }
        },
        "conditions": [{"type": "Ready", "status": "True"}],
    }
    client.CustomObjectsApi(kube_api).replace_namespaced_custom_object_status(
        "serving.kserve.io", "v1beta1", namespace, "inferenceservices", SERVICE, isvc
    )
    observed = driver.observe(SERVICE)
    assert {(m.version_id, m.digest, m.weight, m.state) for m in observed.members} == {
        ("ver_4", DIGEST_B, 10, "Ready"),
        ("ver_3", DIGEST_A, 90, "Ready"),
    }
    # when the canary is raised, the stable side stays version 3
    driver.apply(plan(member("3", 50, replicas=2), member("4", 50, digest=DIGEST_B), fence=3))
    assert _isvc(kube_api, namespace)["spec"]["predictor"]["canaryTrafficPercent"] == 50
    # when it is promoted
    driver.apply(plan(member("4", 100, digest=DIGEST_B), fence=4))
    predictor = _isvc(kube_api, namespace)["spec"]["predictor"]
    assert "canaryTrafficPercent" not in predictor
    assert predictor["model"]["storageUri"] == "s3://models/credit/4/model.onnx"
    # a stale worker cannot undo it
    with pytest.raises(StaleFence):
        driver.apply(plan(member("3", 100), fence=3))
    driver.remove(SERVICE, fence=4)
    assert driver.observe(SERVICE).exists is False


def test_kserve_refuses_what_it_cannot_run(crds, make_driver):
    """Ran against the real 1.20 API server with the minimal KServe CRD: nothing is written for these plans."""
    driver = make_driver(runtime="kserve")
    with pytest.raises(DriverError, match="starts from the version the service runs now"):
        driver.apply(plan(member("3", 90), member("4", 10, digest=DIGEST_B), fence=1))
    with pytest.raises(DriverError, match="shadow"):
        driver.apply(plan(member("3", 100), member("4", 0, shadow=True, digest=DIGEST_B), fence=1))
    with pytest.raises(DriverError, match="cannot fetch"):
        driver.apply(plan(member("3", 100, artifact_uri="file:///var/lib/assay/model.onnx"), fence=1))
    with pytest.raises(DriverError, match="no KServe model format for 'skops'"):
        driver.apply(plan(member("3", 100, format="skops"), fence=1))
    assert driver.observe(SERVICE).exists is False


def test_argo_rollout_weights_follow_the_plan(crds, make_driver, kube_api, namespace):
    """Ran against the real 1.20 API server with the minimal Argo Rollouts CRD (no Argo controller)."""
    # given
    driver = make_driver(runtime="argo", argo={"canaryService": "credit-canary", "stableService": "credit-stable"})
    driver.apply(plan(member("3", 100, replicas=4), fence=1))
    rollout = _rollout(kube_api, namespace)
    assert rollout["spec"]["strategy"]["canary"]["steps"] == []
    assert rollout["spec"]["template"]["metadata"]["annotations"]["assay.dev/digest"] == DIGEST_A
    # when a canary takes 25 %
    driver.apply(plan(member("3", 75, replicas=3), member("4", 25, digest=DIGEST_B, replicas=1), fence=2))
    # then the template is the canary's and its setWeight is the plan's
    rollout = _rollout(kube_api, namespace)
    canary = rollout["spec"]["strategy"]["canary"]
    assert canary["steps"] == [{"setWeight": 25}, {"pause": {}}]
    assert (canary["canaryService"], canary["stableService"]) == ("credit-canary", "credit-stable")
    assert rollout["spec"]["template"]["metadata"]["annotations"]["assay.dev/digest"] == DIGEST_B
    assert rollout["spec"]["replicas"] == 4
    assert rollout["metadata"]["annotations"]["assay.dev/stable-version-id"] == "ver_3"
    # when the weight moves, the steps change with it (Argo restarts its steps when they change)
    driver.apply(plan(member("3", 40, replicas=3), member("4", 60, digest=DIGEST_B, replicas=2), fence=3))
    assert _rollout(kube_api, namespace)["spec"]["strategy"]["canary"]["steps"] == [{"setWeight": 60}, {"pause": {}}]
    observed = driver.observe(SERVICE)
    assert {(m.version_id, m.digest, m.desired_replicas) for m in observed.members} == {
        ("ver_4", DIGEST_B, 3),
        ("ver_3", DIGEST_A, 2),
    }
    # when promoted, no steps are left: Argo promotes fully
    driver.apply(plan(member("4", 100, digest=DIGEST_B, replicas=5), fence=4))
    rollout = _rollout(kube_api, namespace)
    assert rollout["spec"]["strategy"]["canary"]["steps"] == []
    assert rollout["metadata"]["annotations"]["assay.dev/stable-version-id"] == "ver_4"


def test_changing_the_runtime_removes_the_old_runtimes_objects(crds, make_driver, kube_api, namespace):
    """Ran against the real 1.20 API server: a service moved from plain Deployments to Argo loses its
    Deployments and Service in the same apply."""
    make_driver().apply(plan(member("3", 100), fence=1))
    make_driver(runtime="argo").apply(plan(member("3", 100), fence=2))
    assert client.AppsV1Api(kube_api).list_namespaced_deployment(namespace).items == []
    assert client.CoreV1Api(kube_api).list_namespaced_service(namespace).items == []
    assert _rollout(kube_api, namespace)["metadata"]["annotations"]["assay.dev/fence"] == "2"

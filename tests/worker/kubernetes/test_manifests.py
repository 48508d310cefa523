"""Every built-in manifest the driver renders, validated offline with ``kubernetes-validate`` against the
published Kubernetes 1.30 and 1.34 OpenAPI schemas in strict mode (no unknown field anywhere). The test server
is 1.20, so this is what shows the manifests fit current clusters (autoscaling/v2, policy/v1, batch/v1).
kubernetes-validate has no schemas for custom resources: the KServe and Argo resources are checked by the real
API server against the CRDs in ``tests/fixtures/crds/`` (``test_runtimes.py``)."""

from __future__ import annotations

import kubernetes_validate
import pytest

from apps.deployments.plans import DriverError
from tests.worker.kubernetes.conftest import DIGEST_B, GPU_PROFILE, IMAGES, member, plan
from worker.drivers.kubernetes import manifests
from worker.drivers.kubernetes.naming import label_value, member_name
from worker.drivers.kubernetes.objects import AUTOSCALERS, CRON_JOBS, DISRUPTION_BUDGETS
from worker.drivers.kubernetes.profile import profile_from_settings

HPA_V2, PDB_V1, CRON_V1 = AUTOSCALERS[0], DISRUPTION_BUDGETS[0], CRON_JOBS[0]

PROFILES = {
    "plain": {"images": IMAGES},
    "aks-gpu": {"images": IMAGES, **GPU_PROFILE},
    "eks-gpu": {
        "images": IMAGES,
        "gpu": {"count": 2},
        "node_selector": {"eks.amazonaws.com/nodegroup": "gpu-a10g", "k8s.amazonaws.com/accelerator": "nvidia-a10g"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
        "replicas": {"min": 2, "max": 8},
        "disruption_budget": {"min_available": 1},
        "service_account": "model-server",
        "image_pull_secrets": ["registry"],
        "model_credentials_secret": "model-store-s3",
        "service_type": "LoadBalancer",
        "batch": {"command": ["python", "-m", "score"], "args": ["--out", "s3://scores/"]},
    },
}


def rendered(settings: dict) -> list[dict]:
    profile = profile_from_settings(settings, "models")
    the_plan = plan(member("3", 80, replicas=4), member("4", 20, digest=DIGEST_B), member("5", 0, shadow=True))
    docs = [manifests.service(the_plan, profile, 9), manifests.anchor(the_plan, profile.runtime, 9)]
    counts = manifests.live_replicas(the_plan, profile)
    for m in the_plan.members:
        replicas = m.replicas if m.shadow else counts[m.version_id]
        docs.append(manifests.deployment(the_plan, m, replicas, profile, 9))
        bounds = manifests.replica_bounds(the_plan, m, max(replicas, 1), profile)
        docs.append(manifests.autoscaler(the_plan, m, bounds, profile, HPA_V2, 9))
        docs.append(manifests.disruption_budget(the_plan, m, profile, PDB_V1, 9))
    batch = plan(member("3", 100), kind="batch", schedule="0 3 * * 1-5")
    docs.append(manifests.cron_job(batch, batch.members[0], profile, CRON_V1, 9))
    return docs


@pytest.mark.parametrize("version", ["1.30", "1.34"])
@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_rendered_manifest_validates_strictly_for_current_kubernetes(profile, version):
    """Ran against kubernetes-validate's bundled Kubernetes schemas (no server)."""
    docs = rendered(PROFILES[profile])
    assert {d["kind"] for d in docs} == {
        "Service", "ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "CronJob",
    }  # fmt: skip
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_replicas_follow_the_weights():
    """Pure arithmetic: the plan's replicas spread in proportion to the weights, at least one pod per weight."""
    profile = profile_from_settings({"images": IMAGES}, "models")
    counts = manifests.live_replicas(plan(member("3", 90, replicas=9), member("4", 10, replicas=1)), profile)
    assert counts == {"ver_3": 9, "ver_4": 1}
    counts = manifests.live_replicas(plan(member("3", 99, replicas=1), member("4", 1, replicas=1)), profile)
    assert counts == {"ver_3": 1, "ver_4": 1}
    counts = manifests.live_replicas(plan(member("3", 100, replicas=3), member("4", 0, replicas=3)), profile)
    assert counts == {"ver_3": 6, "ver_4": 0}
    counts = manifests.live_replicas(plan(member("3", 33, replicas=1), member("4", 67, replicas=2)), profile)
    assert counts == {"ver_3": 1, "ver_4": 2}


def test_labels_stay_within_kubernetes_limits():
    """Label values longer than 63 characters or with other characters are made valid and kept distinct."""
    long = "Credit Scoring / Retail (EU) " * 4
    value = label_value(long)
    assert len(value) <= 63 and value[0].isalnum() and value[-1].isalnum()
    assert label_value(long) != label_value(long + "x")
    assert label_value("credit-scoring") == "credit-scoring"
    assert member_name("credit-scoring", member("3", 100)) == "credit-scoring-v3"
    assert len(member_name("a" * 52, member("2026.12.07-rc1+build.77", 100))) <= 63


def test_wrong_settings_are_refused_by_name():
    """Settings are checked when the driver is built; the error names the setting."""
    with pytest.raises(DriverError, match="runtime must be one of"):
        profile_from_settings({"runtime": "knative"}, "models")
    with pytest.raises(DriverError, match="gpu.count"):
        profile_from_settings({"gpu": {"count": "one"}}, "models")
    with pytest.raises(DriverError, match="images.xgboost"):
        profile_from_settings({"images": IMAGES}, "models").image_for("xgboost")

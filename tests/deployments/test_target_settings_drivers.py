"""A target's settings are checked for shape by the web process (``apps.deployments.target_settings``) and read
by the driver in a worker: every key a driver reads must pass the shape check, or an admin could never set it.

These tests take the settings the drivers' own tests run with (against the real Kubernetes API server and
moto_server) and the fullest examples of their manuals, and check the web side accepts each of them.
"""

from __future__ import annotations

import pytest

from apps.core.errors import ValidationFailed
from apps.deployments.target_settings import checked_credentials, checked_settings
from tests.worker import sagemaker_fixtures as sm
from tests.worker.kubernetes.conftest import GPU_PROFILE, IMAGES

KUBERNETES = [
    {"auth": "token", "server": "https://127.0.0.1:6443", "namespace": "models", "images": IMAGES},
    {"auth": "token", "server": "https://127.0.0.1:6443", "namespace": "models", "images": IMAGES, **GPU_PROFILE},
    {"runtime": "kserve", "gpu": {"count": 1}, "replicas": {"min": 1, "max": 4}},
    {"runtime": "argo", "argo": {"canaryService": "credit-canary", "stableService": "credit-stable"}},
    {"batch": {"args": ["score"], "command": ["python"], "backoff_limit": 2}, "auth": "in_cluster"},
    {
        "auth": "kubeconfig",
        "context": "gpu-eu",
        "port": 8080,
        "service_port": 80,
        "service_type": "ClusterIP",
        "model_credentials_secret": "s3-reader",
        "service_account": "assay-serving",
        "image_pull_secrets": ["registry"],
        "kserve": {"model_formats": {"skops": "sklearn"}, "annotations": {}},
    },
]

SAGEMAKER = [
    sm.target(None),
    sm.target(
        None,
        instance_count=2,
        shadow_instance_type="ml.g4dn.xlarge",
        alarms=["credit-5xx"],
        traffic={"mode": "canary", "size_percent": 10, "wait_seconds": 600},
        autoscaling={"min_capacity": 1, "max_capacity": 4, "target_invocations_per_instance": 200},
        batch={"vcpus": 4, "memory_mb": 8192, "gpus": 1, "job_role_arn": "arn:aws:iam::1:role/batch"},
    ),
    sm.target(None, serverless={"memory_mb": 2048, "max_concurrency": 5}),
]


@pytest.mark.parametrize("values", KUBERNETES)
def test_every_kubernetes_setting_the_driver_reads_passes_the_shape_check(values):
    assert checked_settings("kubernetes", values) == values


@pytest.mark.parametrize("values", SAGEMAKER)
def test_every_sagemaker_setting_the_driver_reads_passes_the_shape_check(values):
    assert checked_settings("sagemaker", values) == values


def test_the_credentials_the_drivers_read_pass_the_shape_check():
    assert checked_credentials("sagemaker", dict(sm.SECRETS)) == sm.SECRETS
    assert checked_credentials("sagemaker", {**sm.SECRETS, "session_token": "t"})
    kube = {"token": "t", "ca_cert": "-----BEGIN CERTIFICATE-----"}
    assert checked_credentials("kubernetes", kube) == kube
    assert checked_credentials("kubernetes", {"kubeconfig": "apiVersion: v1"})


def test_a_misspelt_key_is_refused_with_the_valid_ones():
    with pytest.raises(ValidationFailed) as refused:
        checked_settings("kubernetes", {"namspace": "models"})
    assert "settings.namspace" in refused.value.errors
    assert "namespace" in refused.value.extra["valid_values"]["settings"]

# ruff: noqa: F811 - pytest fixtures imported from other modules are parameters here
"""``driver_for(target)`` builds each kind's real driver from a target row: its settings as stored, its
credentials decrypted in the worker. Run against the real Kubernetes API server (kube.sh) and moto_server."""

from __future__ import annotations

import pytest

from apps.deployments import services
from tests.deployments.conftest import who
from tests.worker.kubernetes.conftest import IMAGES, kube_api, kube_server, namespace  # noqa: F401
from tests.worker.sagemaker_fixtures import SECRETS, moto, moto_process, target  # noqa: F401
from worker.drivers.registry import driver_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_kubernetes_target_gets_the_kubernetes_driver_connected_with_its_sealed_token(
    admin, staging, kube_server, namespace
):
    """The real 1.20 API server: the driver lists the (empty) namespace through the stored token and CA."""
    # given a Kubernetes target whose token and CA are stored encrypted
    row = services.target_create(
        actor=who(admin),
        name="cluster",
        kind="kubernetes",
        environment="staging",
        settings={"auth": "token", "server": kube_server.server, "namespace": namespace, "images": IMAGES},
        credentials={"token": kube_server.token, "ca_cert": kube_server.ca_pem},
    )
    # when a worker builds its driver
    driver = driver_for(row)
    # then it is the Kubernetes driver, and it reaches the cluster with those credentials
    assert driver.kind == "kubernetes"
    assert driver.services() == []


def test_a_sagemaker_target_gets_the_sagemaker_driver_with_its_sealed_keys(admin, staging, moto):
    """moto_server: the driver lists the account's (empty) endpoints through the stored keys."""
    row = services.target_create(
        actor=who(admin),
        name="aws",
        kind="sagemaker",
        environment="staging",
        settings=target(moto),
        credentials=dict(SECRETS),
    )
    driver = driver_for(row)
    assert driver.kind == "sagemaker"
    assert driver.services() == []

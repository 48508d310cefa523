"""Connecting the driver to a REAL kube-apiserver 1.20.2 (``scripts/services/kube.sh``) with each kind of
credential, and making sure no credential reaches an error message, a traceback or a log line."""

from __future__ import annotations

import logging
import traceback

import pytest

from apps.deployments.plans import DriverError
from tests.worker.kubernetes.conftest import IMAGES, member, plan
from worker.drivers.kubernetes import KubernetesDriver

pytestmark = [pytest.mark.service, pytest.mark.slow]


def _everything_said(exc: BaseException, caplog) -> str:
    return "\n".join([str(exc), repr(exc), "".join(traceback.format_exception(exc)), caplog.text])


def test_a_kubeconfig_secret_connects_and_its_context_names_the_namespace(kube_server, namespace):
    """Ran against the real 1.20 API server, reached through the kubeconfig ``kube.sh`` wrote (as a secret)."""
    # given a kubeconfig whose context points at the test's namespace
    kubeconfig = kube_server.kubeconfig.replace("namespace: default", f"namespace: {namespace}")
    driver = KubernetesDriver({"auth": "kubeconfig", "images": IMAGES}, {"kubeconfig": kubeconfig})
    # when
    driver.apply(plan(member("3", 100), fence=1))
    # then
    assert driver.store.namespace == namespace
    assert [m.version_id for m in driver.observe("credit-scoring").members] == ["ver_3"]


def test_a_wrong_token_is_a_401_that_never_shows_the_token(kube_server, namespace, caplog):
    """Ran against the real 1.20 API server, which answers 401 to a token it does not know."""
    caplog.set_level(logging.DEBUG)
    wrong = "assay-wrong-token-7f3c2a91d5e8b4c6"
    driver = KubernetesDriver(
        {"auth": "token", "server": kube_server.server, "namespace": namespace, "images": IMAGES},
        {"token": wrong, "ca_cert": kube_server.ca_pem},
    )
    with pytest.raises(DriverError, match="HTTP 401") as caught:
        driver.apply(plan(member("3", 100), fence=1))
    assert wrong not in _everything_said(caught.value, caplog)


def test_a_server_message_echoing_a_secret_is_scrubbed(kube_server, namespace, caplog):
    """Ran against the real 1.20 API server: its 422 message quotes the invalid node selector value, which here
    holds the token; the driver's error carries the server's reason with the token replaced."""
    caplog.set_level(logging.DEBUG)
    selector = {"gpu-pool": f"{kube_server.token}/x"}  # not a label value: refused, and quoted back by the server
    driver = KubernetesDriver(
        {
            "auth": "token",
            "server": kube_server.server,
            "namespace": namespace,
            "images": IMAGES,
            "node_selector": selector,
        },
        {"token": kube_server.token, "ca_cert": kube_server.ca_pem},
    )
    with pytest.raises(DriverError, match="HTTP 422") as caught:
        driver.apply(plan(member("3", 100), fence=1))
    assert "[redacted]" in str(caught.value)
    assert kube_server.token not in _everything_said(caught.value, caplog)


def test_an_unusable_kubeconfig_or_an_unreachable_server_says_so_without_the_secret(caplog):
    """No server needed for the kubeconfig (the loader refuses it); 127.0.0.1:9 refuses connections."""
    secret = "token-inside-a-broken-kubeconfig-42"
    broken = (
        f"apiVersion: v1\nkind: Config\nusers:\n- name: x\n  user:\n    token: {secret}\ncurrent-context: nowhere\n"
    )
    with pytest.raises(DriverError, match="kubeconfig could not be used") as caught:
        KubernetesDriver({"auth": "kubeconfig"}, {"kubeconfig": broken})
    assert secret not in _everything_said(caught.value, caplog)
    with pytest.raises(DriverError, match="not a kubeconfig"):
        KubernetesDriver({"auth": "kubeconfig"}, {"kubeconfig": "- just\n- a list"})
    driver = KubernetesDriver({"auth": "token", "server": "https://127.0.0.1:9", "images": IMAGES}, {"token": secret})
    with pytest.raises(DriverError, match="could not be reached") as caught:
        driver.observe("credit-scoring")
    assert secret not in _everything_said(caught.value, caplog)
    with pytest.raises(DriverError, match="server must be"):
        KubernetesDriver({"auth": "token", "server": "http://plain"}, {"token": secret})

"""Connecting to a cluster: an API server URL with a CA certificate and a bearer token, a kubeconfig, or the
service account of the pod the worker runs in.

Target settings (plain JSON) and secrets (decrypted credentials) for each way:

- ``auth: "token"``: settings ``server`` (``https://…``); secrets ``token`` and ``ca_cert`` (PEM; may be in
  settings instead, it is not secret; without one the system's certificate authorities are trusted);
- ``auth: "kubeconfig"``: secret ``kubeconfig`` (the YAML text); setting ``context`` picks one of its contexts;
- ``auth: "in_cluster"``: the worker's own service account (``/var/run/secrets/kubernetes.io/serviceaccount``).

Without ``auth`` the secrets decide: a kubeconfig, else a token, else in-cluster. ``namespace`` (setting) is the
namespace everything goes into; default: the kubeconfig context's, the pod's own, else ``default``.

Nothing here puts a credential in a message: errors name the setting that is wrong, and ``Redactor`` scrubs
every secret value from any text that came back from a server before it reaches a ``DriverError``.
"""

from __future__ import annotations

import os
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path

import yaml
from kubernetes import client, config

from apps.deployments.plans import DriverError

IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class Redactor:
    """Replaces every secret value with ``[redacted]``, and within a multi-line one (a kubeconfig, a PEM) each
    long value (``key: value``) or long bare line, so a fragment quoted back by a server is caught too."""

    def __init__(self, secrets: dict) -> None:
        values: set[str] = set()
        for value in secrets.values():
            if isinstance(value, str) and value:
                values.add(value)
                for line in value.splitlines():
                    fragment = line.split(": ", 1)[1] if ": " in line else line
                    fragment = fragment.strip().strip("\"'")
                    if len(fragment) >= 16:
                        values.add(fragment)
        self._values = sorted(values, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, "[redacted]")
        return text


@dataclass
class Connection:
    """An API client for one target, the namespace it works in, and the redactor for its secrets."""

    api: client.ApiClient
    namespace: str
    redact: Redactor
    server: str


def _pem_file(pem: str, folder: str) -> str:
    path = os.path.join(folder, "ca.crt")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write(pem)
    return path


def connect(settings: dict, secrets: dict) -> Connection:
    """Build the API client the target's settings describe; raises ``DriverError`` naming what is missing."""
    redact = Redactor(secrets)
    auth = settings.get("auth") or (
        "kubeconfig" if secrets.get("kubeconfig") else "token" if secrets.get("token") else "in_cluster"
    )
    configuration = client.Configuration()
    # Certificates and the kubeconfig's embedded files go in a private folder removed with the client.
    folder = tempfile.mkdtemp(prefix="assay-kube-")
    namespace = settings.get("namespace") or ""
    if auth == "token":
        server, token = settings.get("server"), secrets.get("token")
        if not server or not str(server).startswith("https://"):
            raise DriverError("the target setting server must be the API server's https:// URL")
        if not token:
            raise DriverError("the target has no token secret")
        configuration.host = server.rstrip("/")
        configuration.api_key = {"authorization": f"Bearer {token}"}
        pem = secrets.get("ca_cert") or settings.get("ca_cert")
        if pem:
            configuration.ssl_ca_cert = _pem_file(pem, folder)
    elif auth == "kubeconfig":
        try:
            document = yaml.safe_load(secrets.get("kubeconfig") or "")
        except yaml.YAMLError:
            document = None
        if not isinstance(document, dict):
            raise DriverError("the target's kubeconfig secret is not a kubeconfig document")
        context = settings.get("context") or document.get("current-context")
        try:
            config.load_kube_config_from_dict(
                document, context=context, client_configuration=configuration, persist_config=False,
                temp_file_path=folder,
            )  # fmt: skip
        except Exception as exc:  # the loader's messages may quote the document: name only the kind of failure
            raise DriverError(f"the target's kubeconfig could not be used ({type(exc).__name__})") from None
        if not namespace:
            for entry in document.get("contexts") or []:
                if isinstance(entry, dict) and entry.get("name") == context:
                    namespace = (entry.get("context") or {}).get("namespace") or ""
    elif auth == "in_cluster":
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            raise DriverError("the worker does not run in a cluster (no service account token mounted)") from None
        if not namespace and IN_CLUSTER_NAMESPACE.exists():
            namespace = IN_CLUSTER_NAMESPACE.read_text().strip()
    else:
        raise DriverError("the target setting auth must be token, kubeconfig or in_cluster")
    api = client.ApiClient(configuration)
    weakref.finalize(api, _remove_folder, folder)
    return Connection(api=api, namespace=namespace or "default", redact=redact, server=configuration.host)


def _remove_folder(folder: str) -> None:
    for name in os.listdir(folder) if os.path.isdir(folder) else ():
        os.unlink(os.path.join(folder, name))
    if os.path.isdir(folder):
        os.rmdir(folder)

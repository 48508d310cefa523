"""Objects on the API server as plain dicts, whatever their API group: read, list, create, replace, delete.

Built-in kinds in API groups and custom resources (KServe, Argo Rollouts) share one path scheme,
``/apis/<group>/<version>/namespaces/<ns>/<plural>``, so ``CustomObjectsApi`` serves them all as dicts; the
core group (``/api/v1``: ConfigMaps, Services, Pods) goes through ``CoreV1Api`` with the raw JSON. Which
version of a kind the server serves (``autoscaling/v2`` or ``v2beta2``, ``policy/v1`` or ``v1beta1``,
``batch/v1`` or ``v1beta1`` CronJobs) is discovered per resource, once per store.

Every failure becomes a ``DriverError`` whose text comes from the server's status message, scrubbed of the
target's secrets; a 409 (someone else wrote the object since it was read) is a ``ConcurrentWrite``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from apps.deployments.plans import DriverError

from .connection import Connection

TIMEOUT = (5, 30)  # connect, read: every call is short
_METHODS = {"read": "GET", "list": "GET", "create": "POST", "replace": "PUT", "delete": "DELETE"}
_COLLECTION = ("list", "create")  # verbs addressed to the collection, not to one object


class ConcurrentWrite(DriverError):
    """Another client changed or created the object between this driver's read and its write (HTTP 409)."""


@dataclass(frozen=True)
class Kind:
    api_version: str  # "apps/v1", "v1"
    kind: str
    plural: str

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]


CONFIG_MAP = Kind("v1", "ConfigMap", "configmaps")
SERVICE = Kind("v1", "Service", "services")
POD = Kind("v1", "Pod", "pods")
DEPLOYMENT = Kind("apps/v1", "Deployment", "deployments")
REPLICA_SET = Kind("apps/v1", "ReplicaSet", "replicasets")
INFERENCE_SERVICE = Kind("serving.kserve.io/v1beta1", "InferenceService", "inferenceservices")
ROLLOUT = Kind("argoproj.io/v1alpha1", "Rollout", "rollouts")
# Kinds whose served version depends on the cluster: newest first.
AUTOSCALERS = (
    Kind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    Kind("autoscaling/v2beta2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
)
DISRUPTION_BUDGETS = (
    Kind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    Kind("policy/v1beta1", "PodDisruptionBudget", "poddisruptionbudgets"),
)
CRON_JOBS = (Kind("batch/v1", "CronJob", "cronjobs"), Kind("batch/v1beta1", "CronJob", "cronjobs"))


class ObjectStore:
    """One namespace of one cluster, as dicts."""

    def __init__(self, connection: Connection) -> None:
        self.namespace = connection.namespace
        self._redact = connection.redact
        self._server = connection.server
        self._api = connection.api
        self._core = client.CoreV1Api(connection.api)
        self._custom = client.CustomObjectsApi(connection.api)
        self._served: dict[str, set[str]] = {}

    # -- discovery

    def served(self, kind: Kind) -> bool:
        """Whether the server serves ``kind`` at its API version (a missing group or version is False)."""
        if kind.api_version not in self._served:
            if kind.group:
                found = self._call(
                    "discover", kind, "", lambda: self._custom.get_api_resources(kind.group, kind.version)
                )
            else:
                found = self._call("discover", kind, "", lambda: self._core.get_api_resources())
            self._served[kind.api_version] = {r.name for r in found.resources} if found else set()
        return kind.plural in self._served[kind.api_version]

    def first_served(self, *kinds: Kind) -> Kind:
        """The first of ``kinds`` the server serves (newest first by convention)."""
        for kind in kinds:
            if self.served(kind):
                return kind
        raise DriverError(f"the API server serves none of {', '.join(k.api_version for k in kinds)} {kinds[0].plural}")

    # -- reads

    def get(self, kind: Kind, name: str) -> dict | None:
        if kind.group:
            return self._call(
                "read", kind, name,
                lambda: self._custom.get_namespaced_custom_object(
                    kind.group, kind.version, self.namespace, kind.plural, name, _request_timeout=TIMEOUT
                ),
                missing_ok=True,
            )  # fmt: skip
        return self._core_call("read", kind, name, missing_ok=True)

    def list(self, kind: Kind, selector: str) -> list[dict]:
        if kind.group:
            found = self._call(
                "list", kind, "",
                lambda: self._custom.list_namespaced_custom_object(
                    kind.group, kind.version, self.namespace, kind.plural, label_selector=selector,
                    _request_timeout=TIMEOUT,
                ),
            )  # fmt: skip
        else:
            found = self._core_call("list", kind, selector=selector)
        return list(found.get("items") or [])

    # -- writes

    def create(self, kind: Kind, body: dict) -> dict:
        name = body["metadata"]["name"]
        if kind.group:
            return self._call(
                "create", kind, name,
                lambda: self._custom.create_namespaced_custom_object(
                    kind.group, kind.version, self.namespace, kind.plural, body, _request_timeout=TIMEOUT
                ),
            )  # fmt: skip
        return self._core_call("create", kind, name, body=body)

    def replace(self, kind: Kind, body: dict) -> dict:
        """Write ``body`` over the object; it must carry the ``resourceVersion`` it was read at (else a 409)."""
        name = body["metadata"]["name"]
        if kind.group:
            return self._call(
                "replace", kind, name,
                lambda: self._custom.replace_namespaced_custom_object(
                    kind.group, kind.version, self.namespace, kind.plural, name, body, _request_timeout=TIMEOUT
                ),
            )  # fmt: skip
        return self._core_call("replace", kind, name, body=body)

    def delete(self, kind: Kind, name: str, resource_version: str | None) -> None:
        """Delete the object if it is still at ``resource_version``; dependents go in the background."""
        options = client.V1DeleteOptions(
            propagation_policy="Background",
            preconditions=client.V1Preconditions(resource_version=resource_version) if resource_version else None,
        )
        if kind.group:
            self._call(
                "delete", kind, name,
                lambda: self._custom.delete_namespaced_custom_object(
                    kind.group, kind.version, self.namespace, kind.plural, name, body=options,
                    _request_timeout=TIMEOUT,
                ),
                missing_ok=True,
            )  # fmt: skip
        else:
            self._core_call("delete", kind, name, body=options, missing_ok=True)

    # -- plumbing

    def _core_call(
        self, verb: str, kind: Kind, name: str = "", body: Any = None, selector: str = "", missing_ok: bool = False
    ) -> Any:
        """The core group (``/api/v1``) as raw JSON: its typed methods would turn the dicts into their models."""
        path = f"/api/v1/namespaces/{self.namespace}/{kind.plural}" + (f"/{name}" if verb not in _COLLECTION else "")
        query = [("labelSelector", selector)] if selector else []
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"

        def call():
            request = self._api.param_serialize(
                method=_METHODS[verb], resource_path=path, query_params=query, header_params=dict(headers),
                body=body, auth_settings=["BearerToken"],
            )  # fmt: skip
            response = self._api.call_api(*request, _request_timeout=TIMEOUT)
            response.read()
            if not 200 <= response.status <= 299:
                raise ApiException.from_response(http_resp=response, body=None, data=None)
            return json.loads(response.data or b"{}")

        return self._call(verb, kind, name, call, missing_ok=missing_ok)

    def _call(self, verb: str, kind: Kind, name: str, call: Callable[[], Any], missing_ok: bool = False) -> Any:
        what = f"{kind.kind} {name}".strip() if name else f"{kind.api_version} {kind.plural}"
        try:
            return call()
        except ApiException as exc:
            if exc.status == 404 and (missing_ok or verb == "discover"):
                return None
            raise self._refusal(verb, what, exc) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise DriverError(
                f"the Kubernetes API server at {self._server} could not be reached to {verb} {what} "
                f"({type(exc).__name__})"
            ) from None

    def _refusal(self, verb: str, what: str, exc: ApiException) -> DriverError:
        try:
            message = str(json.loads(exc.body or "{}").get("message") or "")
        except (ValueError, AttributeError):
            message = ""
        message = self._redact(message)[:500]
        if exc.status == 401:
            return DriverError(f"the API server did not accept the target's credentials (HTTP 401) to {verb} {what}")
        if exc.status == 409:
            return ConcurrentWrite(
                f"could not {verb} {what}: another client changed it at the same time (HTTP 409): {message}"
            )
        return DriverError(f"the API server refused to {verb} {what} (HTTP {exc.status}): {message}")


def _selector_terms(selector: str) -> list[tuple[str, str | None]]:
    """A label selector of equality and existence terms (``a=b,c``: all the driver writes), as (key, value)."""
    terms: list[tuple[str, str | None]] = []
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!" in term or " " in term:
            raise ValueError(f"unsupported label selector term {term!r}")
        key, sep, value = term.partition("=")
        terms.append((key, value.lstrip("=") if sep else None))
    return terms


def _labels_of(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("labels") or {}


def _selected(labels: dict, terms: list[tuple[str, str | None]]) -> bool:
    return all(key in labels and (value is None or labels[key] == value) for key, value in terms)


class Snapshot:
    """A read-only view of one namespace for a pass over all its services (the reconciler's).

    Each kind is listed once, by ``within`` (Assay's labels: every selector asked later must narrow it), at its
    first use, and indexed by the ``by`` label and by name; later lists and reads of that kind are answered
    from memory, so reading back N services costs a request per kind rather than several per service. A read
    of an object the listing does not hold (one without Assay's labels: an anchor or a Service someone
    relabelled) still asks the server, so the answers are the store's own.
    """

    def __init__(self, store: ObjectStore, within: str, by: str) -> None:
        self.namespace = store.namespace
        self._store = store
        self._within = within
        self._by = by
        self._listed: dict[Kind, tuple[dict[str, list[dict]], dict[str, dict]]] = {}

    def served(self, kind: Kind) -> bool:
        return self._store.served(kind)

    def first_served(self, *kinds: Kind) -> Kind:
        return self._store.first_served(*kinds)

    def _index(self, kind: Kind) -> tuple[dict[str, list[dict]], dict[str, dict]]:
        if kind not in self._listed:
            by_label: dict[str, list[dict]] = {}
            by_name: dict[str, dict] = {}
            for obj in self._store.list(kind, self._within):
                by_label.setdefault(_labels_of(obj).get(self._by, ""), []).append(obj)
                by_name[obj["metadata"]["name"]] = obj
            self._listed[kind] = (by_label, by_name)
        return self._listed[kind]

    def list(self, kind: Kind, selector: str) -> list[dict]:
        terms = _selector_terms(selector)
        by_label, _ = self._index(kind)
        key = dict(terms).get(self._by)
        candidates = by_label.get(key, []) if key is not None else [o for group in by_label.values() for o in group]
        return [obj for obj in candidates if _selected(_labels_of(obj), terms)]

    def get(self, kind: Kind, name: str) -> dict | None:
        found = self._index(kind)[1].get(name)
        return found if found is not None else self._store.get(kind, name)


Reader = ObjectStore | Snapshot  # what the observing functions read from: the server, or one pass's snapshot

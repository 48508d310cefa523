"""A Kubernetes target's settings, read once and checked: runtime, images, GPU profile, scaling, budget.

The settings are plain JSON an admin entered for the target. Cloud differences (EKS, AKS, GKE, on-premises)
are settings, never code: a GPU node pool is a node selector and tolerations, for example

- AKS: ``{"node_selector": {"kubernetes.azure.com/accelerator": "nvidia"},
  "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}``
- EKS: ``{"node_selector": {"eks.amazonaws.com/nodegroup": "gpu-a10g"}}`` or
  ``{"node_selector": {"k8s.amazonaws.com/accelerator": "nvidia-tesla-t4"}}`` with the same toleration
  (the NVIDIA device plugin's ``nvidia.com/gpu`` NoSchedule taint).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apps.deployments.plans import DriverError

RUNTIMES = ("deployment", "kserve", "argo")

# KServe's model format names for Assay's formats. skops has no KServe runtime that loads it without pickle,
# so it needs an explicit entry in settings (``kserve.model_formats``) naming a runtime that does.
KSERVE_MODEL_FORMATS = {"onnx": "onnx", "xgboost": "xgboost", "lightgbm": "lightgbm"}


@dataclass(frozen=True)
class Profile:
    """Everything about the pods that does not come from the plan."""

    namespace: str
    runtime: str = "deployment"
    images: dict[str, str] = field(default_factory=dict)
    port: int = 8080
    service_port: int = 80
    service_type: str = "ClusterIP"
    gpu_resource: str = ""  # e.g. "nvidia.com/gpu"
    gpu_count: int = 0
    requests: dict[str, str] = field(default_factory=dict)  # {"cpu": "500m", "memory": "1Gi"}
    limits: dict[str, str] = field(default_factory=dict)
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict, ...] = ()
    service_account: str = ""
    image_pull_secrets: tuple[str, ...] = ()
    model_credentials_secret: str = ""  # a Secret whose keys become the container's environment (S3 access)
    min_replicas: int = 1
    max_replicas: int = 0  # > min_replicas: a HorizontalPodAutoscaler per member
    cpu_utilization: int = 70
    pdb_max_unavailable: int | None = 1
    pdb_min_available: int | None = None
    batch_command: tuple[str, ...] = ()
    batch_args: tuple[str, ...] = ()
    batch_backoff_limit: int = 2
    kserve_model_formats: dict[str, str] = field(default_factory=dict)
    kserve_runtime: str = ""
    kserve_annotations: dict[str, str] = field(default_factory=dict)
    argo_canary: dict[str, Any] = field(default_factory=dict)  # canaryService, stableService, trafficRouting

    @property
    def autoscaled(self) -> bool:
        return self.max_replicas > self.min_replicas

    def image_for(self, fmt: str) -> str:
        image = self.images.get(fmt)
        if not image:
            raise DriverError(f"the target has no serving image for the {fmt!r} format (settings: images.{fmt})")
        return image

    def kserve_format(self, fmt: str) -> str:
        name = {**KSERVE_MODEL_FORMATS, **self.kserve_model_formats}.get(fmt)
        if not name:
            raise DriverError(
                f"the target names no KServe model format for {fmt!r} (settings: kserve.model_formats.{fmt})"
            )
        return name

    def resources(self) -> dict[str, dict[str, str]]:
        """Requests and limits; a GPU goes in limits (and requests, which must equal them for extended resources)."""
        requests, limits = dict(self.requests), dict(self.limits)
        if self.gpu_resource and self.gpu_count:
            limits[self.gpu_resource] = str(self.gpu_count)
            requests[self.gpu_resource] = str(self.gpu_count)
        out = {}
        if requests:
            out["requests"] = requests
        if limits:
            out["limits"] = limits
        return out


def _int(value: Any, name: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise DriverError(f"the target setting {name} must be a whole number of at least {minimum}")
    return value


def _strings(value: Any, name: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise DriverError(f"the target setting {name} must map names to strings")
    return dict(value)


def profile_from_settings(settings: dict, namespace: str) -> Profile:
    """Read the target's settings; a wrong one is a ``DriverError`` that names the setting, never its secret."""
    runtime = settings.get("runtime", "deployment")
    if runtime not in RUNTIMES:
        raise DriverError(f"the target setting runtime must be one of {', '.join(RUNTIMES)}")
    gpu = settings.get("gpu") or {}
    resources = settings.get("resources") or {}
    replicas = settings.get("replicas") or {}
    budget = settings.get("disruption_budget", {"max_unavailable": 1}) or {}
    batch = settings.get("batch") or {}
    kserve = settings.get("kserve") or {}
    tolerations = settings.get("tolerations") or []
    if not isinstance(tolerations, list) or not all(isinstance(t, dict) for t in tolerations):
        raise DriverError("the target setting tolerations must be a list of Kubernetes tolerations")
    profile = Profile(
        namespace=namespace,
        runtime=runtime,
        images=_strings(settings.get("images") or {}, "images"),
        port=_int(settings.get("port", 8080), "port", 1),
        service_port=_int(settings.get("service_port", 80), "service_port", 1),
        service_type=settings.get("service_type", "ClusterIP"),
        gpu_resource=gpu.get("resource", "nvidia.com/gpu" if gpu.get("count") else ""),
        gpu_count=_int(gpu.get("count", 0), "gpu.count"),
        requests=_strings(resources.get("requests") or {}, "resources.requests"),
        limits=_strings(resources.get("limits") or {}, "resources.limits"),
        node_selector=_strings(settings.get("node_selector") or {}, "node_selector"),
        tolerations=tuple(tolerations),
        service_account=settings.get("service_account", ""),
        image_pull_secrets=tuple(settings.get("image_pull_secrets") or ()),
        model_credentials_secret=settings.get("model_credentials_secret", ""),
        min_replicas=_int(replicas.get("min", 1), "replicas.min"),
        max_replicas=_int(replicas.get("max", 0), "replicas.max"),
        cpu_utilization=_int(replicas.get("cpu_utilization", 70), "replicas.cpu_utilization", 1),
        pdb_max_unavailable=budget.get("max_unavailable") if "min_available" not in budget else None,
        pdb_min_available=budget.get("min_available"),
        batch_command=tuple(batch.get("command") or ()),
        batch_args=tuple(batch.get("args") or ()),
        batch_backoff_limit=_int(batch.get("backoff_limit", 2), "batch.backoff_limit"),
        kserve_model_formats=_strings(kserve.get("model_formats") or {}, "kserve.model_formats"),
        kserve_runtime=kserve.get("runtime", ""),
        kserve_annotations=_strings(kserve.get("annotations") or {}, "kserve.annotations"),
        argo_canary=dict(settings.get("argo") or {}),
    )
    if profile.service_type not in ("ClusterIP", "NodePort", "LoadBalancer"):
        raise DriverError("the target setting service_type must be ClusterIP, NodePort or LoadBalancer")
    return profile

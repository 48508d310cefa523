"""The shape of a target's settings and credentials, per kind: which keys, of which JSON types.

Only the shape is checked here (known keys, types); whether a cluster answers or an account may act is
learnt by the driver, in a worker. A key that is not listed is refused by name, with the valid ones, so a
misspelt setting never passes silently. The drivers (``worker/drivers/<kind>.py``) read these keys.
"""

from __future__ import annotations

from typing import Any

from apps.core.errors import ValidationFailed

from .choices import TargetKind

STR, INT, NUMBER, BOOL, DICT, LIST = "string", "integer", "number", "boolean", "object", "array"
STR_OR_LIST = "string or array"
_TYPES = {
    STR: (str,),
    INT: (int,),
    NUMBER: (int, float),
    BOOL: (bool,),
    DICT: (dict,),
    LIST: (list,),
    STR_OR_LIST: (str, list),
}

SETTINGS: dict[str, dict[str, str]] = {
    TargetKind.LOCAL: {
        "name": STR,  # the target's name in its state (a DNS label; default: the target's own name)
        "state_dir": STR,  # its folder (default <ASSAY_VAR_DIR>/deployments/<name>)
        "router_port": INT,  # the router's port (0: a free one, picked once and recorded)
        "port_range": STR_OR_LIST,  # "18100-18199" or [18100, 18199], for the serving processes
        "ready_wait_seconds": NUMBER,  # how long an apply waits for new processes to answer
        "inference_threads": INT,
    },
    # worker/drivers/kubernetes/ (docs/targets-kubernetes.md)
    TargetKind.KUBERNETES: {
        "auth": STR,  # token | kubeconfig | in_cluster (default: from the credentials given)
        "server": STR,  # https://... (auth token)
        "ca_cert": STR,  # PEM (here or in the credentials)
        "context": STR,  # the kubeconfig's context
        "namespace": STR,
        "runtime": STR,  # deployment | kserve | argo
        "images": DICT,  # artifact format -> serving image
        "port": INT,
        "service_port": INT,
        "service_type": STR,  # ClusterIP | NodePort | LoadBalancer
        "model_credentials_secret": STR,
        "service_account": STR,
        "image_pull_secrets": LIST,
        "kserve": DICT,  # model_formats, runtime, annotations
        "argo": DICT,  # copied into the Rollout's strategy.canary
        "batch": DICT,  # command, args, backoff_limit
        "gpu": DICT,  # {"resource": "nvidia.com/gpu", "count": 1}
        "resources": DICT,  # {"requests": {...}, "limits": {...}}
        "node_selector": DICT,
        "tolerations": LIST,
        "replicas": DICT,  # {"min": 1, "max": 8, "cpu_utilization": 70}
        "disruption_budget": DICT,  # {"max_unavailable": 1} | {"min_available": 1} | {}
    },
    # worker/drivers/sagemaker/ (docs/targets-sagemaker.md)
    TargetKind.SAGEMAKER: {
        "region": STR,
        "endpoint_url": STR,  # another endpoint than AWS's (a test server)
        "execution_role_arn": STR,
        "images": DICT,  # artifact format -> serving image
        "instance_type": STR,
        "instance_count": INT,
        "shadow_instance_type": STR,
        "serverless": DICT,
        "alarms": LIST,  # CloudWatch alarm names for auto-rollback
        "traffic": DICT,  # {"mode": "canary" | "linear" | "all_at_once", ...}
        "autoscaling": DICT,
        "batch": DICT,  # vcpus, memory_mb, gpus, command, job_role_arn
    },
}

CREDENTIALS: dict[str, dict[str, str]] = {
    TargetKind.LOCAL: {"router_token": STR},  # the router's admin token (else one is generated)
    TargetKind.KUBERNETES: {"token": STR, "kubeconfig": STR, "ca_cert": STR},
    TargetKind.SAGEMAKER: {"access_key_id": STR, "secret_access_key": STR, "session_token": STR},
}


def _has_nul(value: Any) -> bool:
    """Whether a NUL character hides anywhere in the value (PostgreSQL's JSON refuses it)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _check(kind: str, values: Any, known: dict[str, str], field: str) -> dict:
    if not isinstance(values, dict):
        raise ValidationFailed(f"{field} must be a JSON object.", errors={field: ["Expected an object."]})
    if _has_nul(values):
        raise ValidationFailed(f"{field} must not contain NUL characters.", errors={field: ["NUL character."]})
    errors: dict[str, list[str]] = {}
    for key, value in values.items():
        if key not in known:
            valid = ", ".join(sorted(known)) or "none"
            errors[f"{field}.{key}"] = [f"Unknown key for a {kind} target; valid keys: {valid}."]
            continue
        expected = known[key]
        if not isinstance(value, _TYPES[expected]) or (expected in (INT, NUMBER) and isinstance(value, bool)):
            errors[f"{field}.{key}"] = [f"Expected {expected}."]
    if errors:
        raise ValidationFailed(
            f"The {field} of a {kind} target are not valid: " + "; ".join(f"{k}: {v[0]}" for k, v in errors.items()),
            errors=errors,
            extra={"valid_values": {field: sorted(known)}},
        )
    return dict(values)


def checked_settings(kind: str, values: Any) -> dict:
    """``values`` when every key is one the kind takes, with its JSON type; else a 400 naming each bad key."""
    return _check(kind, values, SETTINGS[kind], "settings")


def checked_credentials(kind: str, values: Any) -> dict:
    """As ``checked_settings``, for the credentials (their values are never repeated in a message)."""
    return _check(kind, values, CREDENTIALS[kind], "credentials")

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
    TargetKind.KUBERNETES: {
        "api_url": STR,
        "ca_cert": STR,  # PEM
        "in_cluster": BOOL,  # use the pod's service account
        "namespace": STR,
        "runtime": STR,  # deployment | kserve | argo
        "images": DICT,  # artifact format -> serving image
        "gpu": DICT,  # {"resource": "nvidia.com/gpu", "count": 1, "node_selector": {...}, "tolerations": [...]}
        "cpu": STR,
        "memory": STR,
        "replicas_min": INT,
        "replicas_max": INT,
        "pod_disruption_budget": BOOL,
    },
    TargetKind.SAGEMAKER: {
        "region": STR,
        "endpoint_url": STR,  # another endpoint than AWS's (a test server)
        "role_arn": STR,
        "image_uri": STR,
        "instance_type": STR,
        "instance_count": INT,
        "serverless": DICT,
        "alarms": LIST,  # CloudWatch alarm names for auto-rollback
        "autoscaling": DICT,
    },
}

CREDENTIALS: dict[str, dict[str, str]] = {
    TargetKind.LOCAL: {"router_token": STR},  # the router's admin token (else one is generated)
    TargetKind.KUBERNETES: {"token": STR, "kubeconfig": STR},
    TargetKind.SAGEMAKER: {"aws_access_key_id": STR, "aws_secret_access_key": STR, "aws_session_token": STR},
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

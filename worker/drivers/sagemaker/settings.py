"""A SageMaker target's settings: read once from the JSON the admin entered, checked, and turned into the
pieces of SageMaker requests they decide (variant resources, the deployment config, auto scaling).

```
{
  "region": "eu-west-1",
  "endpoint_url": "",                                  # optional: an AWS-compatible endpoint (tests)
  "execution_role_arn": "arn:aws:iam::123456789012:role/assay-sagemaker",
  "images": {"onnx": "<ecr image uri>", "skops": "...", "xgboost": "...", "lightgbm": "..."},
  "instance_type": "ml.g5.xlarge",                     # GPU instance types are fine
  "instance_count": 2,                                 # optional (default: each member's replicas)
  "shadow_instance_type": "ml.g5.xlarge",              # optional (default: instance_type)
  "serverless": {"memory_mb": 4096, "max_concurrency": 10},   # optional: instead of instances
  "alarms": ["credit-scoring-5xx", "credit-scoring-latency"], # CloudWatch alarms that roll an update back
  "autoscaling": {"min_capacity": 1, "max_capacity": 4, "target_invocations_per_instance": 200,
                  "scale_in_cooldown_seconds": 300, "scale_out_cooldown_seconds": 60},
  "traffic": {"mode": "canary", "size_percent": 10, "wait_seconds": 600}
          # or {"mode": "linear", "step_percent": 20, "interval_seconds": 300}
          # or {"mode": "all_at_once"}; optional "termination_wait_seconds", "max_execution_timeout_seconds"
}
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apps.deployments.plans import DriverError, Member

TRAFFIC_MODES = ("all_at_once", "canary", "linear")
FORMATS = ("onnx", "skops", "xgboost", "lightgbm")


def _int(raw: dict, key: str, default: int | None, *, low: int, high: int, where: str) -> int | None:
    value = raw.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise DriverError(f"{where}: {key} must be a whole number from {low} to {high}, not {value!r}")
    return value


@dataclass(frozen=True)
class Serverless:
    memory_mb: int
    max_concurrency: int

    def request(self) -> dict[str, int]:
        return {"MemorySizeInMB": self.memory_mb, "MaxConcurrency": self.max_concurrency}


@dataclass(frozen=True)
class AutoScaling:
    min_capacity: int
    max_capacity: int
    target_invocations_per_instance: float
    scale_in_cooldown_seconds: int = 300
    scale_out_cooldown_seconds: int = 60


@dataclass(frozen=True)
class Traffic:
    mode: str = "all_at_once"
    size_percent: int | None = None  # canary
    step_percent: int | None = None  # linear
    wait_seconds: int = 0  # canary: bake time before the rest; linear: time between steps
    termination_wait_seconds: int = 0
    max_execution_timeout_seconds: int | None = None


@dataclass(frozen=True)
class TargetSettings:
    region: str
    execution_role_arn: str
    images: dict[str, str]
    endpoint_url: str = ""
    instance_type: str = ""
    instance_count: int | None = None
    shadow_instance_type: str = ""
    serverless: Serverless | None = None
    alarms: tuple[str, ...] = ()
    autoscaling: AutoScaling | None = None
    traffic: Traffic = field(default_factory=Traffic)
    batch: dict[str, Any] = field(default_factory=dict)  # AWS Batch job definitions for batch plans (batch.py)

    # -- what the settings decide ------------------------------------------------------------------

    def image_for(self, member: Member) -> str:
        image = self.images.get(member.format)
        if not image:
            raise DriverError(
                f"this SageMaker target has no serving image for the {member.format!r} format "
                f"(settings: images.{member.format}); version {member.version} cannot be deployed here"
            )
        return image

    def variant_resources(self, member: Member) -> dict[str, Any]:
        """What a variant of ``member`` runs on: a serverless config, or an instance type and count."""
        if self.serverless is not None:
            return {"ServerlessConfig": self.serverless.request()}
        if not self.instance_type:
            raise DriverError("this SageMaker target has no instance_type (or serverless) for endpoints")
        count = self.instance_count if self.instance_count is not None else max(member.replicas, 1)
        if self.autoscaling is not None and not member.shadow:
            count = min(max(count, self.autoscaling.min_capacity), self.autoscaling.max_capacity)
        instance_type = (self.shadow_instance_type or self.instance_type) if member.shadow else self.instance_type
        return {"InstanceType": instance_type, "InitialInstanceCount": count}

    def deployment_config(self) -> dict[str, Any] | None:
        """``UpdateEndpoint``'s ``DeploymentConfig``: a blue/green update shifting traffic as configured,
        rolled back by SageMaker when one of the alarms fires. None when nothing is configured (SageMaker's
        default: blue/green, all at once, no alarms).

        Canary and linear shifting are refused without alarms: SageMaker only rolls a blue/green update
        back when an alarm of its ``AutoRollbackConfiguration`` goes into ALARM, so a canary without alarms
        would shift all traffic after the wait whatever the new fleet does."""
        traffic = self.traffic
        if traffic.mode in ("canary", "linear") and not self.alarms:
            raise DriverError(
                f"{traffic.mode} traffic shifting needs CloudWatch alarms (settings: alarms): SageMaker rolls "
                "an update back only when one of its auto-rollback alarms fires, so without them a bad "
                "version would take all traffic once the wait is over"
            )
        if traffic.mode == "all_at_once" and not self.alarms and not traffic.termination_wait_seconds:
            return None
        routing: dict[str, Any] = {"Type": traffic.mode.upper(), "WaitIntervalInSeconds": traffic.wait_seconds}
        if traffic.mode == "canary":
            routing["CanarySize"] = {"Type": "CAPACITY_PERCENT", "Value": traffic.size_percent}
        elif traffic.mode == "linear":
            routing["LinearStepSize"] = {"Type": "CAPACITY_PERCENT", "Value": traffic.step_percent}
        policy: dict[str, Any] = {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": traffic.termination_wait_seconds,
        }
        if traffic.max_execution_timeout_seconds is not None:
            policy["MaximumExecutionTimeoutInSeconds"] = traffic.max_execution_timeout_seconds
        config: dict[str, Any] = {"BlueGreenUpdatePolicy": policy}
        if self.alarms:
            config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": name} for name in self.alarms]}
        return config


def _traffic(raw: Any) -> Traffic:
    if raw is None:
        return Traffic()
    if not isinstance(raw, dict):
        raise DriverError('traffic must be an object such as {"mode": "canary", ...}')
    mode = raw.get("mode", "all_at_once")
    if mode not in TRAFFIC_MODES:
        raise DriverError(f"traffic.mode must be one of {', '.join(TRAFFIC_MODES)}, not {mode!r}")
    where = f"traffic ({mode})"
    common = {
        "termination_wait_seconds": _int(raw, "termination_wait_seconds", 0, low=0, high=3600, where=where),
        "max_execution_timeout_seconds": _int(
            raw, "max_execution_timeout_seconds", None, low=600, high=28800, where=where
        ),
    }
    if mode == "canary":
        return Traffic(
            mode=mode,
            size_percent=_int(raw, "size_percent", None, low=1, high=99, where=where) or 10,
            wait_seconds=_int(raw, "wait_seconds", 600, low=0, high=3600, where=where),
            **common,
        )
    if mode == "linear":
        return Traffic(
            mode=mode,
            step_percent=_int(raw, "step_percent", None, low=1, high=99, where=where) or 10,
            wait_seconds=_int(raw, "interval_seconds", 600, low=0, high=3600, where=where),
            **common,
        )
    return Traffic(mode=mode, **common)


def parse_settings(raw: dict[str, Any]) -> TargetSettings:
    """Check a target's settings and read them; a DriverError names the first setting that is wrong."""
    if not isinstance(raw, dict):
        raise DriverError("the SageMaker target's settings must be an object")
    for key in ("region", "execution_role_arn"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise DriverError(f"the SageMaker target's settings need {key}")
    images = raw.get("images") or {}
    if not isinstance(images, dict) or not images:
        raise DriverError("the SageMaker target's settings need images: a serving image per artifact format")
    unknown = sorted(set(images) - set(FORMATS))
    if unknown:
        raise DriverError(f"images names formats Assay does not serve: {', '.join(unknown)}")
    serverless = None
    if raw.get("serverless") is not None:
        s = raw["serverless"]
        if not isinstance(s, dict):
            raise DriverError('serverless must be an object: {"memory_mb": ..., "max_concurrency": ...}')
        serverless = Serverless(
            memory_mb=_int(s, "memory_mb", None, low=1024, high=6144, where="serverless"),
            max_concurrency=_int(s, "max_concurrency", None, low=1, high=200, where="serverless"),
        )
        if serverless.memory_mb is None or serverless.max_concurrency is None or serverless.memory_mb % 1024:
            raise DriverError("serverless needs memory_mb (1024 to 6144, in steps of 1024) and max_concurrency")
    elif (raw.get("instance_type") is not None or not raw.get("batch")) and not (
        isinstance(raw.get("instance_type"), str) and raw["instance_type"].startswith("ml.")
    ):
        raise DriverError("the SageMaker target's settings need instance_type (e.g. ml.g5.xlarge) or serverless")
    autoscaling = None
    if raw.get("autoscaling") is not None:
        if serverless is not None:
            raise DriverError("autoscaling applies to instance-backed variants; a serverless endpoint scales itself")
        a = raw["autoscaling"]
        if not isinstance(a, dict):
            raise DriverError("autoscaling must be an object with min_capacity, max_capacity and a target")
        low = _int(a, "min_capacity", 1, low=1, high=1000, where="autoscaling")
        high = _int(a, "max_capacity", None, low=1, high=1000, where="autoscaling")
        target = a.get("target_invocations_per_instance")
        if high is None or high < low or isinstance(target, bool) or not isinstance(target, int | float) or target <= 0:
            raise DriverError(
                "autoscaling needs max_capacity >= min_capacity and a positive target_invocations_per_instance"
            )
        autoscaling = AutoScaling(
            min_capacity=low,
            max_capacity=high,
            target_invocations_per_instance=float(target),
            scale_in_cooldown_seconds=_int(a, "scale_in_cooldown_seconds", 300, low=0, high=86400, where="autoscaling"),
            scale_out_cooldown_seconds=_int(
                a, "scale_out_cooldown_seconds", 60, low=0, high=86400, where="autoscaling"
            ),
        )
    alarms = raw.get("alarms") or []
    if not isinstance(alarms, list) or not all(isinstance(a, str) and a for a in alarms) or len(alarms) > 10:
        raise DriverError("alarms must be a list of at most 10 CloudWatch alarm names")
    return TargetSettings(
        region=raw["region"],
        execution_role_arn=raw["execution_role_arn"],
        images=dict(images),
        endpoint_url=raw.get("endpoint_url") or "",
        instance_type=raw.get("instance_type") or "",
        instance_count=_int(raw, "instance_count", None, low=1, high=1000, where="settings"),
        shadow_instance_type=raw.get("shadow_instance_type") or "",
        serverless=serverless,
        alarms=tuple(alarms),
        autoscaling=autoscaling,
        traffic=_traffic(raw.get("traffic")),
        batch=dict(raw.get("batch") or {}),
    )

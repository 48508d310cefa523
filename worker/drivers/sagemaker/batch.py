"""A batch plan on an AWS target: the scoring job's AWS Batch job definition (the job queue and the schedule
that submits it belong to the account, not to Assay).

The definition is named after the service; each change registers a new revision (AWS Batch never edits
one) carrying the model's S3 URI and approved digest in its environment, the serving image for the
model's format, and the vCPU, memory and GPU it needs. Its tags carry the plan's labels and fence: a
plan under an older fence than the newest active revision's is refused, and applying the same plan again
registers nothing. Older revisions are deregistered once the new one is in.

Target settings: ``"batch": {"vcpus": 4, "memory_mb": 16384, "gpus": 1, "job_role_arn": "arn:...",
"command": ["python", "-m", "score"]}`` (``gpus`` 0 or absent: no GPU).
"""

from __future__ import annotations

from typing import Any

from apps.deployments.plans import LABEL_FENCE, DriverError, Plan, StaleFence

from .aws import Aws
from .desired import ENV_DIGEST, ENV_FORMAT, ENV_VERSION_ID, LABEL_SERVICE, model_spec
from .settings import TargetSettings

ENV_MODEL_URI = "ASSAY_MODEL_URI"
ENV_SCHEDULE = "ASSAY_SCHEDULE"


def job_definition_request(plan: Plan, settings: TargetSettings) -> dict[str, Any]:
    live = [m for m in plan.members if not m.shadow]
    if len(live) != 1:
        raise DriverError(f"a batch plan scores with exactly one version, not {len(live)}")
    member = live[0]
    spec = model_spec(plan, member, settings)  # refuses an artifact outside S3 and a format with no image
    raw = settings.batch or {}
    vcpus, memory, gpus = raw.get("vcpus", 2), raw.get("memory_mb", 4096), raw.get("gpus", 0)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (vcpus, memory, gpus)):
        raise DriverError("batch.vcpus, batch.memory_mb and batch.gpus must be whole numbers")
    resources = [{"type": "VCPU", "value": str(vcpus)}, {"type": "MEMORY", "value": str(memory)}]
    if gpus:
        resources.append({"type": "GPU", "value": str(gpus)})
    environment = {
        ENV_MODEL_URI: member.artifact_uri,
        ENV_DIGEST: member.digest,
        ENV_FORMAT: member.format,
        ENV_VERSION_ID: member.version_id,
        ENV_SCHEDULE: plan.schedule,
    }
    container: dict[str, Any] = {
        "image": spec.request["PrimaryContainer"]["Image"],
        "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
        "resourceRequirements": resources,
    }
    if raw.get("command"):
        container["command"] = list(raw["command"])
    if raw.get("job_role_arn"):
        container["jobRoleArn"] = raw["job_role_arn"]
    return {
        "jobDefinitionName": plan.service,
        "type": "container",
        "containerProperties": container,
        "tags": spec.tags,
        "propagateTags": True,
    }


def _same(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    have, want = current.get("containerProperties", {}), wanted["containerProperties"]
    key = lambda items, field: sorted((i[field], i["value"]) for i in items or [])  # noqa: E731
    return (
        have.get("image") == want["image"]
        and key(have.get("environment"), "name") == key(want["environment"], "name")
        and key(have.get("resourceRequirements"), "type") == key(want["resourceRequirements"], "type")
        and have.get("command", []) == want.get("command", [])
        and have.get("jobRoleArn") == want.get("jobRoleArn")
        and current.get("tags", {}) == wanted["tags"]
    )


def active_revisions(aws: Aws, batch, name: str) -> list[dict[str, Any]]:
    found = aws.pages(batch, "describe_job_definitions", "jobDefinitions", jobDefinitionName=name, status="ACTIVE")
    return sorted(found, key=lambda d: d["revision"])


def apply_batch(aws: Aws, settings: TargetSettings, plan: Plan) -> str:
    """Register the plan's job definition unless its newest active revision already is it; returns its ARN."""
    wanted = job_definition_request(plan, settings)
    batch = aws.client("batch")
    revisions = [r for r in active_revisions(aws, batch, plan.service) if r.get("tags", {}).get(LABEL_SERVICE)]
    if revisions:
        newest = revisions[-1]
        stored = newest.get("tags", {}).get(LABEL_FENCE, "")
        if stored.isdigit() and int(stored) > plan.fence:
            raise StaleFence(
                f"job definition {plan.service} was registered under fence {stored}; this plan's fence "
                f"{plan.fence} is older"
            )
        if _same(newest, wanted):
            return newest["jobDefinitionArn"]
    arn = aws.call(batch, "register_job_definition", **wanted)["jobDefinitionArn"]
    for old in revisions:
        aws.call(batch, "deregister_job_definition", jobDefinition=old["jobDefinitionArn"])
    return arn

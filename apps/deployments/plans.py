"""The contract between the deployments app and the target drivers in ``worker/drivers/``.

A driver never decides anything: the deployments app works out, from the database, the whole desired state
of one model's service on one target (a ``Plan``), and a worker hands it to the target's driver. ``apply``
is declarative and idempotent: applying the same plan twice changes nothing, and a plan lists every version
that should run behind the service, so whatever it does not list is removed. ``observe`` reads back what the
target actually runs (``Observed``), which the rollout analysis and the reconciler judge.

Fencing: every plan carries the rollout's fencing token (``fence``, an integer that grows each time a worker
takes the rollout over). A driver stores the token it applied on the target (an annotation, a tag, the local
router's state) and refuses, with ``StaleFence``, a plan whose token is lower than the stored one, so a worker
that lost its lease can never undo what its successor applied.

These are plain data classes: the web process imports them without importing any driver or client library.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Kubernetes object names, SageMaker endpoint names and the local router's paths all accept this.
SERVICE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,50}[a-z0-9])?$")

# Labels every object a driver creates carries (Kubernetes labels, SageMaker tags, the local router's state).
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "assay"
LABEL_MODEL = "assay.dev/model"
LABEL_VERSION = "assay.dev/version"
LABEL_VERSION_ID = "assay.dev/version-id"
LABEL_DIGEST = "assay.dev/digest"  # the artifact's sha256 hex (64 characters; an annotation where labels are shorter)
LABEL_RELEASE_ID = "assay.dev/release-id"
LABEL_DEPLOYMENT_ID = "assay.dev/deployment-id"
LABEL_FENCE = "assay.dev/fence"


class DriverError(Exception):
    """The target refused or failed; the message is meant for people and never holds a credential."""


class StaleFence(DriverError):
    """The target holds a plan applied under a newer fencing token than this one."""


class DigestMismatch(DriverError):
    """What the target would run (or runs) does not resolve to the approved artifact digest."""


@dataclass(frozen=True)
class Member:
    """One version served behind a model's service on a target."""

    deployment_id: str  # the Assay deployment that put this version here (its public id)
    release_id: str  # the approved release request it deploys (public id)
    version_id: str  # the model version's public id
    version: str  # the version's label, e.g. "3"
    digest: str  # sha256 hex of the approved artifact
    artifact_uri: str  # where the approved bytes are: file:///… (local disk) or s3://bucket/key
    format: str  # onnx | skops | xgboost | lightgbm
    # A live member's share of live traffic, percent (the weights of the live members add up to 100). A shadow
    # member's share of live requests mirrored to it, percent (0 is read as 100: every request).
    weight: int
    shadow: bool = False  # gets a mirrored copy of the live traffic; its answers are compared, never returned
    replicas: int = 1  # desired replicas (or instances) for this member

    def labels(self, model: str) -> dict[str, str]:
        return {
            LABEL_MANAGED_BY: MANAGED_BY,
            LABEL_MODEL: model,
            LABEL_VERSION: self.version,
            LABEL_VERSION_ID: self.version_id,
            LABEL_DIGEST: self.digest,
            LABEL_RELEASE_ID: self.release_id,
            LABEL_DEPLOYMENT_ID: self.deployment_id,
        }


@dataclass(frozen=True)
class Plan:
    """The whole desired state of one model's service on one target."""

    service: str  # SERVICE_NAME-safe name of the model's service on the target, e.g. "credit-scoring"
    model: str  # the registered model's name
    members: tuple[Member, ...]
    fence: int
    kind: str = "online"  # online | batch (a scheduled scoring job: Kubernetes CronJob, AWS Batch job definition)
    schedule: str = ""  # cron expression, for kind "batch"

    def __post_init__(self) -> None:
        if not SERVICE_NAME.match(self.service):
            raise ValueError(f"service name {self.service!r} is not a DNS label")
        live = [m for m in self.members if not m.shadow]
        if self.kind == "online" and live and sum(m.weight for m in live) != 100:
            raise ValueError("the weights of the live members must add up to 100")


@dataclass
class MemberStatus:
    """What a target reports for one member. Counters are cumulative since the member started."""

    version_id: str
    digest: str  # as the target reports it (label, annotation, tag, or the local server's own hash)
    weight: int  # observed share of live traffic, percent
    shadow: bool = False
    desired_replicas: int = 0
    ready_replicas: int = 0
    restarts: int = 0
    requests: int = 0  # answered requests (live and mirrored), cumulative
    errors: int = 0  # failed requests, cumulative
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    shadow_compared: int = 0  # shadow only: answers compared with the live answer
    shadow_disagreed: int = 0  # shadow only: answers that differed
    state: str = ""  # the target's own word (e.g. SageMaker "Updating", "RollingBack"; Kubernetes condition reason)
    message: str = ""


@dataclass
class Observed:
    """What one service on a target runs right now, read back by ``observe`` or ``services``."""

    service: str
    exists: bool
    fence: int | None = None
    model: str = ""
    members: list[MemberStatus] = field(default_factory=list)
    message: str = ""

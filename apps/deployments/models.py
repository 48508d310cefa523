"""Deployment targets, deployments (one rollout of an approved release onto a target) and their step timeline."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from apps.accounts.models import ServiceAccount, Team, User
from apps.core.models import TimestampedModel
from apps.rbac.models import Environment
from apps.registry.models import ModelVersion, RegisteredModel
from apps.releases.models import ReleaseRequest

from .choices import ACTIVE, DeploymentKind, DeploymentState, Phase, StepOutcome, Strategy, TargetKind


class DeploymentTarget(TimestampedModel):
    """Where versions are served: a Kubernetes cluster, a SageMaker account, or this machine (``local``).

    An environment maps to one or more targets; a release approved for the environment may be deployed
    to any of its enabled targets. ``settings`` is the kind's plain JSON (checked for shape by
    ``target_settings``); ``credentials_encrypted`` holds the kind's secrets (a token, a kubeconfig,
    AWS keys) encrypted at rest (``apps.core.encryption``), read back only by a worker that builds the
    driver. People see only whether credentials are set and their ``credentials_fingerprint``. ``drift`` is
    what the periodic reconciler last found running on the target that no approved, current release
    accounts for (``reconciled_at``: when it looked).
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.SlugField(max_length=50, unique=True)
    kind = models.CharField(max_length=16, choices=TargetKind.choices)
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="deployment_targets")
    settings = models.JSONField(default=dict, blank=True)
    credentials_encrypted = models.TextField(blank=True)
    credentials_fingerprint = models.CharField(max_length=32, blank=True)
    enabled = models.BooleanField(default=True)
    description = models.TextField(blank=True)
    # What the reconciler last found running here that does not match an approved, current release.
    drift = models.JSONField(default=list, blank=True)
    reconciled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def audit_ref(self) -> tuple[str, str, str]:
        return ("deployment_target", str(self.public_id), self.name)

    @property
    def credentials_set(self) -> bool:
        return bool(self.credentials_encrypted)


class Deployment(TimestampedModel):
    """One rollout of an approved release's version onto one target, and then its life there.

    The rollout is a state machine (``DeploymentState``) driven by short worker jobs: ``phase`` and
    ``step_index`` say where it is within ``steps``; ``fence`` grows each time a worker takes the
    rollout over, and every record a worker makes names the fence it took, so a worker that lost the
    rollout changes nothing. ``converged`` is False while the target must still be brought to what the
    state asks for (a halt's, a rollback's or an undeploy's traffic); ``traffic`` is the split last
    applied (``{}`` while nothing was applied). ``replaces`` is the deployment that served before on the
    same target and model: the stable version. At most one active deployment and one serving
    (succeeded) deployment per target and model. ``owner_team``, ``model`` and ``environment`` copy the
    release's scope, so access is decided as for releases.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    release = models.ForeignKey(ReleaseRequest, on_delete=models.PROTECT, related_name="deployments")
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="deployments")
    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="+")
    owner_team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="+")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="+")
    target = models.ForeignKey(DeploymentTarget, on_delete=models.PROTECT, related_name="deployments")
    service = models.CharField(max_length=52)
    kind = models.CharField(max_length=16, choices=DeploymentKind.choices, default=DeploymentKind.ONLINE)
    schedule = models.CharField(max_length=100, blank=True)
    strategy = models.CharField(max_length=16, choices=Strategy.choices)
    steps = models.JSONField(default=list)
    thresholds = models.JSONField(default=dict)
    state = models.CharField(max_length=16, choices=DeploymentState.choices, db_index=True)
    phase = models.CharField(max_length=16, choices=Phase.choices, default=Phase.APPLY)
    step_index = models.PositiveIntegerField(default=0)
    fence = models.BigIntegerField(default=0)
    converged = models.BooleanField(default=True)
    traffic = models.JSONField(default=dict, blank=True)
    next_check_at = models.DateTimeField(null=True, blank=True, db_index=True)
    ready_deadline = models.DateTimeField(null=True, blank=True)
    analysis_until = models.DateTimeField(null=True, blank=True)
    pause_until = models.DateTimeField(null=True, blank=True)
    baseline = models.JSONField(default=dict, blank=True)
    replaces = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    emergency = models.BooleanField(default=False)
    started_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    started_by_service_account = models.ForeignKey(
        ServiceAccount, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_by_name = models.CharField(max_length=255, blank=True)
    reason = models.TextField(blank=True)
    stopped_by_name = models.CharField(max_length=255, blank=True)
    stop_reason = models.TextField(blank=True)
    message = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    RBAC_PATHS = {"team": "owner_team_id", "model": "model_id", "environment": "environment_id"}

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["target", "model"],
                condition=Q(state__in=[s.value for s in ACTIVE]),
                name="one_active_deployment_per_target_model",
            ),
            models.UniqueConstraint(
                fields=["target", "model"],
                condition=Q(state=DeploymentState.SUCCEEDED),
                name="one_serving_deployment_per_target_model",
            ),
        ]

    def __str__(self) -> str:
        return f"deployment of {self.model.name} v{self.version.number} to {self.target.name}"

    def audit_ref(self) -> tuple[str, str, str]:
        return ("deployment", str(self.public_id), f"{self.model.name} v{self.version.number} to {self.target.name}")

    def rbac_scope(self) -> tuple[int | None, int | None, int | None]:
        return (self.owner_team_id, self.model_id, self.environment_id)


class DeploymentStep(models.Model):
    """One step of a rollout as it ran: its traffic, when it became ready and finished, and the health
    figures it was judged on (``figures``: requests, errors, error rate, p99 latency, restarts over the
    analysis window). A step run again after a halt and resume gets a row of its own."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="timeline")
    index = models.PositiveIntegerField()
    weight = models.PositiveSmallIntegerField()
    shadow = models.BooleanField(default=False)
    started_at = models.DateTimeField()
    ready_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=StepOutcome.choices, default=StepOutcome.RUNNING)
    figures = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"step {self.index} of deployment {self.deployment_id} ({self.outcome})"

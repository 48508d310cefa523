"""Deployment targets' kinds, rollout strategies and the states of a deployment."""

from django.db import models


class TargetKind(models.TextChoices):
    LOCAL = "local", "Local serving processes"
    KUBERNETES = "kubernetes", "Kubernetes cluster"
    SAGEMAKER = "sagemaker", "Amazon SageMaker"


class DeploymentKind(models.TextChoices):
    ONLINE = "online", "Online (a serving endpoint)"
    BATCH = "batch", "Batch (scheduled scoring)"


class Strategy(models.TextChoices):
    DIRECT = "direct", "Direct"
    CANARY = "canary", "Canary"
    BLUE_GREEN = "blue_green", "Blue/green"
    SHADOW = "shadow", "Shadow"


class DeploymentState(models.TextChoices):
    """A deployment's states; only ``apps.deployments.services`` moves a deployment between them.

    ``superseded``: a deployment that succeeded and was later replaced by a newer one on the same
    target (it no longer serves). ``undeployed``: removed from its target on a person's request.
    """

    PENDING = "pending", "Pending"
    PROGRESSING = "progressing", "Progressing"
    PAUSED = "paused", "Paused (waiting for a person)"
    HALTED = "halted", "Halted"
    ROLLING_BACK = "rolling_back", "Rolling back"
    SUCCEEDED = "succeeded", "Succeeded (serving)"
    ROLLED_BACK = "rolled_back", "Rolled back"
    FAILED = "failed", "Failed"
    SUPERSEDED = "superseded", "Superseded"
    UNDEPLOYED = "undeployed", "Undeployed"


# At most one of these per target and model: a rollout under way (or held) on that service.
ACTIVE = (
    DeploymentState.PENDING,
    DeploymentState.PROGRESSING,
    DeploymentState.PAUSED,
    DeploymentState.HALTED,
    DeploymentState.ROLLING_BACK,
)
# The stable version of a service: the deployment that finished and serves (at most one per target and model).
SERVING = DeploymentState.SUCCEEDED
FINAL = (
    DeploymentState.SUCCEEDED,
    DeploymentState.ROLLED_BACK,
    DeploymentState.FAILED,
    DeploymentState.SUPERSEDED,
    DeploymentState.UNDEPLOYED,
)


class Phase(models.TextChoices):
    """Where a progressing rollout is within its current step (the engine's bookmark)."""

    APPLY = "apply", "Applying the step's traffic"
    READY = "ready", "Waiting for readiness"
    ANALYSE = "analyse", "Analysing health"
    PAUSE = "pause", "Timed pause"
    PROMOTE = "promote", "Promoting to all traffic"
    DONE = "done", "Done"


class StepOutcome(models.TextChoices):
    RUNNING = "running", "Running"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    HALTED = "halted", "Halted"
    REFUSED = "refused", "Refused"
    UNJUDGED = "unjudged", "Too little traffic to judge"

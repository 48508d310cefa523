"""Writes for deployments: targets (admins), what people do to a rollout, and what its workers record.

Modules: ``targets`` (create, update, delete; credentials sealed), ``starting`` (start), ``deployments``
(halt, resume, roll back, undeploy), ``rollouts`` (the engine's records under the rollout's fence),
``scheduling`` (when to look again, and the periodic queueing of due rollouts), ``reconcile`` (what the
reconciler found); ``common`` holds what they share.

States::

    pending ──applied──► progressing ──every step passed, promoted──► succeeded ──replaced──► superseded
       │                   │  ▲   │                                      │  └── undeploy ──► undeployed
       │                   │  │   └─ step passed, pause: null ─► paused ─┤
       │                   │  └──────────── resume ◄──────────── halted ◄┘ (halt, from pending/progressing/paused)
       │                   └─ not ready / threshold crossed / rollback ──► rolling_back ──► rolled_back
       └── governance refused / target refused ──► failed
"""

from .common import ADVANCE_JOB, SYSTEM, ActiveDeploymentExists, GovernanceRefused, service_name
from .deployments import deployment_halt, deployment_resume, deployment_rollback, deployment_undeploy
from .reconcile import target_reconciled
from .rollouts import (
    Taken,
    rollout_applied,
    rollout_converged,
    rollout_failed,
    rollout_passed,
    rollout_ready,
    rollout_refused,
    rollout_rollback,
    rollout_take,
    rollout_unjudged,
)
from .scheduling import deployments_enqueue_due, rollout_wait
from .starting import deployment_start
from .targets import credentials_of, target_create, target_delete, target_update

__all__ = [
    "ADVANCE_JOB",
    "SYSTEM",
    "ActiveDeploymentExists",
    "GovernanceRefused",
    "Taken",
    "credentials_of",
    "deployment_halt",
    "deployment_resume",
    "deployment_rollback",
    "deployment_start",
    "deployment_undeploy",
    "deployments_enqueue_due",
    "rollout_applied",
    "rollout_converged",
    "rollout_failed",
    "rollout_passed",
    "rollout_ready",
    "rollout_refused",
    "rollout_rollback",
    "rollout_take",
    "rollout_unjudged",
    "rollout_wait",
    "service_name",
    "target_create",
    "target_delete",
    "target_reconciled",
    "target_update",
]

"""Reads for deployments, filtered by rbac: targets (admins), deployments (whoever may see the release)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch, QuerySet

from apps.accounts.models import ServiceAccount, User
from apps.audit.choices import Outcome
from apps.audit.models import AuditEvent
from apps.core.errors import NotFound
from apps.core.principals import Principal, PrincipalKind
from apps.rbac import services as rbac
from apps.registry import selectors as registry
from apps.releases.choices import ReleaseStatus

from .choices import ACTIVE, SERVING
from .models import Deployment, DeploymentStep, DeploymentTarget


def target_list(*, actor: Principal) -> QuerySet[DeploymentTarget]:
    """Every target (global admins: ``deployments.manage_targets``)."""
    rbac.require(actor, "deployments.manage_targets")
    return DeploymentTarget.objects.select_related("environment").order_by("name")


def target_get(*, actor: Principal, target_id: Any) -> DeploymentTarget:
    rbac.require(actor, "deployments.manage_targets")
    target = DeploymentTarget.objects.select_related("environment").filter(public_id=target_id).first()
    if target is None:
        raise NotFound("No such deployment target.")
    return target


def _deployments() -> QuerySet[Deployment]:
    return Deployment.objects.select_related(
        "release", "version", "model", "environment", "target", "replaces", "replaces__version"
    )


def deployment_list(
    *,
    actor: Principal,
    model: str = "",
    target: str = "",
    state: str = "",
    environment: str = "",
) -> QuerySet[Deployment]:
    """Deployments the actor may see (``deployments.view``), newest first, filtered as asked."""
    qs = rbac.restrict(actor, _deployments(), "deployments.view")
    if model:
        qs = qs.filter(model__name=model)
    if target:
        qs = qs.filter(target__name=target)
    if state:
        qs = qs.filter(state=state)
    if environment:
        qs = qs.filter(environment__name=environment)
    return qs.order_by("-created_at", "-id")


def deployment_get(*, actor: Principal, deployment_id: Any) -> Deployment:
    """One deployment with its step timeline; 404 when missing or out of the actor's scope."""
    qs = _deployments().prefetch_related(Prefetch("timeline", queryset=DeploymentStep.objects.order_by("id")))
    return rbac.get_visible(actor, qs, "deployments.view", public_id=deployment_id)


def model_deployments(*, actor: Principal, name: str) -> QuerySet[Deployment]:
    """The deployments of a model the actor may see (404 for a model they may not)."""
    model = registry.model_get(actor=actor, name=name)
    return deployment_list(actor=actor).filter(model=model)


def can_deploy(*, actor: Principal, release: Any) -> bool:
    """Whether the release page offers ``actor`` its Deploy button: the release is approved and they may deploy it."""
    return release.status == ReleaseStatus.APPROVED and rbac.allows(actor, "deployments.deploy", release)


def deploy_targets(*, actor: Principal, release: Any) -> list[DeploymentTarget]:
    """The enabled targets of ``release``'s environment, for the Deploy form of someone who may deploy it
    (``deployments.deploy``; anyone else is refused, audited as a refused ``deployment.started``)."""
    rbac.require(actor, "deployments.deploy", release, audit_action="deployment.started")
    targets = DeploymentTarget.objects.filter(environment_id=release.environment_id, enabled=True)
    return list(targets.order_by("name"))


def target_names() -> list[str]:
    return sorted(DeploymentTarget.objects.values_list("name", flat=True))


# ---------------------------------------------------------------------------------------------
# Running where (the inventory, the model page and the version page)


@dataclass
class RunningVersion:
    """One version of a model running on one target: its share of live traffic and since when.

    ``deployment`` is the deployment that put it there (serving, or a rollout under way); ``share`` is its
    percent of live traffic (a shadow copy gets a mirror of the traffic and no share); ``drift`` is True
    when the reconciler's last look at the target found something wrong with the model's service there.
    """

    deployment: Deployment
    share: int
    shadow: bool = False
    rolling_out: bool = False
    drift: bool = False

    @property
    def environment(self):
        return self.deployment.environment

    @property
    def target(self) -> DeploymentTarget:
        return self.deployment.target

    @property
    def version(self):
        return self.deployment.version

    @property
    def since(self):
        """When it began to run there: a serving deployment's finish, a rollout's start."""
        d = self.deployment
        return (d.finished_at or d.created_at) if d.state == SERVING else d.created_at


def _drifting(target: DeploymentTarget, service: str) -> bool:
    return any(f.get("service") == service for f in target.drift or [])


def _running_on(serving: Deployment | None, active: Deployment | None) -> list[RunningVersion]:
    """What runs of one model on one target, from its serving deployment and its rollout under way."""
    rows = []
    split = (active.traffic or {}) if active is not None else {}
    if serving is not None:
        share = int(split.get("stable") or 0) if split else 100
        rows.append(RunningVersion(deployment=serving, share=share))
    if active is not None and (split or serving is None):
        shadow = bool(split.get("shadow"))
        rows.append(
            RunningVersion(
                deployment=active, share=0 if shadow else int(split.get("new") or 0), shadow=shadow, rolling_out=True
            )
        )
    for row in rows:
        row.drift = _drifting(row.target, row.deployment.service)
    return rows


def running_where(*, actor: Principal, model_ids: list[int]) -> dict[int, list[RunningVersion]]:
    """For each model, what runs where: per environment (production first) and target, each running version
    with its share of traffic, since when, and whether the reconciler found drift there.

    A pure read in one query (besides rbac's look-up of the actor's grants) whatever the number of models,
    targets and deployments: the serving and active deployments of the models that the actor may see
    (``deployments.view``), with their version, target (and its drift) and environment joined.
    """
    if not model_ids:
        return {}
    deployments = rbac.restrict(
        actor,
        Deployment.objects.filter(model_id__in=model_ids, state__in=[SERVING, *ACTIVE]).select_related(
            "version", "target", "environment", "model"
        ),
        "deployments.view",
    ).order_by("id")
    pairs: dict[tuple[int, int], list[Deployment | None]] = {}
    for d in deployments:
        pair = pairs.setdefault((d.model_id, d.target_id), [None, None])
        pair[0 if d.state == SERVING else 1] = d
    found: dict[int, list[RunningVersion]] = {model_id: [] for model_id in model_ids}
    for (model_id, _), (serving, active) in pairs.items():
        found[model_id] += _running_on(serving, active)
    for rows in found.values():
        rows.sort(key=lambda r: (not r.environment.production, r.environment.name, r.target.name, -r.share))
    return found


def deployment_page_list(**filters: Any) -> QuerySet[Deployment]:
    """``deployment_list`` with who started each deployment joined, for the dashboard's table."""
    return deployment_list(**filters).select_related(
        "started_by", "started_by_service_account", "started_by_service_account__owner"
    )


def deployment_page_get(*, actor: Principal, deployment_id: Any) -> Deployment:
    """``deployment_get`` with who started it joined and ``stopped_by`` (the person who halted, rolled back or
    undeployed it, named by username on the row) looked up, for the deployment's page."""
    deployment = rbac.get_visible(
        actor,
        _deployments()
        .select_related("started_by", "started_by_service_account", "started_by_service_account__owner")
        .prefetch_related(Prefetch("timeline", queryset=DeploymentStep.objects.order_by("id"))),
        "deployments.view",
        public_id=deployment_id,
    )
    deployment.stopped_by = _stopped_by(deployment) if deployment.stopped_by_name else None
    return deployment


_STOPS = ("deployment.halted", "deployment.rollback_started", "deployment.undeployed")


def _stopped_by(deployment: Deployment) -> User | ServiceAccount | None:
    """The person (or service account) whose halt, rollback or undeploy the row names, from the audit event that
    recorded it (the row keeps only a name, which a person and a service account may share); None for the
    system (an automatic rollback)."""
    event = (
        AuditEvent.objects.filter(
            target_type="deployment", target_id=str(deployment.public_id), action__in=_STOPS, outcome=Outcome.SUCCESS
        )
        .order_by("-id")
        .values("actor_type", "actor_id")
        .first()
    )
    if event is None or not str(event["actor_id"]).isdigit():
        return None
    if event["actor_type"] == PrincipalKind.USER:
        return User.objects.filter(pk=event["actor_id"]).first()
    if event["actor_type"] == PrincipalKind.SERVICE_ACCOUNT:
        return ServiceAccount.objects.select_related("owner").filter(pk=event["actor_id"]).first()
    return None


def deployment_drift(deployment: Deployment) -> list[dict]:
    """What the reconciler last found wrong with this deployment's service on its target (its own findings
    only: a target's other findings concern other models)."""
    return [f for f in deployment.target.drift or [] if f.get("service") == deployment.service]

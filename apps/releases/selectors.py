"""Reads for releases, filtered by rbac, and the gate CI asks."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from apps.core.errors import NotFound, ValidationFailed
from apps.core.principals import Principal, PrincipalKind
from apps.policies.disclosure import decision_for_reader
from apps.rbac import services as rbac
from apps.registry import selectors as registry
from apps.registry.models import ModelVersion

from . import gates, services
from .choices import LIVE, OPEN, ApprovalDecision, ReleaseStatus, ReviewStatus
from .models import Approval, Environment, PostReleaseReview, ReleaseRequest


def _releases() -> QuerySet[ReleaseRequest]:
    return ReleaseRequest.objects.select_related(
        "version",
        "version__created_by",
        "model",
        "owner_team",
        "environment",
        "requested_by",
        "requested_by_service_account",
        "review",
    ).prefetch_related(
        Prefetch("approvals", queryset=Approval.objects.select_related("approver", "approver_service_account"))
    )


def environment_list() -> QuerySet[Environment]:
    """Every environment (their names are not secret: anyone signed in may list them)."""
    return Environment.objects.order_by("-production", "name")


def environment_get(*, name: str) -> Environment:
    env = Environment.objects.filter(name=name).first()
    if env is None:
        raise NotFound(f"No environment named {name!r}.")
    return env


def release_list(
    *, actor: Principal, status: str = "", environment: str = "", model: str = "", version: ModelVersion | None = None
) -> QuerySet[ReleaseRequest]:
    """Release requests the actor may see, newest first, filtered as asked."""
    qs = rbac.restrict(actor, _releases(), "releases.view")
    if status:
        qs = qs.filter(status=status)
    if environment:
        qs = qs.filter(environment__name=environment)
    if model:
        qs = qs.filter(model__name=model)
    if version is not None:
        qs = qs.filter(version=version)
    return qs.order_by("-created_at", "-id")


def release_get(*, actor: Principal, release_id: Any) -> ReleaseRequest:
    """One request by public id; 404 when missing or out of the actor's scope."""
    return rbac.get_visible(actor, _releases(), "releases.view", public_id=release_id)


@dataclass
class QueueItem:
    release: ReleaseRequest
    waiting_since: Any
    kind: str = "approval"  # or "review" (a break-glass release's post-release review)
    review: PostReleaseReview | None = None
    open_roles: list[str] = field(default_factory=list)


def approval_queue(*, actor: Principal) -> list[QueueItem]:
    """What waits for the actor: requests they may approve and have not decided on (never their own or
    their versions'), oldest first; and, for compliance officers, open post-release reviews."""
    me = actor.person_key
    items: list[QueueItem] = []
    pending = release_list(actor=actor, status=ReleaseStatus.PENDING_APPROVAL).order_by("created_at", "id")
    for release in pending:
        if not rbac.can_approve(actor, release):
            continue
        authors = {release.requested_by_id, release.version.created_by_id}
        if me[0] == PrincipalKind.USER and me[1] in authors:
            continue
        live = [a for a in release.approvals.all() if not a.void]
        if any(me == (PrincipalKind.USER, a.approver_id) for a in live):
            continue
        matching = services.approval_matching(release, live)
        roles = rbac.roles_with(actor, "releases.approve", release)
        from .matching import fills

        open_roles = [s.role for s in matching.slots if s not in matching.assigned]
        if not any(fills(role, roles) for role in open_roles):
            continue
        items.append(QueueItem(release=release, waiting_since=release.evaluated_at, open_roles=open_roles))
    reviews = rbac.restrict(
        actor,
        PostReleaseReview.objects.filter(status=ReviewStatus.OPEN).select_related(
            "release", "release__model", "release__version", "release__environment", "release__requested_by"
        ),
        "releases.review",
    )
    for review in reviews:
        if me == (PrincipalKind.USER, review.release.requested_by_id):
            continue
        items.append(QueueItem(release=review.release, waiting_since=review.created_at, kind="review", review=review))
    return items


# ---------------------------------------------------------------------------------------------
# The gate


def _pick(releases: list[ReleaseRequest]) -> ReleaseRequest | None:
    """The request the gate judges: the newest approved one, else the open one, else the newest of any state."""
    releases = sorted(releases, key=lambda r: (r.created_at, r.pk), reverse=True)
    for statuses in ((ReleaseStatus.APPROVED,), OPEN):
        for release in releases:
            if release.status in statuses:
                return release
    return releases[0] if releases else None


def _current_release(version: ModelVersion, env: Environment) -> ReleaseRequest | None:
    return _pick(list(_releases().filter(version=version, environment=env)))


def approvals_summary(release: ReleaseRequest | None, decision: dict) -> dict:
    """{"required": [{role, count, reason, filled}], "received": [...]} for the gate and the pages."""
    required = services.required_approvals(decision)
    reasons = {r["role"]: r.get("reason", "") for r in decision.get("required_approvals", [])}
    received, matching = [], None
    if release is not None:
        approvals = list(release.approvals.all())
        matching = services.approval_matching(release, approvals)
        for a in approvals:
            slot = matching.slot_of(a.approver_id) if not a.void and a.decision == ApprovalDecision.APPROVE else None
            received.append(
                {
                    "person": a.approver.username,
                    "service_account": a.approver_service_account.name if a.approver_service_account_id else None,
                    "roles": a.roles,
                    "decision": a.decision,
                    "comment": a.comment,
                    "at": a.created_at.isoformat(),
                    "void": a.void,
                    "fills": slot.role if slot else None,
                    "revalidate_at": a.revalidate_at.isoformat() if a.revalidate_at else None,
                }
            )
    filled: dict[str, int] = {}
    if matching is not None:
        for slot in matching.assigned:
            filled[slot.role] = filled.get(slot.role, 0) + 1
    return {
        "required": [
            {"role": role, "count": count, "reason": reasons.get(role, ""), "filled": filled.get(role, 0)}
            for role, count in required
        ],
        "received": received,
    }


@dataclass
class Gate:
    allowed: bool
    status: str
    environment: Environment
    version: ModelVersion
    decision: dict
    release: ReleaseRequest | None
    approvals: dict
    revalidate_at: Any = None

    @property
    def violations(self) -> list[dict]:
        return list(self.decision.get("violations", []))

    @property
    def missing_evidence(self) -> list[dict]:
        return list(self.decision.get("missing_evidence", []))


def gate_for(
    *,
    version: ModelVersion,
    environment: Environment,
    refresh: bool = True,
    release: Any = ...,
    decision: dict | None = None,
) -> Gate:
    """May ``version`` go to ``environment`` now? (The caller has checked the actor may see the version.)

    Allowed only when the policies pass on the current evidence (or the release is a
    break-glass one) AND an approved release exists whose binding digest is the current one,
    that has not expired, and whose revalidation date (production) has not passed. The
    request is re-evaluated (and expired) first, lazily, in a transaction of its own (with
    ``refresh=False`` nothing is written: a changed digest still closes the gate).
    ``release``, when given, is the request already picked (with its approvals prefetched), and
    ``decision`` (with ``refresh=False``) the decision already made for it (``version_gates``).
    """
    if release is ...:
        release = _current_release(version, environment)
    if refresh:
        decision = None
        if release is not None and release.status in LIVE:
            decision = services.release_refresh(release_id=release.public_id, reason="the gate was asked")
            release = _current_release(version, environment)
            if release is None or release.status not in LIVE:
                decision = None  # the request expired or closed meanwhile: judge the version alone
    if decision is None:
        release_input = gates.release_input_for(release) if release is not None else None
        decision = gates.decide(version=version, environment=environment, release=release_input).as_dict()
    approvals = approvals_summary(release, decision)
    now = timezone.now()
    blocked = bool(services.blocking(decision))
    status, allowed = "allowed", False
    if release is not None and release.emergency and release.status == ReleaseStatus.APPROVED:
        status, allowed = "emergency", True
    elif blocked:
        status = "blocked"
    elif decision.get("missing_evidence"):
        status = "missing_evidence"
    elif release is None or release.status not in LIVE:
        status = "release_required" if release is None else release.status
    elif release.status != ReleaseStatus.APPROVED:
        status = release.status
    elif release.binding_digest != decision["binding_digest"]:
        status = "pending_approval"  # re-evaluated above; a change between the two reads lands here
    elif release.revalidate_at is not None and release.revalidate_at <= now:
        status = "revalidation_due"
    else:
        allowed = True
    if allowed and release.revalidate_at is not None and release.revalidate_at <= now:
        status, allowed = "revalidation_due", False
    return Gate(
        allowed=allowed,
        status=status,
        environment=environment,
        version=version,
        decision=decision,
        release=release,
        approvals=approvals,
        revalidate_at=release.revalidate_at if release is not None else None,
    )


def gate_decision(*, actor: Principal, model_name: str, number: int, environment: str) -> Gate:
    """The gate CI asks: the version must be visible to the actor (404 otherwise)."""
    version = registry.version_get(actor=actor, model_name=model_name, number=number)
    if not environment:
        raise ValidationFailed("Name the environment: ?environment=production", errors={"environment": ["required"]})
    env = Environment.objects.filter(name=environment).first()
    if env is None:
        raise ValidationFailed(f"Unknown environment {environment!r}.", errors={"environment": ["unknown"]})
    return gate_for(version=version, environment=env)


def version_gates(*, actor: Principal, version: ModelVersion) -> list[Gate]:
    """The gate of a version in every environment (the version page's block): its releases are read
    in one go and nothing is written (the page shows a changed digest as a closed gate)."""
    releases = list(_releases().filter(version=version))
    picked = [(env, _pick([r for r in releases if r.environment_id == env.pk])) for env in environment_list()]
    cases = [(env, gates.release_input_for(r) if r is not None else None) for env, r in picked]
    decisions = gates.decide_each(version=version, cases=cases)
    judged = [
        gate_for(version=version, environment=env, refresh=False, release=release, decision=decision.as_dict())
        for (env, release), decision in zip(picked, decisions, strict=True)
    ]
    # shown to the actor: datasets of the version's lineage outside their scope are hidden in the messages
    lineage = [*version.training_datasets.all(), version.evaluation_dataset if version.evaluation_dataset_id else None]
    return [
        replace(g, decision=decision_for_reader(actor=actor, decision=g.decision, datasets=lineage)) for g in judged
    ]


def models_revalidation_due(*, model_ids: list[int]) -> set[int]:
    """Models with an approved production release past its revalidation date (the inventory's flag)."""
    return set(
        ReleaseRequest.objects.filter(
            model_id__in=model_ids, status=ReleaseStatus.APPROVED, revalidate_at__lte=timezone.now()
        ).values_list("model_id", flat=True)
    )

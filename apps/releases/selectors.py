"""Reads for releases, filtered by rbac, and the gate CI asks."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from django.db.models import Prefetch, QuerySet, prefetch_related_objects
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.accounts.models import User
from apps.core import fastpath
from apps.core.errors import NotFound, ValidationFailed
from apps.core.principals import Principal, PrincipalKind
from apps.policies.disclosure import decision_for_reader
from apps.rbac import services as rbac
from apps.registry import selectors as registry
from apps.registry.models import ModelVersion

from . import duties, previews, services, waiting
from .choices import LIVE, OPEN, ApprovalDecision, ReleaseStatus, ReviewStatus
from .environments import environment_names, unknown_environment
from .matching import fills, match
from .models import Approval, Environment, GateDecision, PostReleaseReview, ReleaseRequest


def approvals_named(path: str = "approvals") -> Prefetch:
    """A release's approvals (at ``path``) with the people and service accounts who gave them, read in one go:
    what the gate's approvals summary names."""
    return Prefetch(path, queryset=Approval.objects.select_related("approver", "approver_service_account"))


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
    ).prefetch_related(approvals_named())


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


_RELEASES_OF = fastpath.RowsByFields(ReleaseRequest, "version", "environment", order_by="-created_at -id")


def _current_release(version: ModelVersion, env: Environment) -> ReleaseRequest | None:
    """The request the gate judges, with its approvals: the version and environment are the caller's
    (no joins to load them again; the gate reads nothing else of the request's relations)."""
    releases = _RELEASES_OF.all(version.pk, env.pk)  # a prepared read: the gate asks on every CI run
    if releases:
        approvals = Approval.objects.select_related("approver", "approver_service_account")
        prefetch_related_objects(releases, Prefetch("approvals", queryset=approvals))
    for release in releases:
        release.version, release.environment, release.model = version, env, version.model
    picked = _pick(releases)
    _load_people(version, picked)
    return picked


def _load_people(version: ModelVersion, release: ReleaseRequest | None) -> None:
    """The version's author and the request's requester, whom the gate's answer names: in one query."""
    author = version.created_by_id if not ModelVersion.created_by.is_cached(version) else None
    requester = release.requested_by_id if release is not None else None
    people = User.objects.in_bulk({author, requester} - {None}) if author or requester else {}
    if author is not None:
        version.created_by = people.get(author)
    if requester is not None:
        release.requested_by = people.get(requester)


def counted_approvals(approvals, binding_digest: str | None) -> list[tuple[int, list[str]]]:
    """(approver, roles) of the approvals that may fill required slots: approving, not voided, and given
    on the decision whose digest is ``binding_digest`` (approvals on another basis never count)."""
    return [
        (a.approver_id, a.roles)
        for a in approvals
        if not a.void and a.decision == ApprovalDecision.APPROVE and a.binding_digest == binding_digest
    ]


def approvals_summary(release: ReleaseRequest | None, decision: dict) -> dict:
    """{"required": [{role, count, reason, filled}], "received": [...]} for the gate and the pages."""
    required = services.required_approvals(decision)
    reasons = {r["role"]: r.get("reason", "") for r in decision.get("required_approvals", [])}
    received, matching = [], None
    if release is not None:
        approvals = list(release.approvals.all())
        # only approvals given on this decision's basis fill its slots (not yet voided ones on another do not)
        counted = counted_approvals(approvals, decision.get("binding_digest"))
        matching = match(required, counted)
        for a in approvals:
            slot = matching.slot_of(a.approver_id) if (a.approver_id, a.roles) in counted else None
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


RULE_ORDER = {"fail": 0, "pending": 1, "warning": 2, "pass": 3, "not_applicable": 4}
FOUR_EYES_RULE = {
    "rule": "releases.four_eyes",
    "pack": "releases",
    "clause": "Assay four eyes",
    "title": "Someone other than the requester and the version's author approves the release",
}


def release_rules(decision: dict, approvals: dict) -> list[dict]:
    """The decision's rules as a release reads them: failing rules first, and a rule that asks for
    approvals passes only once its slots are filled (``pending`` until then, never ``pass``).

    ``approvals`` is ``approvals_summary(...)``. When no rule asks for an approval, the four-eyes
    floor every release needs (``services.APPROVAL_FLOOR``) is shown as a rule of its own.
    """
    filled = {r["role"]: r["filled"] for r in approvals["required"]}
    needed = {r["role"]: r["count"] for r in approvals["required"]}
    # Decisions stored before rules carried their approvals: the merged reasons name their rule.
    asked: dict[str, list[dict]] = {}
    for r in decision.get("required_approvals", []):
        asked.setdefault(str(r.get("reason") or "").split(":", 1)[0].strip(), []).append(r)
    rows = []
    for rule in decision.get("rules", []):
        row = dict(rule)
        asks = row.get("approvals") or asked.get(row["rule"], [])
        if asks and row["result"] == "pass":
            short = [a for a in asks if filled.get(a["role"], 0) < min(int(a["count"]), needed.get(a["role"], 0))]
            if short:
                row["result"] = "pending"
                row["message"] = "Waiting for " + ", ".join(
                    f"{a['role'].replace('_', ' ')} approval ({filled.get(a['role'], 0)} of {a['count']})"
                    for a in short
                )
        rows.append(row)
    if not decision.get("required_approvals"):
        role, count = services.APPROVAL_FLOOR[0]
        done = filled.get(role, 0) >= count
        rows.append(
            {
                **FOUR_EYES_RULE,
                "result": "pass" if done else "pending",
                "message": "" if done else f"Waiting for {role} approval ({filled.get(role, 0)} of {count})",
                "approvals": [{"role": role, "count": count}],
            }
        )
    return sorted(rows, key=lambda r: RULE_ORDER.get(r["result"], 5))


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
    evaluated_at: Any = None
    reasons: list[str] = field(default_factory=list)
    # Who may request and approve, for the caller of the gate API (``previews``); None elsewhere.
    request_preview: dict | None = None
    approval_preview: dict | None = None
    # How a ``?wait=`` ended (``waiting``: not_asked, final, changed, timeout) and how long it waited.
    wait_outcome: str = "not_asked"
    waited: float = 0.0

    @property
    def violations(self) -> list[dict]:
        return list(self.decision.get("violations", []))

    @property
    def missing_evidence(self) -> list[dict]:
        return list(self.decision.get("missing_evidence", []))


def _decided_at(decision: dict, default: Any) -> Any:
    stamp = decision.get("evaluated_at")
    return parse_datetime(stamp) if isinstance(stamp, str) else default


# The decision a gate shows while no stored decision exists yet (``status`` ``evaluating``).
EVALUATING: dict = {"binding_digest": None, "violations": [], "missing_evidence": [], "rules": []}


def stored_decisions(*, version: ModelVersion, environments: list[Environment]) -> dict[int, GateDecision]:
    """The stored gate decisions of ``version`` by environment id (one indexed query)."""
    rows = GateDecision.objects.filter(version=version, environment__in=[e.pk for e in environments])
    return {row.environment_id: row for row in rows}


def environment_decisions(*, environment: Environment, version_ids: list[int]) -> dict[int, dict]:
    """The stored gate decisions of many versions in one environment, by version id (one query; a version
    with none is absent): what ``gate_for(decision=...)`` takes, for a caller judging many versions at once."""
    rows = GateDecision.objects.filter(environment=environment, version__in=version_ids)
    return {row.version_id: row.decision for row in rows.only("version_id", "decision")}


# The gate's single-row reads, asked on every CI run: prepared once per connection (``fastpath``).
_ENVIRONMENT_BY_NAME = fastpath.RowByUniqueField(Environment, "name")
_DECISION_OF = fastpath.RowByUniqueField(GateDecision, "version", "environment")


def gate_for(
    *,
    version: ModelVersion,
    environment: Environment,
    release: Any = ...,
    decision: dict | None = None,
    actor: Principal | None = None,
) -> Gate:
    """May ``version`` go to ``environment`` now? (The caller has checked the actor may see the version.)

    A pure read of stored state: no policy is evaluated, nothing is re-judged, expired or stored
    here. The decision is the stored one (``GateDecision``, made by the jobs that react to every
    change of facts, evidence, policies, environments and requests: ``apps.releases.gate_decisions``);
    while none exists yet the gate answers ``evaluating`` (not allowed). Allowed only when the
    decision passes (or the release is a break-glass one) AND an approved request exists whose
    stored binding digest is that decision's (approvals given on another basis never open the
    gate, even before the re-evaluation job has reset them) and whose revalidation date
    (production) has not passed. An open request past ``expires_at`` reads as ``expired``.
    ``release``, when given, is the request already picked (approvals prefetched), ``decision``
    the stored decision read for it (``version_gates``; ``{}`` when there is none), and ``actor``
    who asks (their segregation of duties is spelled out in ``reasons``).
    """
    if release is ...:
        release = _current_release(version, environment)
    now = timezone.now()
    evaluated_at = None
    if decision is None:
        row = _DECISION_OF.get(version.pk, environment.pk)
        decision = row.decision if row is not None else {}
    evaluating = not decision
    if evaluating:
        decision = EVALUATING
    else:
        evaluated_at = _decided_at(decision, None)
    live = release is not None and release.status in LIVE
    state = release.status if release is not None else None
    if live and state in OPEN and release.expires_at is not None and release.expires_at <= now:
        state, live = ReleaseStatus.EXPIRED, False  # the periodic task closes it; the gate reads it closed now
    current = live and release.binding_digest == decision["binding_digest"]
    if current and all(release.decision.get(p) == decision.get(p) for p in services.DECISION_PARTS):
        decision = release.decision  # the request was judged on this very decision: answer from it
        evaluated_at = _decided_at(decision, release.evaluated_at)
    approvals = approvals_summary(release, decision)
    blocked = bool(services.blocking(decision))
    status, allowed = "allowed", False
    if release is not None and release.emergency and release.status == ReleaseStatus.APPROVED:
        status, allowed = "emergency", True
    elif evaluating:
        status = "evaluating"
    elif blocked:
        status = "blocked"
    elif decision.get("missing_evidence"):
        status = "missing_evidence"
    elif not live:
        status = "release_required" if release is None else state
    elif not current:
        status = "pending_approval"  # approved on another basis: the re-evaluation voids those approvals
    elif state != ReleaseStatus.APPROVED:
        status = state
    elif release.revalidate_at is not None and release.revalidate_at <= now:
        status = "revalidation_due"
    else:
        allowed = True
    gate = Gate(
        allowed=allowed,
        status=status,
        environment=environment,
        version=version,
        decision=decision,
        release=release,
        approvals=approvals,
        revalidate_at=release.revalidate_at if release is not None else None,
        evaluated_at=evaluated_at,
    )
    gate.reasons = gate_reasons(gate, actor=actor, current=current or not live)
    if status == "evaluating":
        gate.reasons = [
            f"The policy decision for {environment.name} is being computed (the version or what it is judged on "
            "changed moments ago): ask again, or wait for it with ?wait=<seconds>."
        ]
    return gate


def _is_author(actor: Principal, version: ModelVersion) -> bool:
    """The actor registered the version: its author, the service account that did, or that account's owner."""
    if actor.kind == PrincipalKind.SERVICE_ACCOUNT and actor.id == version.created_by_service_account_id:
        return True
    return duties.decider_refusal(actor.person_key, requested_by_id=None, version=version) == duties.AUTHORED_IT


def _slots(approvals: dict) -> str:
    return ", ".join(f"{r['role'].replace('_', ' ')} {r['filled']} of {r['count']}" for r in approvals["required"])


def gate_reasons(gate: Gate, *, actor: Principal | None = None, current: bool = True) -> list[str]:
    """Why the gate answers as it does, in sentences a pipeline log can show; for the version's
    author (or its CI service account) asking a gate that still needs approvals, who may request
    and approve instead (segregation of duties)."""
    env, release, decision = gate.environment.name, gate.release, gate.decision
    reasons: list[str] = []
    if gate.status == "emergency":
        reasons.append(f"Released to {env} by break-glass; its post-release review must be closed.")
    elif gate.status == "allowed":
        reasons.append(f"Approved for {env} ({_slots(gate.approvals)}); the policies pass on the current evidence.")
    elif gate.status == "blocked":
        reasons += [f"Blocked: {v['message']}" for v in services.blocking(decision)]
    elif gate.status == "missing_evidence":
        reasons += [
            f"Missing evidence: {m.get('kind')}: {m.get('reason')}" for m in decision.get("missing_evidence", [])
        ]
    elif gate.status == "release_required":
        reasons.append(f"No release request for {env}: request one (POST /api/v1/releases/ or the version page).")
    elif gate.status == "revalidation_due":
        reasons.append(f"The approval for {env} passed its revalidation date: request the release again.")
    elif gate.status in ("rejected", "expired", "cancelled"):
        reasons.append(f"The last request for {env} is {gate.status}: request the release again.")
    elif not current:
        reasons.append(
            "The decision changed since the request was judged (model facts, evidence or policies): its approvals no "
            "longer count and it is re-judged; it then needs " + _slots(gate.approvals) + "."
        )
    elif gate.status == "pending_evidence":
        reasons.append("The request waits for evidence.")
    else:
        reasons.append(f"Waiting for approvals: {_slots(gate.approvals)}.")
    needs_people = not gate.allowed and gate.status not in ("blocked",)
    if actor is not None and needs_people and _is_author(actor, gate.version):
        version = gate.version
        owner = version.created_by_service_account.owner if version.created_by_service_account_id else None
        who = "its author" + (
            f" and the owner of service account {version.created_by_service_account.name} ({owner.username})"
            if owner is not None
            else ""
        )
        roles = ", ".join(
            f"{r['count']} {r['role'].replace('_', ' ')}"
            + (" (or a compliance officer)" if r["role"] == "reviewer" else "")
            for r in gate.approvals["required"]
        )
        reasons.append(
            f"You registered this version: {who} cannot approve its release (four eyes). Approvals come from "
            f"other people holding the approving roles on it: {roles}. An auditor never approves."
        )
        if release is None or gate.status in (
            "release_required",
            "rejected",
            "expired",
            "cancelled",
            "revalidation_due",
        ):
            reasons.append(
                "A release is requested by someone with releases.request on the model (a contributor of team "
                f"{version.model.owner_team.name}; an API token needs the releases:write scope). Where the SOX pack "
                "applies, the requester must not be the version's author: another team member requests it."
            )
    return reasons


def gate_decision(*, actor: Principal, model_name: str, number: int, environment: str, wait: float = 0.0) -> Gate:
    """The gate CI asks: the version must be visible to the actor (404 otherwise). Writes nothing.

    Besides the decision, it previews who may request the release and who may approve it, and
    whether the caller may (``previews``): the rules the release services enforce, read ahead.
    With ``wait`` (seconds, already bounded: ``waiting.wait_seconds``) it holds the answer until
    it is final for the pipeline or changes, at most that long (``waiting.gate_wait``).
    """
    version = registry.version_get_for_gate(actor=actor, model_name=model_name, number=number)
    if not environment:
        known = ", ".join(environment_names()) or "none defined"
        raise ValidationFailed(
            f"Name the environment: ?environment=<name>; known environments: {known}.",
            errors={"environment": ["required"]},
            extra={"valid_values": {"environment": environment_names()}},
        )
    env = _ENVIRONMENT_BY_NAME.get(environment)
    if env is None:
        raise unknown_environment(environment)
    gate = _gate_for_caller(version=version, environment=env, actor=actor)

    def judge() -> Gate:
        again = registry.version_get_for_gate(actor=actor, model_name=model_name, number=number)
        return _gate_for_caller(version=again, environment=env, actor=actor)

    answer, outcome, waited = waiting.gate_wait(gate, judge=judge, seconds=wait)
    answer.wait_outcome, answer.waited = outcome, round(waited, 3)
    return answer


def _gate_for_caller(*, version: ModelVersion, environment: Environment, actor: Principal) -> Gate:
    gate = gate_for(version=version, environment=environment, actor=actor)
    gate.request_preview = previews.request_preview(actor=actor, gate=gate)
    gate.approval_preview = previews.approval_preview(actor=actor, gate=gate)
    needs_request = gate.release is None or gate.release.status not in LIVE
    if needs_request and not gate.request_preview["caller_may"] and gate.status != "blocked":
        gate.reasons.append(gate.request_preview["reason"])
    return gate


def version_gates(*, actor: Principal, version: ModelVersion) -> list[Gate]:
    """The gate of a version in every environment (the version page's block): its releases and
    stored decisions are read in one go each; nothing is evaluated or written."""
    releases = list(_releases().filter(version=version))
    envs = list(environment_list())
    stored = stored_decisions(version=version, environments=envs)
    judged = [
        gate_for(
            version=version,
            environment=env,
            release=_pick([r for r in releases if r.environment_id == env.pk]),
            decision=stored[env.pk].decision if env.pk in stored else {},
            actor=actor,
        )
        for env in envs
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


# ---------------------------------------------------------------------------------------------
# What is approved where (the inventory and the model page)


@dataclass
class EnvironmentRelease:
    """One model in one environment: the newest approved release and the newest open request, if any."""

    environment: Environment
    approved: ReleaseRequest | None = None
    pending: ReleaseRequest | None = None

    @property
    def approvers(self) -> list:
        """The people whose approvals, given on the approved release's current decision, count."""
        if self.approved is None:
            return []
        return [a.approver for a in self.approved.approvals.all() if a.binding_digest == self.approved.binding_digest]

    @property
    def revalidation_due(self) -> bool:
        release = self.approved
        return release is not None and release.revalidate_at is not None and release.revalidate_at <= timezone.now()

    @property
    def state(self) -> str:
        """``revalidation_due``, ``emergency``, a release status, or ``not_released``: the row's headline."""
        if self.approved is not None:
            if self.revalidation_due:
                return "revalidation_due"
            return "emergency" if self.approved.emergency else ReleaseStatus.APPROVED
        if self.pending is not None:
            return self.pending.status
        return "not_released"


def model_release_overview(*, actor: Principal, model_ids: list[int]) -> dict[int, list[EnvironmentRelease]]:
    """For each model, one row per environment (production first): its newest approved release (who
    approved it, when it must be revalidated) and its newest open request.

    A pure read in three queries (besides rbac's look-up of the actor's grants) whatever the number of
    models and environments: the environments, the live requests the actor may see, and their counting
    approvals (prefetched).
    """
    if not model_ids:
        return {}
    environments = list(environment_list())
    counting = Approval.objects.filter(void=False, decision=ApprovalDecision.APPROVE).select_related(
        "approver", "approver_service_account"
    )
    releases = rbac.restrict(
        actor,
        ReleaseRequest.objects.filter(model_id__in=model_ids, status__in=LIVE)
        .select_related("version", "requested_by", "requested_by_service_account")
        .prefetch_related(Prefetch("approvals", queryset=counting)),
        "releases.view",
    ).order_by("created_at", "id")
    rows = {model_id: {env.pk: EnvironmentRelease(environment=env) for env in environments} for model_id in model_ids}
    for release in releases:  # oldest first: a newer request replaces an older one of the same state
        row = rows[release.model_id].get(release.environment_id)
        if row is None:
            continue
        if release.status == ReleaseStatus.APPROVED:
            if row.approved is None or (release.approved_at or release.created_at) >= (
                row.approved.approved_at or row.approved.created_at
            ):
                row.approved = release
        else:
            row.pending = release
    return {model_id: list(by_env.values()) for model_id, by_env in rows.items()}

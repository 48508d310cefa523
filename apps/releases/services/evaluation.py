"""Re-evaluation: live requests judged again when their version's evidence, facts or the packs change."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.audit import services as audit

from .. import gates
from ..choices import LIVE, OPEN, ReleaseStatus
from ..models import Approval, ReleaseRequest
from .common import SYSTEM, _close, _emit, _pending_status, _ttl, approval_matching

RESET, REJUDGED, EXPIRED = "reset", "rejudged", "expired"

# The parts of a stored decision that make it a different decision (not ``input``, whose audit
# facts move with every event, nor ``evaluated_at``).
DECISION_PARTS = (
    "allow",
    "violations",
    "missing_evidence",
    "required_approvals",
    "rules",
    "packs",
    "evidence",
    "artifact_sha256",
    "binding_digest",
)
# What a binding digest covers, by name, to say which basis moved.
BASIS_PARTS = {"artifact_sha256": "artifact", "facts_sha256": "model facts", "evidence": "evidence", "packs": "packs"}


def releases_reevaluate(
    *,
    version_ids: Iterable[int] | None = None,
    model_id: int | None = None,
    reason: str,
    progress: Callable[[int, str], Any] | None = None,
) -> list[ReleaseRequest]:
    """Re-judge every live request (pending or approved, not break-glass) in scope: of these versions,
    of this model, or (both None) all of them. Returns the requests reset.

    Called by this app's event subscriptions (``apps.releases.subscribers``): after an evidence
    run succeeds or a finding is reviewed, after a policy change, after a model's facts change.
    Each request is judged in a transaction of its own under its row lock (``_judge``): an open request past its time
    expires (``release.expired``); a new binding digest (artifact, model facts, evidence or
    packs) voids the approvals (``release.approvals_voided``) and returns the request to
    pending evidence or pending approval (``release.reset``); a decision that changed under
    the same digest (a rule result flipped) is stored and audited ``release.reevaluated``.
    Idempotent: a request whose decision is unchanged is not written, so running it twice
    writes nothing the second time.
    """
    qs = ReleaseRequest.objects.filter(status__in=LIVE, emergency=False)
    if version_ids is not None:
        qs = qs.filter(version_id__in=list(version_ids))
    if model_id is not None:
        qs = qs.filter(model_id=model_id)
    reset = []
    ids = list(qs.order_by("pk").values_list("public_id", flat=True))
    for done, public_id in enumerate(ids, start=1):
        release = _rejudge(public_id, reason=reason)
        if release is not None:
            reset.append(release)
        if progress is not None:
            progress(5 + 95 * done // len(ids), f"{done} of {len(ids)} requests judged, {len(reset)} reset")
    return reset


@transaction.atomic
def _rejudge(release_id: Any, *, reason: str) -> ReleaseRequest | None:
    """``_judge`` one request under its row lock; the request when it was reset, else None."""
    release = (
        ReleaseRequest.objects.select_for_update(of=("self",))
        .select_related("version", "version__model", "model", "environment")
        .filter(public_id=release_id)
        .first()
    )
    if release is None:
        return None
    return release if _judge(release, reason=reason, now=timezone.now()) == RESET else None


def _judge(release: ReleaseRequest, *, reason: str, now: datetime) -> str | None:
    """Re-judge one live request the caller holds the row lock of; what happened (``EXPIRED``,
    ``RESET``, ``REJUDGED``) or None when nothing changed and nothing was written."""
    if release.status not in LIVE or release.emergency:
        return None
    if release.status in OPEN and release.expires_at is not None and release.expires_at <= now:
        _close(release, actor=SYSTEM, status=ReleaseStatus.EXPIRED, action="release.expired", reason="expired", now=now)
        return EXPIRED
    decision = gates.decide(
        version=release.version, environment=release.environment, release=gates.release_input_for(release)
    ).as_dict()
    decision["evaluated_at"] = now.isoformat()
    stored = release.decision or {}
    if decision["binding_digest"] != release.binding_digest:
        _reset(release, decision, reason=reason, now=now)
        return RESET
    if all(stored.get(part) == decision.get(part) for part in DECISION_PARTS):
        return None
    before = _decision_summary(stored, release.status)
    was = release.status
    if release.status in OPEN:
        release.status = _pending_status(decision)
    release.decision = decision
    release.evaluated_at = now
    if release.status == ReleaseStatus.APPROVED and not approval_matching(release).complete:
        # the same basis now asks for more approvals (a rule's answer changed): wait for them
        release.status = ReleaseStatus.PENDING_APPROVAL
        release.approved_at = None
        release.revalidate_at = None
        release.expires_at = now + _ttl()
    release.save()
    after = _decision_summary(decision, release.status)
    before["rules"], after["rules"] = _rule_changes(stored, decision)
    audit.record(action="release.reevaluated", actor=SYSTEM, target=release, before=before, after=after, reason=reason)
    if release.status == ReleaseStatus.PENDING_APPROVAL and was != ReleaseStatus.PENDING_APPROVAL:
        _emit("release.approval_needed", release)
    return REJUDGED


def _reset(release: ReleaseRequest, decision: dict, *, reason: str, now: datetime) -> None:
    """The basis moved: void the approvals given on the old one and wait again. Audited
    ``release.approvals_voided`` (when there were any) and ``release.reset``."""
    stored = release.decision or {}
    moved = [name for key, name in BASIS_PARTS.items() if stored.get(key) != decision.get(key)]
    facts = _facts_changed(stored, decision)
    why = f"the decision changed ({', '.join(moved) or 'basis'}): {reason}"
    live = list(Approval.objects.filter(release=release, void=False).order_by("pk"))
    before = {
        "status": release.status,
        "binding_digest": release.binding_digest,
        "facts_sha256": stored.get("facts_sha256"),
    }
    basis = {
        "binding_digest": decision["binding_digest"],
        "facts_sha256": decision.get("facts_sha256"),
        "changed": moved,
        "facts_changed": facts,
    }
    if live:
        Approval.objects.filter(pk__in=[a.pk for a in live]).update(void=True, voided_at=now, void_reason=why)
        audit.record(
            action="release.approvals_voided",
            actor=SYSTEM,
            target=release,
            before={**before, "approvals": [{"approver": a.approver_id, "decision": a.decision} for a in live]},
            after={**basis, "approvals_voided": len(live)},
            reason=reason,
        )
    release.status = _pending_status(decision)
    release.decision = decision
    release.binding_digest = decision["binding_digest"]
    release.evaluated_at = now
    release.approved_at = None
    release.revalidate_at = None
    release.expires_at = now + _ttl()
    release.save()
    audit.record(
        action="release.reset",
        actor=SYSTEM,
        target=release,
        before=before,
        after={
            **basis,
            "status": release.status,
            "approvals_voided": len(live),
            "violations": [v["rule"] for v in decision.get("violations", [])],
        },
        reason=reason,
    )
    _emit("release.reset", release)
    if release.status == ReleaseStatus.PENDING_APPROVAL:
        _emit("release.approval_needed", release)


def _facts_changed(stored: dict, decision: dict) -> list[str]:
    """The names of the bound model facts that differ between two decisions' inputs (``model.risk_tier``)."""
    from apps.policies.inputs import bound_facts

    old, new = bound_facts(stored.get("input") or {}), bound_facts(decision.get("input") or {})
    changed = []
    for part in ("model", "version"):
        keys = sorted(set(old[part]) | set(new[part]))
        changed += [f"{part}.{k}" for k in keys if old[part].get(k) != new[part].get(k)]
    if old["datasets"] != new["datasets"]:
        changed.append("datasets")
    return changed


def _decision_summary(decision: dict, status: str) -> dict:
    return {
        "status": status,
        "binding_digest": decision.get("binding_digest"),
        "allow": decision.get("allow"),
        "violations": [v["rule"] for v in decision.get("violations", [])],
        "missing_evidence": [m.get("rule") or m.get("kind") for m in decision.get("missing_evidence", [])],
        "required_approvals": [f"{r['role']}:{r['count']}" for r in decision.get("required_approvals", [])],
    }


def _rule_changes(before: dict, after: dict) -> tuple[dict, dict]:
    """{rule: result} before and after, for the rules whose result changed (or that came or went)."""
    old = {(r["pack"], r["rule"]): r["result"] for r in before.get("rules", [])}
    new = {(r["pack"], r["rule"]): r["result"] for r in after.get("rules", [])}
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return (
        {f"{p}:{r}": old.get((p, r)) for p, r in keys},
        {f"{p}:{r}": new.get((p, r)) for p, r in keys},
    )

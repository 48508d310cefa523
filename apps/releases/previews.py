"""The gate's preview of the people a release needs: who may request it and who may approve it.

A pipeline that asks the gate learns, before it tries, whether its own identity may request the
release (and if not, why not and who may), and who may approve it (four eyes). Each answer reads the
rule the enforcing service applies, never a copy of it:

- requesting: ``rbac.refusal`` (what ``rbac.require`` raises in ``release_request_create``), the
  version's state, an existing live request, and what the policy packs refuse in a request by the
  caller: the stored decision's reaction judged a request (with the ``release`` input the service
  builds) by each of the version's authors and by someone else (``gate_decisions.REQUESTER_REFUSALS``),
  so a segregation-of-duties rule such as SOX's "the requester is not the version's author" shows
  here before the request is refused for it;
- approving: ``rbac.refusal`` and ``rbac.can_approve`` (auditors never approve),
  ``duties.decider_refusal`` (the requester and the author never decide), and the open slots
  the caller's roles could fill (``matching.fills``), as ``approval_decide`` checks them.

Pure reads: nothing is stored and no policy is evaluated here.
"""

from __future__ import annotations

from typing import Any

from apps.core.principals import Principal, PrincipalKind
from apps.rbac import services as rbac
from apps.registry.choices import VersionStatus

from . import duties, services
from .choices import LIVE, ApprovalDecision, ReleaseStatus
from .matching import fills

# Stable codes for why the caller may not request or approve (besides rbac's two).
LIVE_REQUEST_EXISTS = "live_release_exists"
VERSION_NOT_READY = "version_not_ready"
POLICY_REFUSES = "policy_not_satisfied"
REQUESTER_REFUSED = "segregation_of_duties"
FOUR_EYES = "four_eyes"
AUDITOR = "auditor_never_approves"
NOTHING_TO_APPROVE = "nothing_to_approve"
ALREADY_DECIDED = "already_decided"
NOT_NEEDED = "approval_not_needed"


def _words(role: str) -> str:
    return role.replace("_", " ")


def _person_name(user: Any) -> str:
    if user is None:
        return "someone no longer registered"
    full = user.get_full_name() if hasattr(user, "get_full_name") else ""
    return f"{full} ({user.username})" if full else user.username


def _answer(may: bool, code: str | None, reason: str, who: str) -> dict:
    return {"caller_may": may, "code": code, "reason": reason, "who": who}


def _requesters(version: Any, environment: Any) -> str:
    """Who may request a release of ``version`` into ``environment``, in words."""
    roles = rbac.roles_granting("releases.request")
    return (
        f"A person or CI service account holding releases.request on {version.model.name} in {environment.name}: "
        f"the role {' or '.join(_words(r) for r in roles)} on team {version.model.owner_team.name}, on the model "
        "or globally. Through an API token it needs the releases:write scope. A service account counts as its "
        "owner: where a pack asks for segregation of duties (SOX), the version's author and their service "
        "accounts do not request it; another member of the team does."
    )


def request_preview(*, actor: Principal | None, gate: Any) -> dict:
    """May ``actor`` request the release the gate judges now? ``{caller_may, code, reason, who}``."""
    version, environment, release = gate.version, gate.environment, gate.release
    who = _requesters(version, environment)
    if release is not None and release.status in LIVE:
        state = _words(release.status)
        return _answer(
            False,
            LIVE_REQUEST_EXISTS,
            f"A live request exists for {environment.name} ({state}, {release.public_id}): no new request is "
            "needed; decide, cancel or wait for it.",
            who,
        )
    refused = rbac.refusal(actor, "releases.request", services.ReleaseTarget(version, environment))
    if refused is not None and refused.code != rbac.TOKEN_SCOPE_MISSING:
        return _answer(False, refused.code, refused.detail, who)
    # Only the token's scope missing: the rest is still read, so that a pipeline is not sent to widen
    # its token for a request the policies would refuse anyway.
    token_note = f" (Your API token also lacks the '{refused.token_scope}' scope.)" if refused is not None else ""
    if version.status != VersionStatus.READY:
        return _answer(
            False,
            VERSION_NOT_READY,
            f"{version} is {_words(version.status)}: only verified versions are released.",
            who,
        )
    if services.blocking(gate.decision):
        messages = "; ".join(v["message"] for v in services.blocking(gate.decision))
        return _answer(False, POLICY_REFUSES, f"The policies refuse {version} in {environment.name}: {messages}", who)
    # What the packs would refuse in a request by the caller, as the stored decision's reaction judged it for
    # the version's author and for anyone else (``gate_decisions.REQUESTER_REFUSALS``): the gate evaluates
    # no policy itself.
    refusals = gate.decision.get("requester_refusals") or {}
    person = actor.person_key if actor is not None else (None, None)
    authored = person[0] == PrincipalKind.USER and person[1] in duties.version_authors(version)
    new = refusals.get("author" if authored else "someone_else", [])
    if new:
        return _answer(
            False,
            REQUESTER_REFUSED,
            "A request from you would be refused by the policies: "
            + "; ".join(v["message"] for v in new)
            + "."
            + token_note,
            who,
        )
    if refused is not None:
        return _answer(False, refused.code, refused.detail, who)
    need = " (with a change reference)" if environment.requires_change_reference else ""
    return _answer(True, None, f"You may request the release to {environment.name}{need}.", who)


def _approvers(gate: Any) -> str:
    """Who may approve the release the gate judges, in words."""
    version, release = gate.version, gate.release
    excluded = []
    if release is not None and release.requested_by_id is not None:
        excluded.append(f"its requester, {_person_name(release.requested_by)}")
    account = version.created_by_service_account if version.created_by_service_account_id else None
    author = _person_name(version.created_by) if version.created_by_id else ""
    if author:
        excluded.append(f"the version's author, {author}")
    if account is not None and account.owner_id != version.created_by_id:
        excluded.append(f"the owner of service account {account.name}, {_person_name(account.owner)}")
    slots = "; ".join(
        f"{r['count']} {_words(r['role'])}"
        + (" (or a compliance officer or admin standing in)" if r["role"] == "reviewer" else "")
        + f", {r['filled']} given"
        for r in gate.approvals["required"]
    )
    return (
        f"People holding releases.approve on it: {slots}. Four eyes: not "
        + (", nor ".join(excluded) if excluded else "the requester nor the version's author")
        + ", nor service accounts they own; an auditor never approves; one person counts once."
    )


def approval_preview(*, actor: Principal | None, gate: Any) -> dict:
    """Could ``actor`` approve the release the gate judges (now, or once it is requested)?
    ``{caller_may, code, reason, who}``: ``caller_may`` is true only for an open slot the caller may fill now."""
    version, environment, release = gate.version, gate.environment, gate.release
    who = _approvers(gate)
    target = release if release is not None else services.ReleaseTarget(version, environment)
    refused = rbac.refusal(actor, "releases.approve", target)
    if refused is not None:
        return _answer(False, refused.code, refused.detail, who)
    if not rbac.can_approve(actor, target):
        return _answer(False, AUDITOR, "Auditors never approve releases.", who)
    person = actor.person_key
    four_eyes = duties.decider_refusal(
        person, requested_by_id=release.requested_by_id if release is not None else None, version=version
    )
    if four_eyes:
        return _answer(False, FOUR_EYES, four_eyes, who)
    if release is None or release.status != ReleaseStatus.PENDING_APPROVAL or gate.status != "pending_approval":
        state = "not requested yet" if release is None else _words(gate.status)
        return _answer(
            False, NOTHING_TO_APPROVE, f"Nothing to approve now (the release to {environment.name} is {state}).", who
        )
    live = [a for a in release.approvals.all() if not a.void]
    if any(person == (PrincipalKind.USER, a.approver_id) for a in live):
        return _answer(False, ALREADY_DECIDED, "You have decided on this release already: one person counts once.", who)
    matching = services.approval_matching(release, [a for a in live if a.decision == ApprovalDecision.APPROVE])
    open_roles = [s.role for s in matching.slots if s not in matching.assigned]
    roles = rbac.roles_with(actor, "releases.approve", release)
    if not any(fills(role, roles) for role in open_roles):
        return _answer(
            False,
            NOT_NEEDED,
            f"Your roles ({', '.join(sorted(roles)) or 'none'}) fill none of the approvals still needed "
            f"({', '.join(open_roles) or 'none'}).",
            who,
        )
    return _answer(True, None, f"You may approve the release to {environment.name}.", who)

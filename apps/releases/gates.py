"""The one place releases ask the policy engine for a decision (``apps.policies.decisions.policy_decide``).

``decide`` builds the ``release`` input (change reference, requester, emergency flag, the live
approvals) from a request, so every caller judges a request on the same document.
"""

from __future__ import annotations

from typing import Any

from apps.registry.models import ModelVersion

from .models import Environment, ReleaseRequest


def person(user_id: int | None) -> list | None:
    return ["user", user_id] if user_id is not None else None


def release_input(
    *, change_reference: str, requested_by_id: int | None, emergency: bool, approvals: list[dict] | None = None
) -> dict:
    """The ``release`` part of the policy input document."""
    return {
        "change_reference": change_reference,
        "requested_by": person(requested_by_id),
        "emergency": emergency,
        "approvals": approvals or [],
    }


def release_input_for(release: ReleaseRequest) -> dict:
    """A stored request as the policy input sees it, with its live (not voided) approvals."""
    approvals = [
        {"person": person(a.approver_id), "roles": list(a.roles), "decision": a.decision}
        for a in release.approvals.all()
        if not a.void
    ]
    return release_input(
        change_reference=release.change_reference,
        requested_by_id=release.requested_by_id,
        emergency=release.emergency,
        approvals=approvals,
    )


def decide(*, version: ModelVersion, environment: Environment, release: dict | None = None) -> Any:
    """The policy decision (``PolicyDecision``) for ``version`` going to ``environment``."""
    from apps.policies.decisions import policy_decide

    return policy_decide(version=version, environment=environment.as_policy_input(), release=release)


def decide_each(*, version: ModelVersion, cases: list[tuple[Environment, dict | None]]) -> list[Any]:
    """``decide`` for several environments (each with its release input or None), reading the version's
    facts and evidence once."""
    from apps.policies.decisions import policy_decide_each

    return policy_decide_each(version=version, cases=[(env.as_policy_input(), rel) for env, rel in cases])

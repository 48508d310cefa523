"""Segregation of duties on a release: who may never decide on it.

The one rule, read by the approval service (which refuses with it) and by the gate's preview (which
shows it before anyone asks), so the two can never disagree: the requester and the version's author
never decide on a release, and a service account counts as its owner, so a pipeline that registered
a version acts as the person who owns it.
"""

from __future__ import annotations

from apps.core.principals import PrincipalKind
from apps.registry.models import ModelVersion

REQUESTED_IT = "You requested this release: someone else must decide on it (four eyes)."
AUTHORED_IT = "You are the author of this version: someone else must decide on it (four eyes)."


def version_authors(version: ModelVersion) -> set[int]:
    """User ids of the people accountable for registering ``version``: its author and, when a service
    account registered it, that account's owner."""
    authors = {version.created_by_id}
    if version.created_by_service_account_id:
        authors.add(version.created_by_service_account.owner_id)
    return {a for a in authors if a is not None}


def decider_refusal(person_key: tuple[str, int | None], *, requested_by_id: int | None, version: ModelVersion) -> str:
    """Why the person ``person_key`` (a principal's ``person_key``) may not decide on a release of
    ``version`` requested by ``requested_by_id`` (None: not requested yet); ``""`` when they may."""
    if requested_by_id is not None and person_key == (PrincipalKind.USER, requested_by_id):
        return REQUESTED_IT
    if any(person_key == (PrincipalKind.USER, a) for a in version_authors(version)):
        return AUTHORED_IT
    return ""

"""Writes for releases: request, approve or reject, cancel, re-evaluate, expire, and the break-glass review.

Every state change happens here, in one transaction, under a row lock on the request
(``select_for_update``), with its audit event and its event (``release.*``, published with
``apps.jobs.events`` inside the transaction so a rollback drops it; the webhooks subscribe).
Four eyes is enforced here, not in the pages: the requester and the version's author never
approve (a service account counts as its owner), a person counts once, an auditor never
approves, and approvals fill the decision's required roles by a proper matching
(``matching.match``).

States::

    pending_evidence ──evidence arrives──► pending_approval ──quorum──► approved
         │   ▲                                │   ▲                        │
         │   └────── release.reset ◄──────────┴───┴── decision changed ◄───┘
         └──────────────┴── expired (TTL) │ rejected (any approver) │ cancelled (requester, release manager)

Modules: ``requests`` (create, cancel), ``approvals``, ``evaluation`` (re-evaluation), ``expiry``,
``environments``, ``reviews`` (the break-glass review); ``common`` holds what they share.
"""

from .approvals import approval_decide
from .common import (
    APPROVAL_FLOOR,
    ApprovalNotNeeded,
    DecisionChanged,
    PolicyNotSatisfied,
    ReleaseTarget,
    approval_matching,
    blocking,
    required_approvals,
    revalidation_date,
)
from .environments import environment_create
from .evaluation import DECISION_PARTS, releases_reevaluate
from .expiry import releases_expire_due
from .requests import LiveReleaseExists, release_cancel, release_request_create
from .reviews import post_release_review_close

__all__ = [
    "APPROVAL_FLOOR",
    "DECISION_PARTS",
    "ApprovalNotNeeded",
    "DecisionChanged",
    "LiveReleaseExists",
    "PolicyNotSatisfied",
    "ReleaseTarget",
    "approval_decide",
    "approval_matching",
    "blocking",
    "environment_create",
    "post_release_review_close",
    "release_cancel",
    "release_request_create",
    "releases_expire_due",
    "releases_reevaluate",
    "required_approvals",
    "revalidation_date",
]

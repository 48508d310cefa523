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
"""


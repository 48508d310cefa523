"""Writes for evidence: request a run (or reuse an equal one), cancel it, review its findings, download its files.

``evidence_request`` checks ``evidence.request`` on the subject (a version, or a
dataset), the kind, the subject's readiness and the kind's parameters, then
either returns an existing run with the same inputs and parameters (audited
``evidence_run.reused``) or creates the run and its job in one transaction
(audited ``evidence_run.requested``; the job is sent to a worker after commit).
The worker's state changes are in ``apps.evidence.runs``.
"""


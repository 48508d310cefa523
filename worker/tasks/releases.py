"""Release upkeep: expire open requests past their time.

Re-judging after a change elsewhere (policy, evidence, model) is an event reaction
(``apps.releases.subscribers``); ``releases.reevaluate`` jobs queued by earlier versions still run.
"""

from celery import shared_task

from apps.jobs.models import Job
from apps.releases import services
from worker.runner import handles


@shared_task(name="releases.expire")
def expire() -> int:
    """Expire open release requests past ``expires_at`` (each audited ``release.expired``); safe to repeat."""
    return services.releases_expire_due()


@handles("releases.reevaluate")  # queued by versions before policy.changed was an event
def reevaluate(job: Job, report) -> dict:
    """Re-judge every live release request on the policies now in force; a request whose binding digest
    moved returns to pending with its approvals voided (``release.approvals_voided``, ``release.reset``),
    one whose decision changed under the same digest is stored (``release.reevaluated``). Safe to repeat:
    an unchanged request is not written."""
    report(5, "re-evaluating live release requests")
    reset = services.releases_reevaluate(
        version_ids=None, reason=job.params.get("reason", "policy changed"), progress=report
    )
    return {"reset": [str(r.public_id) for r in reset]}

"""Put the demo's release requests in every state, once its evidence is in.

    python manage.py demo_releases [--wait 300]

The run command starts it after ``demo_evidence``. It waits (up to ``--wait`` seconds) until every
demo version is verified and every evidence run has finished, so that each request is judged on real
reports by the shipped policy packs, then acts as the demo's people would, through the release services:

- fraud-detector v1 to production: requested by priya with a change reference, approved by bob
  (reviewer): ``approved``, with its revalidation date;
- fraud-detector v1 to staging: requested by priya: ``pending_approval`` in bob's queue;
- credit-scoring v2 (fair by sex, by age band and to their intersection) to production (high risk):
  approved by bob and carol (compliance officer), so it carries a revalidation date; to staging:
  waiting in carol's queue (the EU AI Act pack asks a compliance officer's approval of a high-risk
  model in every environment);
- credit-scoring v3, which demo_evidence leaves without an explainability report:
  ``pending_evidence`` (ask for the report on its page and the request moves on);
- churn-predictor v1: rejected by carol in production, one request to staging left to expire and
  another cancelled by its requester;
- readmission-risk v1, which the HIPAA and fairness packs block: a break-glass release by dave
  (release manager) whose post-release review waits for a compliance officer.

Idempotent: once any release request exists it does nothing.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand
from django.test.utils import override_settings

from apps.accounts.models import User
from apps.accounts.principals import principal_for_user
from apps.audit import context
from apps.evidence.choices import FINISHED
from apps.evidence.models import EvidenceRun
from apps.registry.choices import VersionStatus
from apps.registry.models import ModelVersion
from apps.releases import services as releases
from apps.releases.models import ReleaseRequest


class Command(BaseCommand):
    help = "Create the demo's release requests in every state once its evidence is in (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--wait", type=float, default=300, help="seconds to wait for the evidence (default 300)")

    def handle(self, *args, **options):
        context.update(source="cli")
        if ReleaseRequest.objects.exists():
            self.stdout.write("demo releases: already there")
            return
        deadline = time.monotonic() + options["wait"]
        if not self._wait(deadline, _settled):
            self.stderr.write("demo releases: evidence still running; the requests are judged on what is there")
        people = {u.username: principal_for_user(u) for u in User.objects.filter(username__in=PEOPLE)}
        priya, bob, carol, dave, mark = (people[n] for n in ("priya", "bob", "carol", "dave", "mark"))

        def ask(actor, model, number, environment, justification, **kw):
            release = releases.release_request_create(
                actor=actor,
                model_name=model,
                number=number,
                environment=environment,
                justification=justification,
                **kw,
            )
            self.stdout.write(f"{model} v{number} to {environment}: {release.status}")
            return release

        def decide(actor, release, decision="approve", comment=""):
            releases.approval_decide(actor=actor, release_id=release.public_id, decision=decision, comment=comment)

        prod = ask(
            priya,
            "fraud-detector",
            1,
            "production",
            "Roll out the card-present fraud model to all regions.",
            change_reference="CHG-2107",
        )
        decide(bob, prod, comment="Recall on the staging replay matches the offline evaluation.")
        ask(priya, "fraud-detector", 1, "staging", "Shadow traffic in staging before the Q1 rollout.")
        credit = ask(
            priya,
            "credit-scoring",
            2,
            "production",
            "Replace v1, whose demographic parity difference by age band is outside the model's threshold.",
            change_reference="CHG-2093",
        )
        decide(bob, credit, comment="Bias and explainability reports reviewed: fair by sex, age band and both.")
        decide(carol, credit, comment="DPIA-2026-014 covers this version; human review path documented.")
        ask(priya, "credit-scoring", 2, "staging", "Underwriter training environment.")

        churn = ask(
            mark,
            "churn-predictor",
            1,
            "production",
            "Target the winter retention campaign.",
            change_reference="CHG-2110",
        )
        decide(
            carol,
            churn,
            "reject",
            "The campaign list includes customers under 18; document the age filter in the model card first.",
        )
        with override_settings(ASSAY_RELEASE_REQUEST_TTL_HOURS=0):  # a request nobody acted on in time
            ask(mark, "churn-predictor", 1, "staging", "Try the campaign audience in staging.")
        releases.releases_expire_due()
        self.stdout.write("churn-predictor v1 to staging: expired")
        cancelled = ask(mark, "churn-predictor", 1, "staging", "Campaign audience, second try.")
        releases.release_cancel(actor=mark, release_id=cancelled.public_id, reason="The campaign moved to Q2.")
        self.stdout.write("churn-predictor v1 to staging: cancelled")

        ask(
            dave,
            "readmission-risk",
            1,
            "production",
            "Sepsis surge: the discharge planners need the updated scores tonight (incident INC-4471).",
            change_reference="INC-4471",
            emergency=True,
        )

        ask(priya, "credit-scoring", 3, "staging", "Retrained on 2025 applications.")

    def _wait(self, deadline: float, done) -> bool:
        while not done():
            if time.monotonic() >= deadline:
                return False
            time.sleep(1)
        return True


PEOPLE = ("priya", "bob", "carol", "dave", "mark")


def _settled() -> bool:
    """Every demo version verified and every evidence run finished."""
    verifying = ModelVersion.objects.filter(status=VersionStatus.PENDING_VERIFICATION).exists()
    return not verifying and not EvidenceRun.objects.exclude(status__in=FINISHED).exists()

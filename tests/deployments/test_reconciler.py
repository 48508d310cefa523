"""The reconciler's judgement of what a target runs (``worker.reconciler.findings_for``), from stored state."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.deployments.choices import DeploymentState, Phase
from apps.deployments.models import Deployment
from apps.deployments.plans import MemberStatus, Observed
from apps.releases.models import ReleaseRequest
from worker.reconciler import findings_for


def _as(deployment, **fields):
    Deployment.objects.filter(pk=deployment.pk).update(**fields)
    deployment.refresh_from_db()
    return deployment


def _running(*deployments, weights) -> list[Observed]:
    members = [
        MemberStatus(version_id=str(d.version_id), digest=d.version.sha256, weight=w)
        for d, w in zip(deployments, weights, strict=True)
    ]
    return [
        Observed(service=deployments[0].service, exists=True, fence=1, model=deployments[0].model.name, members=members)
    ]


def _queries(target, observed) -> tuple[list[dict], int]:
    with CaptureQueriesContext(connection) as queries:
        found = findings_for(target, observed)
    return found, len(queries)


def test_a_pass_costs_the_same_queries_however_many_versions_run(lab, release, start, approve, version2):
    """Each running version is judged by the governance check; their stored gate decisions and the approvers it
    names are read once for the pass, not once per version (a pass over a thousand deployments stays a handful
    of queries)."""
    # given a stable version serving and a canary of version 2 beside it, both approved and current
    stable = _as(start(release), state=DeploymentState.SUCCEEDED, phase=Phase.DONE, traffic={"new": 100})
    canary = _as(
        start(approve(version2), strategy="canary"),
        state=DeploymentState.PROGRESSING,
        phase=Phase.ANALYSE,
        traffic={"stable": 90, "new": 10},
    )
    lab.refresh_from_db()
    findings_for(lab, _running(stable, weights=[100]))  # the target's environment, read once and kept
    # when the pass sees one version running, then both
    alone, one = _queries(lab, _running(stable, weights=[100]))
    both, two = _queries(lab, _running(stable, canary, weights=[90, 10]))
    # then nothing is flagged, and the second version cost no query
    assert alone == [] and both == []
    assert two == one, (one, two)
    # and a version whose approval passed its revalidation date is flagged (the check still runs per version)
    ReleaseRequest.objects.filter(pk=canary.release_id).update(revalidate_at=timezone.now() - timedelta(days=1))
    found, three = _queries(lab, _running(stable, canary, weights=[90, 10]))
    assert [(f["kind"], f["version_id"]) for f in found] == [("not_approved", str(version2.pk))]
    assert "revalidation date" in found[0]["message"] and three <= one

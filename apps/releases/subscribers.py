"""How releases react to other apps' events: each re-judges the live release requests the change bears on,
and then, in the same job, re-makes the stored gate decisions of the same versions (``gate_decisions``),
so the request and the gate are judged on the same facts, evidence and packs.

Subscribed in ``ReleasesConfig.ready()``; each reaction runs as a job in a worker
(``apps.jobs.events``). Re-judging is idempotent: a request whose decision did not change
keeps its approvals, and one that already moved is left as it is, so a reaction that runs
twice (its worker died) changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction

from apps.jobs import events
from apps.registry.models import ModelVersion

from . import gate_decisions, services
from .models import ReleaseRequest

SUBSCRIBER = "releases"
Report = Callable[[int, str], None]


def _versions_of(*, version_id: int | None, dataset_id: int | None) -> list[int]:
    """The versions evidence bears on: its version, or the versions trained or evaluated on its dataset."""
    if version_id:
        return [version_id]
    if not dataset_id:
        return []
    versions = ModelVersion.objects.filter(evaluation_dataset_id=dataset_id) | ModelVersion.objects.filter(
        training_datasets=dataset_id
    )
    return list(versions.values_list("id", flat=True).distinct())


def _rejudge(version_ids: list[int] | None, *, reason: str, report: Report) -> dict:
    if version_ids is not None and not version_ids:
        return {"reset": []}
    reset = services.releases_reevaluate(version_ids=version_ids, reason=reason, progress=report)
    result = {"reset": [str(r.public_id) for r in reset]}
    if version_ids is not None:
        result["gate_decisions"] = gate_decisions.gate_decisions_refresh(version_ids=version_ids, reason=reason)
    return result


def _stale_in_batches(*, reason: str, environment_ids: list[int] | None = None) -> int:
    """Queue the re-judging of every version's stored gate decisions, ``gate_decisions.BATCH`` versions
    per job (``gate_decisions.stale``), so a registry of 100,000 versions is not one long job."""
    batches = gate_decisions.version_batches()
    with transaction.atomic():
        for batch in batches:
            events.publish(
                "gate_decisions.stale",
                payload={"version_ids": batch, "environment_ids": environment_ids, "reason": reason},
            )
    return len(batches)


def on_evidence(event: events.Event, report: Report) -> dict:
    """New evidence, or a reviewed finding, may change a decision: re-judge the subject's releases."""
    payload = event.payload
    versions = _versions_of(version_id=payload.get("version_id"), dataset_id=payload.get("dataset_id"))
    reason = "new evidence" if event.name == "evidence_run.succeeded" else "a finding was reviewed"
    return _rejudge(versions, reason=reason, report=report)


def on_policy_changed(event: events.Event, report: Report) -> dict:
    """A pack may apply to any version: re-judge every live request, and queue every version's gate."""
    payload = event.payload
    reason = f"policy {payload.get('change')}: {payload.get('pack')}"
    result = _rejudge(None, reason=reason, report=report)
    result["gate_batches"] = _stale_in_batches(reason=reason)
    return result


def on_model_updated(event: events.Event, report: Report) -> dict:
    """The model's facts are policy input: re-judge the live requests of all its versions."""
    payload = event.payload
    versions = list(ModelVersion.objects.filter(model_id=payload["model_id"]).values_list("id", flat=True))
    return _rejudge(versions, reason=f"the model changed ({', '.join(payload.get('fields', []))})", report=report)


def on_version_verified(event: events.Event, report: Report) -> dict:
    """A version became ready: make its gate decisions (it has no release request yet)."""
    version_id = event.payload["version_id"]
    return {"gate_decisions": gate_decisions.gate_decisions_refresh(version_ids=[version_id], reason="verified")}


def on_evidence_failed(event: events.Event, report: Report) -> dict:
    """A failed run adds no report, but what the version's evidence lacks may read differently: judge its gates."""
    versions = _versions_of(version_id=event.payload.get("version_id"), dataset_id=event.payload.get("dataset_id"))
    written = gate_decisions.gate_decisions_refresh(version_ids=versions, reason="an evidence run failed")
    return {"gate_decisions": written}


def on_release_changed(event: events.Event, report: Report) -> dict:
    """A request changed state: the gate of its version judges another request (or the same one anew)."""
    version_id = ReleaseRequest.objects.filter(pk=event.payload["release_id"]).values_list("version_id", flat=True)
    reason = f"{event.name.replace('.', ' ').replace('_', ' ')} ({event.payload.get('environment')})"
    return {"gate_decisions": gate_decisions.gate_decisions_refresh(version_ids=list(version_id), reason=reason)}


def on_environment_changed(event: events.Event, report: Report) -> dict:
    """A new or changed environment: queue every version's gate decision there."""
    env_id = event.payload["environment_id"]
    reason = f"environment {event.payload.get('environment')} changed"
    return {"gate_batches": _stale_in_batches(reason=reason, environment_ids=[env_id])}


def on_gate_decisions_stale(event: events.Event, report: Report) -> dict:
    """One batch of a policy or environment change: judge these versions' gates."""
    payload = event.payload
    written = gate_decisions.gate_decisions_refresh(
        version_ids=payload["version_ids"],
        environment_ids=payload.get("environment_ids"),
        reason=payload.get("reason") or "re-judged",
        progress=report,
    )
    return {"gate_decisions": written}


# The request state changes that can change the request the gate judges, or its approvals. An expiry
# changes neither (the expired request stays the one picked, on the same input; the gate reads it expired).
RELEASE_CHANGES = (
    "release.requested",
    "release.approval_needed",
    "release.approved",
    "release.rejected",
    "release.cancelled",
    "release.reset",
)


def subscribe() -> None:
    events.subscribe("evidence_run.succeeded", on_evidence, subscriber=SUBSCRIBER)
    events.subscribe("evidence_finding.reviewed", on_evidence, subscriber=SUBSCRIBER)
    events.subscribe("policy.changed", on_policy_changed, subscriber=SUBSCRIBER)
    events.subscribe("model.updated", on_model_updated, subscriber=SUBSCRIBER)
    events.subscribe("model_version.verified", on_version_verified, subscriber=SUBSCRIBER)
    events.subscribe("evidence_run.failed", on_evidence_failed, subscriber=SUBSCRIBER)
    events.subscribe("environment.changed", on_environment_changed, subscriber=SUBSCRIBER)
    events.subscribe("gate_decisions.stale", on_gate_decisions_stale, subscriber=SUBSCRIBER)
    for name in RELEASE_CHANGES:
        events.subscribe(name, on_release_changed, subscriber=SUBSCRIBER)

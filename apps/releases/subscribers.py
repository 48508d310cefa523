"""How releases react to other apps' events: each re-judges the live release requests the change bears on.

Subscribed in ``ReleasesConfig.ready()``; each reaction runs as a job in a worker
(``apps.jobs.events``). Re-judging is idempotent: a request whose decision did not change
keeps its approvals, and one that already moved is left as it is, so a reaction that runs
twice (its worker died) changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Callable

from apps.jobs import events
from apps.registry.models import ModelVersion

from . import services

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
    return {"reset": [str(r.public_id) for r in reset]}


def on_evidence(event: events.Event, report: Report) -> dict:
    """New evidence, or a reviewed finding, may change a decision: re-judge the subject's releases."""
    payload = event.payload
    versions = _versions_of(version_id=payload.get("version_id"), dataset_id=payload.get("dataset_id"))
    reason = "new evidence" if event.name == "evidence_run.succeeded" else "a finding was reviewed"
    return _rejudge(versions, reason=reason, report=report)


def on_policy_changed(event: events.Event, report: Report) -> dict:
    """A pack may apply to any version: re-judge every live request."""
    payload = event.payload
    return _rejudge(None, reason=f"policy {payload.get('change')}: {payload.get('pack')}", report=report)


def on_model_updated(event: events.Event, report: Report) -> dict:
    """The model's facts are policy input: re-judge the live requests of all its versions."""
    payload = event.payload
    versions = list(ModelVersion.objects.filter(model_id=payload["model_id"]).values_list("id", flat=True))
    return _rejudge(versions, reason=f"the model changed ({', '.join(payload.get('fields', []))})", report=report)


def subscribe() -> None:
    events.subscribe("evidence_run.succeeded", on_evidence, subscriber=SUBSCRIBER)
    events.subscribe("evidence_finding.reviewed", on_evidence, subscriber=SUBSCRIBER)
    events.subscribe("policy.changed", on_policy_changed, subscriber=SUBSCRIBER)
    events.subscribe("model.updated", on_model_updated, subscriber=SUBSCRIBER)

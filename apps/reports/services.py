"""Report writes: asking for a report, the worker's progress and outcome, and downloads.

``report_request`` checks the permission, creates the report and its job in one transaction
and records ``report.requested``; the worker (``worker/tasks/reports.py``) calls
``report_started``, ``report_progress`` and then ``report_completed`` (``report.generated``)
or ``report_failed`` (``report.failed``). A download is a write, like an artifact's
(``apps.registry.downloads``): ``report_download_start`` needs ``reports.view`` on the report,
records ``report.downloaded`` and signs a short-lived link for that principal alone, which
``apps.reports.downloads`` follows (a read).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Team
from apps.audit import services as audit
from apps.audit.filters import parse_filters, resolve_subject
from apps.core.errors import Conflict, NotFound, ValidationFailed
from apps.core.principals import Principal
from apps.jobs import events as named_events
from apps.jobs import services as jobs
from apps.rbac import services as rbac
from apps.registry.downloads import DownloadLink, sign_link
from apps.registry.models import RegisteredModel
from apps.releases import selectors as releases

from . import reviews, selectors
from .choices import FINISHED, ReportFormat, ReportKind, ReportStatus
from .models import Report

REPORT_JOB = "reports.generate"
VIEW = "reports.view"
RELEASE = "reports.release"
GENERATE = "reports.generate"
DEFAULT_FORMATS = [ReportFormat.PDF.value, ReportFormat.PACK.value]
SALT = "assay.reports.download"  # the download links' signing salt (apps.reports.downloads reads them)


class ReportNotReady(Conflict):
    """The report has no file in that format (still generating, failed, or not asked for): 409."""

    code = "report_not_ready"
    title = "Report not ready"


def _formats(formats: Any) -> list[str]:
    if formats in (None, "", []):
        return list(DEFAULT_FORMATS)
    if isinstance(formats, str):
        formats = [f.strip() for f in formats.split(",") if f.strip()]
    if not isinstance(formats, list | tuple) or not all(isinstance(f, str) for f in formats):
        raise ValidationFailed("formats: a list of format names.", errors={"formats": ["Not a list of names."]})
    unknown = sorted(set(formats) - set(ReportFormat.values))
    if unknown:
        raise ValidationFailed(
            f"formats: {', '.join(unknown)} unknown; choose from {', '.join(ReportFormat.values)}.",
            errors={"formats": [f"Unknown: {', '.join(unknown)}."]},
        )
    return [f for f in ReportFormat.values if f in formats]


@transaction.atomic
def report_request(
    *,
    actor: Principal,
    kind: str,
    release_id: Any = None,
    model_name: str = "",
    team_name: str = "",
    review_id: Any = None,
    filters: dict | None = None,
    since: Any = None,
    until: Any = None,
    formats: Any = None,
) -> Report:
    """Ask for a report of ``kind`` on its subject; a worker generates it. Records ``report.requested``.

    - ``release``: ``release_id``; needs ``reports.release`` on the release (compliance officers,
      auditors, and release managers in its scope).
    - ``model``: ``model_name``, optionally ``since``/``until``; needs ``reports.generate`` on the model.
    - ``period``: ``since`` and ``until``, and ``team_name`` for one team; needs ``reports.generate`` on the
      team, or a global binding for every team. Its evidence pack holds the period's events about the team
      (``related=team:<name>``), or every event of the period.
    - ``access_review``: ``review_id``; needs ``reports.generate`` through a global binding.
    - ``trail``: ``filters``, the audit page's filter as parameters; needs ``audit.export`` (global). Its pack
      holds every event the filter selects, with its proof.

    A subject the actor cannot see is a 404; a bad value a 400 naming the field.
    """
    chosen = _formats(formats)
    if kind == ReportKind.RELEASE:
        return _release_report(actor=actor, release_id=release_id, formats=chosen)
    if kind == ReportKind.ACCESS_REVIEW:
        if not review_id:
            raise ValidationFailed("review: required for an access review report.", errors={"review": ["Required."]})
        review = reviews.review_get(actor=actor, review_id=review_id)
        rbac.require(actor, GENERATE, audit_action="report.requested")
        report = Report(
            kind=kind,
            title=f"Access review report: {review.title}"[:300],
            subject=f"access_review:{review.public_id}",
            access_review=review,
            owner_team=None,
        )
        return _created(actor, report, chosen, related=review)
    if kind == ReportKind.TRAIL:
        return _trail_extract(actor=actor, params=filters or {}, formats=chosen)
    if kind not in ReportKind.values:
        raise ValidationFailed(
            f"kind: {kind or 'nothing'} is not a report kind; choose from {', '.join(ReportKind.values)}.",
            errors={"kind": ["Unknown report kind."]},
        )
    period = parse_filters({"since": since or "", "until": until or ""})
    if kind == ReportKind.MODEL:
        if not model_name:
            raise ValidationFailed("model: required for a model report.", errors={"model": ["Required."]})
        model = rbac.get_visible(
            actor, RegisteredModel.objects.select_related("owner_team"), "registry.view", name=model_name
        )
        rbac.require(actor, GENERATE, model, audit_action="report.requested")
        report = Report(
            kind=kind,
            title=f"Model report: {model.name}",
            subject=f"model:{model.name}",
            model=model,
            owner_team_id=model.owner_team_id,
        )
    else:
        if period.since is None or period.until is None:
            raise ValidationFailed(
                "since and until: a period report needs both.",
                errors={"since" if period.since is None else "until": ["Required."]},
            )
        team = None
        if team_name:
            team = Team.objects.filter(name=team_name).first()
            if team is None:
                raise NotFound(f"No team {team_name}.")
        rbac.require(actor, GENERATE, team, audit_action="report.requested")
        where = f"team {team.name}" if team else "every team"
        report = Report(
            kind=kind, title=f"Period report: {where}", subject=f"team:{team.name}" if team else "", owner_team=team
        )
    report.since, report.until = period.since, period.until
    return _created(actor, report, chosen, related=report.model)


def _trail_extract(*, actor: Principal, params: dict, formats: list[str]) -> Report:
    if not isinstance(params, dict):
        raise ValidationFailed("filters: an object of audit filters.", errors={"filters": ["Not an object."]})
    params = {k: str(v) for k, v in params.items() if v not in (None, "")}
    parsed = parse_filters(params)
    rbac.require(actor, "audit.export", audit_action="report.requested")
    parsed = resolve_subject(parsed)  # an unknown subject is a 400, after the permission check
    shown = parsed.as_params()
    what = ", ".join(f"{k} {v}" for k, v in shown.items()) or "every event"
    report = Report(
        kind=ReportKind.TRAIL,
        title=f"Audit trail extract: {what}"[:300],
        subject=parsed.related,
        since=parsed.since,
        until=parsed.until,
        filters=shown,
    )
    return _created(actor, report, formats, related=None)


def _release_report(*, actor: Principal, release_id: Any, formats: list[str]) -> Report:
    if release_id in (None, ""):
        raise ValidationFailed("release: required for a release report.", errors={"release": ["Required."]})
    try:
        release_uuid = uuid.UUID(str(release_id))
    except ValueError:
        raise NotFound(f"No release {release_id}.") from None
    release = releases.release_get(actor=actor, release_id=release_uuid)
    rbac.require(actor, RELEASE, release, audit_action="report.requested")
    report = Report(
        kind=ReportKind.RELEASE,
        title=f"Release report: {release.model.name} v{release.version.number} to {release.environment.name}",
        subject=f"release:{release.public_id}",
        release=release,
        model_id=release.model_id,
        owner_team_id=release.owner_team_id,
    )
    return _created(actor, report, formats, related=release)


def _created(actor: Principal, report: Report, formats: list[str], *, related: Any) -> Report:
    report.formats = formats
    report.requested_by_id = actor.id if actor.kind == "user" else None
    report.requested_by_name = actor.name
    report.save()
    report.job = jobs.job_enqueue(kind=REPORT_JOB, target=report, params={"report_id": report.pk}, actor=actor)
    report.save(update_fields=["job"])
    period = {
        "since": report.since.isoformat() if report.since else None,
        "until": report.until.isoformat() if report.until else None,
    }
    audit.record(
        action="report.requested",
        actor=actor,
        target=report,
        related=related,
        after={"kind": report.kind, "subject": report.subject, "formats": formats, **period},
    )
    return report


# --- the worker's side -----------------------------------------------------------------------


@transaction.atomic
def report_started(*, report_id: int) -> Report | None:
    """Mark a report running (None when it is already finished: running its job again does nothing)."""
    report = Report.objects.select_for_update().filter(pk=report_id).first()
    if report is None or report.status in FINISHED:
        return None
    report.status, report.progress, report.message, report.error = ReportStatus.RUNNING, 0, "starting", ""
    report.save(update_fields=["status", "progress", "message", "error"])
    return report


def report_progress(*, report_id: int, percent: int, message: str) -> None:
    """The worker's progress on the report's row, for the page (not audited: the outcome is)."""
    Report.objects.filter(pk=report_id, status=ReportStatus.RUNNING).update(
        progress=max(0, min(100, int(percent))), message=message[:500]
    )


@transaction.atomic
def report_completed(
    *, report_id: int, files: dict[str, dict], checkpoint_size: int | None, checkpoint_root: str, events: int
) -> Report:
    """Record the stored files and the checkpoint the report was built against; ``report.generated``."""
    report = Report.objects.select_for_update().get(pk=report_id)
    report.status, report.progress, report.message = ReportStatus.SUCCEEDED, 100, "ready"
    report.files, report.events = files, events
    report.checkpoint_size, report.checkpoint_root = checkpoint_size, checkpoint_root
    report.finished_at = timezone.now()
    report.save()
    audit.record(
        action="report.generated",
        target=report,
        related=report.release or report.model or report.access_review,
        after={
            "files": {fmt: {"sha256": f["sha256"], "size": f["size"]} for fmt, f in files.items()},
            "checkpoint": {"tree_size": checkpoint_size, "root": checkpoint_root},
            "events": events,
        },
    )
    named_events.publish(
        "report.generated",
        payload={
            "report": str(report.public_id),
            "report_id": report.pk,
            "team_id": report.owner_team_id,
            "kind": report.kind,
            "title": report.title,
            "files": {
                fmt: {"sha256": f["sha256"], "size": f["size"], "store": f.get("store")} for fmt, f in files.items()
            },
            "checkpoint": {"tree_size": checkpoint_size, "root": checkpoint_root},
        },
        target=report,
    )
    return report


@transaction.atomic
def report_failed(*, report_id: int, reason: str) -> None:
    report = Report.objects.select_for_update().filter(pk=report_id).first()
    if report is None or report.status in FINISHED:
        return
    report.status, report.error, report.message = ReportStatus.FAILED, reason[:2000], "failed"
    report.finished_at = timezone.now()
    report.save(update_fields=["status", "error", "message", "finished_at"])
    audit.record(
        action="report.failed",
        outcome="failed",
        target=report,
        related=report.release or report.model or report.access_review,
        reason=reason,
    )


# --- downloads -------------------------------------------------------------------------------


@transaction.atomic
def report_download_start(*, actor: Principal, report_id: Any, fmt: str) -> DownloadLink:
    """Check ``reports.view``, record ``report.downloaded`` and sign a link for ``actor`` alone."""
    report = selectors.report_get(actor=actor, report_id=report_id)
    rbac.require(actor, VIEW, report, audit_action="report.downloaded")
    stored = report.file(fmt)
    if stored is None:
        state = "is still being generated" if not report.is_finished else f"has no {fmt} file"
        raise ReportNotReady(f"The report {state}.")
    audit.record(
        action="report.downloaded",
        actor=actor,
        target=report,
        related=report.release or report.model or report.access_review,
        after={"format": fmt, "sha256": stored["sha256"]},
        artifact_sha256=stored["sha256"],
    )
    payload = {"r": report.pk, "f": fmt, "p": [actor.kind, actor.id], "h": stored["sha256"]}
    token, expires_at = sign_link(payload, salt=SALT)
    return DownloadLink(
        url=reverse("api:report-file", kwargs={"token": token}),
        expires_at=expires_at,
        filename=selectors.filename(report, fmt),
        sha256=stored["sha256"],
        size=stored["size"],
    )

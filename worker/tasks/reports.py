"""Report jobs: gather a release's report, render and sign the PDF, build the evidence pack, store them.

The handler seals the audit trail and signs a fresh checkpoint first, so the report and the pack
cover every event committed before the job started and their proofs are against a head an
auditor can fetch; it reads the release as the person who asked for the report may see it.
Running the job twice is harmless: a finished report is left alone. A missing signing key or
certificate fails the report with a message that says which (never the key); anything else
unexpected fails it with "internal error" (the traceback goes to the log only).
"""

from __future__ import annotations

import io
import logging
import tempfile
from collections.abc import Callable
from typing import IO

from celery import shared_task
from django.template.loader import render_to_string
from django.utils import timezone

from apps.audit import checkpoints
from apps.audit.chain import format_time
from apps.audit.filters import EventFilter, apply_filters, parse_filters, resolve_subject
from apps.audit.models import AuditEvent
from apps.core.principals import Principal
from apps.core.storage import get_storage
from apps.jobs.models import Job
from apps.reports import overviews, schedules, selectors, services
from apps.reports.certificate import ReportSignerMissing, certificate_pem
from apps.reports.choices import ReportKind
from apps.reports.content import release_content
from apps.reports.models import Report
from worker.reports.pack import write_pack
from worker.reports.pdf import render_pdf, sign_pdf
from worker.reports.store import store_files
from worker.runner import JobFailed, LeaseLost, handles

logger = logging.getLogger(__name__)

INTERNAL_ERROR = "internal error"
PACK_IN_MEMORY = 32 * 1024 * 1024  # a pack larger than this is spooled to a temporary file while it is written


class Files:
    """The report's files as they are stored: their records, their contents (bytes, or the spooled file a large
    pack was written to) for the report store, and a way to remove them again when the report fails after
    storing some (nothing is left behind that no report refers to)."""

    def __init__(self) -> None:
        self.meta: dict[str, dict] = {}
        self.contents: dict[str, bytes | IO[bytes]] = {}

    def add(self, fmt: str, name: str, data: bytes | IO[bytes]) -> None:
        stream = io.BytesIO(data) if isinstance(data, bytes) else data
        stream.seek(0)
        stored = get_storage().save(stream, kind="reports")
        self.meta[fmt] = {"key": stored.key, "sha256": stored.sha256, "size": stored.size, "name": name}
        self.contents[fmt] = data

    def discard(self) -> None:
        for stored in self.meta.values():
            try:
                get_storage().delete(stored["key"])
            except Exception:  # the report is failed either way; a leftover object is logged, not raised
                logger.warning("could not remove %s of a failed report", stored["key"])
        self.meta.clear()

    def close(self) -> None:
        for content in self.contents.values():
            if not isinstance(content, bytes):
                content.close()


def _iso(value) -> str | None:
    return format_time(value) if value is not None else None


def _reader(job: Job) -> Principal:
    return Principal.from_dict(job.principal) if job.principal else Principal.system()


@shared_task(name="reports.schedules")
def run_schedules() -> int:
    """Request the reports of every due schedule (``apps.reports.schedules``); safe to repeat."""
    return len(schedules.schedules_run_due())


@handles(services.REPORT_JOB)
def generate_report(job: Job, report: Callable[[int, str], None]) -> dict:
    row = services.report_started(report_id=job.params["report_id"])
    if row is None:
        return {"skipped": "the report is already finished"}

    def progress(percent: int, message: str) -> None:
        report(percent, message)  # renews the job's lease
        services.report_progress(report_id=row.pk, percent=percent, message=message)

    files = Files()
    try:
        return _generate(row, _reader(job), progress, files)
    except LeaseLost:
        files.discard()
        raise
    except (checkpoints.CheckpointKeyMissing, ReportSignerMissing) as exc:
        files.discard()
        services.report_failed(report_id=row.pk, reason=str(exc))
        return {"status": "failed", "reason": str(exc)}
    except JobFailed as exc:  # a reason meant for people (an empty trail)
        files.discard()
        services.report_failed(report_id=row.pk, reason=str(exc))
        raise
    except Exception:
        files.discard()
        logger.exception("report %s failed unexpectedly", row.public_id)
        services.report_failed(report_id=row.pk, reason=INTERNAL_ERROR)
        raise JobFailed(INTERNAL_ERROR)
    finally:
        files.close()


def _content(row: Report, reader: Principal, head: int):
    """The report's template, its context and records, and the audit filter of its scope."""
    if row.kind == ReportKind.RELEASE:
        content = release_content(reader=reader, release=row.release)
        return "reports/release_report.html", content, EventFilter(related=row.subject)
    if row.kind == ReportKind.MODEL:
        content = overviews.model_content(reader=reader, model=row.model, since=row.since, until=row.until)
        return "reports/model_report.html", content, EventFilter(related=row.subject, since=row.since, until=row.until)
    if row.kind == ReportKind.TRAIL:
        scope = resolve_subject(parse_filters(row.filters))
        events = apply_filters(AuditEvent.objects.filter(seq__isnull=False, seq__lte=head), scope)
        return "reports/trail_report.html", overviews.trail_content(events_qs=events), scope
    if row.kind == ReportKind.ACCESS_REVIEW:
        review = row.access_review
        content = overviews.access_review_content(review=review)
        scope = EventFilter(target_type="access_review", target_id=str(review.public_id))
        return "reports/access_review_report.html", content, scope
    content = overviews.period_content(reader=reader, team=row.owner_team, since=row.since, until=row.until)
    # one team's period: the events about the team (its models, datasets, members and bindings); else every event
    related = f"team:{row.owner_team.name}" if row.owner_team_id else ""
    return "reports/period_report.html", content, EventFilter(related=related, since=row.since, until=row.until)


def _generate(row: Report, reader: Principal, progress, stored: Files) -> dict:
    progress(5, "sealing the audit trail and signing a checkpoint")
    cp = checkpoints.checkpoint_write()
    if cp is None:
        raise JobFailed("the audit trail is empty: there is nothing to report on")
    row = Report.objects.select_related("release", "model", "owner_team", "access_review").get(pk=row.pk)
    progress(15, "gathering the records")
    template, content, scope_filter = _content(row, reader, cp.seq)
    filters = resolve_subject(scope_filter)
    events = apply_filters(AuditEvent.objects.filter(seq__isnull=False, seq__lte=cp.seq), filters).count()
    info = {
        "kind": row.get_kind_display(),
        "scope": row.title.split(": ", 1)[-1] + (f" (audit subject {row.subject})" if row.subject else ""),
        "period_start": row.since,
        "period_end": row.until,
        "generated_by": row.requested_by_name or reader.name,
        "generated_at": timezone.now(),
        "checkpoint_tree_size": cp.seq,
        "checkpoint_root_hash": cp.root,
    }
    html = render_to_string(template, {**content.context, "report": info, "events": events})
    base = row.title.split(": ", 1)[-1].replace(" ", "-")
    if "html" in row.formats:
        stored.add("html", selectors.filename(row, "html"), html.encode())
    pdf = None
    if "pdf" in row.formats or "pack" in row.formats:
        progress(30, "rendering the PDF")
        pdf = sign_pdf(render_pdf(html), reason=f"Assay {row.get_kind_display().lower()}: {base}")
        if "pdf" in row.formats:
            stored.add("pdf", selectors.filename(row, "pdf"), pdf)
    if "pack" in row.formats:
        progress(60, "building the evidence pack")
        # a pack over a long period can be large: it is written to a file that stays in memory while small
        pack = tempfile.SpooledTemporaryFile(max_size=PACK_IN_MEMORY)  # noqa: SIM115 - Files.close() closes it
        write_pack(
            pack,
            scope={
                "kind": row.kind,
                "subject": row.subject,
                "title": row.title,
                "related": scope_filter.related,
                "target_type": scope_filter.target_type or None,
                "target_id": scope_filter.target_id or None,
                "action": scope_filter.action or None,
                "outcome": scope_filter.outcome or None,
                "actor": scope_filter.actor or None,
                "since": _iso(row.since),
                "until": _iso(row.until),
                "report": str(row.public_id),
            },
            filters=filters,
            files={**content.records, "report.html": html.encode()},
            report_pdf=pdf,
            certificate_pem=certificate_pem(),
            generated_by=info["generated_by"],
            checkpoint=cp,
            progress=lambda percent, message: progress(60 + percent * 35 // 100, message),
        )
        stored.add("pack", selectors.filename(row, "pack"), pack)
    if row.schedule_id is not None:
        progress(96, "writing to the report store")
        kept = store_files(row, {fmt: (f["name"], stored.contents[fmt]) for fmt, f in stored.meta.items()})
        for fmt, where in kept.items():
            stored.meta[fmt].update(store=where["uri"], object_lock=where["object_lock"])
    progress(98, "recording the report")
    services.report_completed(
        report_id=row.pk, files=stored.meta, checkpoint_size=cp.seq, checkpoint_root=cp.root, events=events
    )
    return {"report": str(row.public_id), "files": sorted(stored.meta), "events": events}

"""Report reads: the reports a principal may see (``reports.view``, by the report's model and team)."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet

from apps.core.errors import Denied, NotFound
from apps.core.principals import Principal
from apps.rbac import services as rbac
from apps.registry.downloads import safe_filename

from .models import Report

VIEW = "reports.view"


def report_list(*, actor: Principal, release_id=None) -> QuerySet[Report]:
    """Reports in the actor's scope, newest first; 403 for someone who may see no report anywhere."""
    if not rbac.has_anywhere(actor, VIEW):
        rbac.require(actor, VIEW, audit_action="reports.denied")
    qs = rbac.restrict(actor, Report.objects.select_related("release", "model", "owner_team", "job"), VIEW)
    if release_id is not None:
        qs = qs.filter(release__public_id=release_id)
    return qs


def can_view_reports(actor: Principal) -> bool:
    return rbac.has_anywhere(actor, VIEW)


def can_generate(actor: Principal, obj=None) -> bool:
    """May ``actor`` ask for a model's report (``obj`` the model) or a period report (anywhere, without one)?"""
    return (
        rbac.allows(actor, "reports.generate", obj) if obj is not None else rbac.has_anywhere(actor, "reports.generate")
    )


def can_report_release(actor: Principal, release) -> bool:
    return rbac.allows(actor, "reports.release", release)


def certificate_check(*, actor: Principal) -> None:
    """The report certificate is public, but served to people who work with reports (403 otherwise)."""
    if not rbac.has_anywhere(actor, VIEW):
        raise Denied(
            "Your account lacks the 'reports.view' permission anywhere.",
            action=VIEW,
            audit_action="reports.denied",
            visible=True,
        )


def report_get(*, actor: Principal, report_id: Any) -> Report:
    """A report the actor may see; a refusal is audited (403 for those who may see its release, else 404)."""
    try:
        public_id = uuid.UUID(str(report_id))
    except ValueError:
        raise NotFound("No report matches the given query.") from None
    report = Report.objects.select_related("release", "model", "owner_team").filter(public_id=public_id).first()
    if report is None:
        raise NotFound("No report matches the given query.")
    rbac.require(actor, VIEW, report, audit_action="report.denied")  # 403 for who sees the release, else 404
    return report


def filename(report: Report, fmt: str) -> str:
    suffix = {"pdf": ".pdf", "html": ".html", "pack": "-evidence-pack.zip"}[fmt]
    return safe_filename(report.title.split(": ", 1)[-1].replace(" ", "-")) + suffix

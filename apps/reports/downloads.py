"""Following a report's download link: a read that checks the link and the permission, then streams the bytes.

The link was signed by ``apps.reports.services.report_download_start`` (which audited the download)
for one principal; here it is checked again (altered: 403, expired: 410, someone else's: 403, the
permission revoked meanwhile: 403) and the stored bytes stream out verified against their recorded
SHA-256 (``apps.registry.downloads.verified_chunks``). Nothing is written unless a person is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from apps.core.errors import Denied
from apps.core.principals import Principal
from apps.core.storage import get_storage
from apps.rbac import services as rbac
from apps.registry.downloads import LinkInvalid, open_link, verified_chunks

from .choices import ReportFormat
from .models import Report
from .selectors import VIEW, filename
from .services import SALT

CONTENT_TYPES = {
    ReportFormat.PDF: "application/pdf",
    ReportFormat.HTML: "text/html; charset=utf-8",
    ReportFormat.PACK: "application/zip",
}


@dataclass(frozen=True)
class ReportDownload:
    report: Report
    filename: str
    content_type: str
    sha256: str
    size: int
    chunks: Iterator[bytes]


def report_download_open(*, actor: Principal, token: str) -> ReportDownload:
    """Follow a download link: check it and the permission again, then stream the verified bytes (a read)."""
    payload = open_link(token, salt=SALT)
    if payload.get("f") not in ReportFormat.values:
        raise LinkInvalid("This download link is not valid. Ask for a new one.")
    report = Report.objects.select_related("release").filter(pk=payload["r"]).first()
    if report is None:
        raise LinkInvalid("This download link names a report that no longer exists.")
    if list(actor.key) != payload["p"]:
        raise Denied(
            "This download link was issued to another account; ask for your own.",
            action=VIEW,
            audit_action="report.download_denied",
            target=report,
            visible=True,
        )
    rbac.require(actor, VIEW, report, audit_action="report.download_denied")
    stored = report.file(payload["f"])
    if stored is None or stored["sha256"] != payload["h"]:
        raise LinkInvalid("This download link names a file the report no longer holds. Ask for a new one.")
    stream = get_storage().open(stored["key"])
    name = filename(report, payload["f"])
    return ReportDownload(
        report=report,
        filename=name,
        content_type=CONTENT_TYPES[payload["f"]],
        sha256=stored["sha256"],
        size=stored["size"],
        chunks=verified_chunks(stream, sha256=stored["sha256"], size=stored["size"], what=name),
    )

"""Report PDFs: pages rendered per second and the cost of signing, at a few report sizes.

    .venv/bin/python benchmarks/report_pdf_bench.py [--rows 50 200 800] [--rounds 3]

Renders the base report template (``templates/reports/base_report.html``: paged CSS, running
headers, repeated table headers, wrapped digests) holding a table of ``rows`` audit events with
their full hashes, the way the release report prints them, through WeasyPrint
(``worker.reports.pdf.render_pdf``), then signs it (PAdES, ``sign_pdf``) with a throwaway key and
certificate. It prints, per size: pages, render seconds (median of ``--rounds``), pages per
second, and signing milliseconds. Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import audit_bench  # noqa: E402
import machine  # noqa: E402

TEMPLATE = """{% extends "reports/base_report.html" %}{% block title %}Benchmark report{% endblock %}
{% block content %}<table class="report-table"><thead><tr><th>Seq</th><th>Action</th><th>Actor</th>
<th>Event hash</th></tr></thead><tbody>{% for r in rows %}<tr><td>{{ r.seq }}</td><td>{{ r.action }}</td>
<td>{{ r.actor }}</td><td><code class="digest">{{ r.hash }}</code></td></tr>{% endfor %}</tbody></table>
{% endblock %}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[50, 200, 800], help="table rows per report")
    parser.add_argument("--rounds", type=int, default=3, help="renders to take the median of")
    args = parser.parse_args()
    tmp = audit_bench.setup_django()
    print(machine.line())
    from django.conf import settings
    from django.template import engines
    from pypdf import PdfReader

    from apps.reports.certificate import load_report_signer
    from worker.reports.pdf import render_pdf, sign_pdf

    settings.ASSAY_REPORT_SIGNING_KEY_FILE = f"{tmp}/report.pem"
    settings.ASSAY_REPORT_CERTIFICATE_FILE = f"{tmp}/report.crt"
    signer = load_report_signer(create=True)
    template = engines["django"].from_string(TEMPLATE)
    report = {
        "kind": "Release report",
        "scope": "benchmark",
        "generated_by": "bench",
        "generated_at": datetime.now(UTC),
        "checkpoint_tree_size": 1_000_000,
        "checkpoint_root_hash": "ab" * 32,
    }
    print(f"{'rows':>6} {'pages':>6} {'render s':>9} {'pages/s':>8} {'sign ms':>8}")
    for n in args.rows:
        rows = [
            {
                "seq": i,
                "action": "release.approval_recorded",
                "actor": "carol",
                "hash": hashlib.sha256(b"%d" % i).hexdigest(),
            }
            for i in range(1, n + 1)
        ]
        html = template.render({"report": report, "rows": rows})
        times, pdf = [], b""
        for _ in range(args.rounds):
            started = time.perf_counter()
            pdf = render_pdf(html)
            times.append(time.perf_counter() - started)
        pages = len(PdfReader(io.BytesIO(pdf)).pages)
        started = time.perf_counter()
        sign_pdf(pdf, reason="benchmark", signer=signer)
        signing = (time.perf_counter() - started) * 1000
        render = statistics.median(times)
        print(f"{n:>6} {pages:>6} {render:>9.2f} {pages / render:>8.1f} {signing:>8.1f}")
    print(machine.line())


if __name__ == "__main__":
    main()

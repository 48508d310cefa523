"""Report PDFs: render HTML with WeasyPrint, sign it (PAdES B-B with pyHanko), validate a signature.

Only workers import this module (WeasyPrint and pyHanko are heavy and need pango); the web process publishes the
certificate through apps/reports/certificate.py. Rendering fetches nothing from the network: stylesheets and
images come from the project's ``static/`` folder or ``data:`` URLs, so a report looks the same wherever it is
made and a template cannot be made to reach an internal address.
"""

from __future__ import annotations

import asyncio
import io
import mimetypes
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore
from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

from apps.reports.certificate import ReportSigningKey, load_report_signer

SIGNATURE_FIELD = "AssayReport"


def static_dirs() -> list[Path]:
    """The folders a report may load files from: the project's static folders (STATICFILES_DIRS)."""
    return [Path(folder).resolve() for folder in settings.STATICFILES_DIRS]


class ReportURLFetcher(URLFetcher):
    """Serves ``data:`` URLs and files under the static folders; refuses everything else (http, https, ftp,
    other files). WeasyPrint logs a refused resource and renders without it.

    A ``file:`` URL whose path starts with STATIC_URL (``/static/css/x.css``: what ``{% static %}`` gives,
    resolved against a ``file:`` base URL) is read from the static folders, so one ``<link>`` serves both the
    browser (through the static files app) and WeasyPrint.
    """

    def __init__(self):
        super().__init__(allowed_protocols=("file", "data"), allow_redirects=False)

    def fetch(self, url, headers=None):
        scheme = url.split(":", 1)[0].lower()
        if scheme == "data":
            return super().fetch(url, headers)
        if scheme != "file":
            raise ValueError(f"reports load no remote resources: {url}")
        path = self._static_file(unquote(urlparse(url).path))
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(path.as_uri(), path.read_bytes(), {"Content-Type": content_type})

    @staticmethod
    def _static_file(url_path: str) -> Path:
        roots = static_dirs()
        static_prefix = urlparse(settings.STATIC_URL).path
        candidates = [Path(url2pathname(url_path)).resolve()]
        if url_path.startswith(static_prefix):
            candidates += [(root / url2pathname(url_path.removeprefix(static_prefix))).resolve() for root in roots]
        for candidate in candidates:
            if any(candidate.is_relative_to(root) for root in roots) and candidate.is_file():
                return candidate
        raise ValueError(f"reports load files from the static folders only: {url_path}")


def render_pdf(html: str, *, base_url: str | None = None) -> bytes:
    """Render an HTML document (a report template's output) to PDF bytes.

    ``base_url`` resolves relative links; by default the project's static folder, so ``{% static %}`` links and
    paths relative to ``static/`` both work.
    """
    if base_url is None:
        base_url = static_dirs()[0].as_uri() + "/"
    return HTML(string=html, base_url=base_url, url_fetcher=ReportURLFetcher()).write_pdf()


def sign_pdf(
    pdf: bytes,
    *,
    reason: str,
    location: str = "",
    signer: tuple[ReportSigningKey, x509.Certificate] | None = None,
) -> bytes:
    """Sign ``pdf`` (PAdES baseline B-B, SHA-256) as an incremental update, with the installation's report key.

    ``signer`` is a (private key, certificate) pair; by default ``load_report_signer()``'s. The signature covers
    the whole output file; its field is named ``AssayReport``.
    """
    key, certificate = signer if signer is not None else load_report_signer()
    cert = _asn1_certificate(certificate)
    simple_signer = signers.SimpleSigner(
        signing_cert=cert,
        signing_key=asn1_keys.PrivateKeyInfo.load(
            key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        ),
        cert_registry=SimpleCertificateStore.from_certs([cert]),
    )
    metadata = PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD,
        subfilter=SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        reason=reason,
        location=location or None,
    )
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    out = _outside_event_loop(signers.sign_pdf, writer, metadata, signer=simple_signer)
    return out.getvalue()


def _outside_event_loop(fn, *args, **kwargs):
    """Call ``fn`` here, or in a thread of its own when this thread runs an asyncio loop: pyHanko's
    synchronous API calls ``asyncio.run``, which a running loop refuses (a worker has none; a caller
    inside async code, such as a browser test driving Playwright, has one)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn(*args, **kwargs)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args, **kwargs).result()


def validate_pdf(pdf: bytes, *, certificate: x509.Certificate) -> dict:
    """Check the last signature of ``pdf`` with ``certificate`` as the only trust root, offline.

    ``intact``: the signed bytes are unchanged; ``trusted``: the signature verifies and chains to
    ``certificate``; ``whole_file``: nothing was added after the signed revision. A changed file can still
    report pyHanko's ``valid`` as True, so this judges by ``intact``, ``bottom_line`` and ``coverage``.
    """
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    if not reader.embedded_signatures:
        return {"intact": False, "trusted": False, "whole_file": False, "signer": ""}
    embedded = reader.embedded_signatures[-1]
    context = ValidationContext(trust_roots=[_asn1_certificate(certificate)], allow_fetching=False)
    status = _outside_event_loop(validate_pdf_signature, embedded, signer_validation_context=context)
    return {
        "intact": bool(status.intact),
        "trusted": bool(status.intact and status.trusted and status.bottom_line),
        "whole_file": status.coverage == SignatureCoverageLevel.ENTIRE_FILE,
        "signer": status.signing_cert.subject.human_friendly if status.signing_cert is not None else "",
    }


def _asn1_certificate(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))

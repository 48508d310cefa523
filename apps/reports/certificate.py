"""The installation's report-signing key and certificate, kept in two files outside the database.

Report PDFs are signed (PAdES, worker/reports/pdf.py) with an ECDSA P-256 key whose self-signed X.509
certificate anyone may download to check a report offline (scripts/pdf_signature.py). The embedded setup makes
both on first use (``create=True``); a production operator drops in a CA-issued pair instead (ECDSA P-256 or
RSA of 2048 bits or more) at ASSAY_REPORT_SIGNING_KEY_FILE and ASSAY_REPORT_CERTIFICATE_FILE.

Of the signing libraries only ``cryptography`` is imported here: the web process imports this module to publish
the certificate (pyHanko and WeasyPrint are for workers, in worker/reports/pdf.py).
"""

from __future__ import annotations

import datetime
import hashlib
import os
import socket
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from django.conf import settings

ReportSigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

VALIDITY = datetime.timedelta(days=3653)  # ten years, leap days included
# When another process is creating the pair, how long a loader with create=True waits for its certificate.
CREATION_WAIT_SECONDS = 5.0


class ReportSignerMissing(RuntimeError):
    """The report-signing key or certificate is absent, unreadable, of the wrong kind, or not a pair."""


def _key_path() -> Path:
    return Path(settings.ASSAY_REPORT_SIGNING_KEY_FILE)


def _certificate_path() -> Path:
    return Path(settings.ASSAY_REPORT_CERTIFICATE_FILE)


def load_report_signer(*, create: bool = False) -> tuple[ReportSigningKey, x509.Certificate]:
    """The report-signing private key and its certificate, checked to be a pair.

    ``create`` makes a new ECDSA P-256 key (mode 0600) and a self-signed certificate when neither file exists:
    the embedded setup uses it; production provides its own pair. Raises ``ReportSignerMissing`` naming the
    file and setting at fault (never the key material).
    """
    key_path, cert_path = _key_path(), _certificate_path()
    if create and not key_path.exists() and not cert_path.exists():
        _create_pair(key_path, cert_path)
    if create and key_path.exists() and not cert_path.exists():
        _wait_for(cert_path)  # another process won the race to create the pair and is writing its certificate
    key = _load_key(key_path)
    certificate = _load_certificate(cert_path, key_path=key_path)
    if _spki(certificate.public_key()) != _spki(key.public_key()):
        raise ReportSignerMissing(
            f"the report certificate {cert_path} (ASSAY_REPORT_CERTIFICATE_FILE) is not for the key "
            f"{key_path} (ASSAY_REPORT_SIGNING_KEY_FILE): install the matching pair"
        )
    return key, certificate


def report_certificate() -> x509.Certificate:
    """The report certificate alone: what the web process publishes needs no access to the private key."""
    return _load_certificate(_certificate_path(), key_path=None)


def certificate_pem() -> bytes:
    """The report certificate as PEM, as offered for download."""
    return report_certificate().public_bytes(serialization.Encoding.PEM)


def certificate_fingerprint() -> str:
    """SHA-256 of the report certificate's DER encoding, lowercase hex (what people compare by eye)."""
    return hashlib.sha256(report_certificate().public_bytes(serialization.Encoding.DER)).hexdigest()


def _load_key(path: Path) -> ReportSigningKey:
    if not path.exists():
        raise ReportSignerMissing(
            f"no report signing key at {path} (ASSAY_REPORT_SIGNING_KEY_FILE): install the key and its certificate "
            "(ASSAY_REPORT_CERTIFICATE_FILE), or let the embedded setup create both"
        )
    try:
        key = serialization.load_pem_private_key(_read(path, "ASSAY_REPORT_SIGNING_KEY_FILE"), password=None)
    except (ValueError, TypeError) as exc:  # TypeError: an encrypted key; the message of either names no secret
        raise ReportSignerMissing(
            f"{path} (ASSAY_REPORT_SIGNING_KEY_FILE) is not an unencrypted PEM private key"
        ) from exc
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048:
        return key
    raise ReportSignerMissing(
        f"{path} (ASSAY_REPORT_SIGNING_KEY_FILE) holds a key of the wrong type: "
        "report signing needs ECDSA P-256 or RSA of at least 2048 bits"
    )


def _load_certificate(path: Path, *, key_path: Path | None) -> x509.Certificate:
    if not path.exists():
        detail = f" but its key {key_path} exists" if key_path is not None and key_path.exists() else ""
        raise ReportSignerMissing(
            f"no report certificate at {path} (ASSAY_REPORT_CERTIFICATE_FILE){detail}: install the certificate "
            "for ASSAY_REPORT_SIGNING_KEY_FILE's key"
        )
    try:
        return x509.load_pem_x509_certificate(_read(path, "ASSAY_REPORT_CERTIFICATE_FILE"))
    except ValueError as exc:
        raise ReportSignerMissing(f"{path} (ASSAY_REPORT_CERTIFICATE_FILE) is not a PEM X.509 certificate") from exc


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ReportSignerMissing(f"cannot read {path} ({setting}): {exc.strerror}") from exc


def _spki(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _create_pair(key_path: Path, cert_path: Path) -> None:
    """Write a new key, then its certificate. The key file is the lock: whoever creates it writes the certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    try:
        _write_exclusive(key_path, pem, mode=0o600)
    except FileExistsError:
        return  # another process is creating the pair: the caller waits for its certificate
    except OSError as exc:
        raise ReportSignerMissing(
            f"cannot create the report signing key {key_path} (ASSAY_REPORT_SIGNING_KEY_FILE): {exc.strerror}"
        ) from exc
    certificate = _self_signed_certificate(key)
    try:
        _write_exclusive(cert_path, certificate.public_bytes(serialization.Encoding.PEM), mode=0o644)
    except OSError as exc:
        raise ReportSignerMissing(
            f"cannot create the report certificate {cert_path} (ASSAY_REPORT_CERTIFICATE_FILE): {exc.strerror}"
        ) from exc


def _write_exclusive(path: Path, data: bytes, *, mode: int) -> None:
    """Write ``data`` to a private temporary file, then link it into place: readers never see half a file, and
    the link fails (FileExistsError) when the file exists, as O_EXCL would."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # created with mode 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(temporary, mode)
        os.link(temporary, path)
    finally:
        os.unlink(temporary)


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + CREATION_WAIT_SECONDS
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def _self_signed_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    host = socket.gethostname() or "assay"
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"Assay report signing ({host})"[:64]),  # CN is at most 64
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Assay"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    public_key = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # a verifier whose clock is a little behind
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,  # nonRepudiation
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )

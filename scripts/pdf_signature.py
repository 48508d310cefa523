#!/usr/bin/env python3
"""Check the signature of an Assay report PDF with Python's standard library and ``cryptography`` only.

usage: pdf_signature.py REPORT.pdf REPORT-SIGNING.crt
Prints "ok: ..." and exits 0 when the report is signed by that certificate and unchanged; otherwise prints each
problem and exits 1. Importable: ``check_pdf_signature(pdf, certificate_pem)`` returns the problems in words.

What is checked (PDF 2.0 section 12.8, PAdES baseline B-B; RFC 5652 CMS), so an auditor can reimplement it:
1. The last ``/ByteRange [a b c d]`` in the file belongs to the report's signature (Assay signs once, last).
   The signed bytes are ``file[a:a+b] + file[c:c+d]``. a must be 0; the gap ``file[b:c]`` must be exactly the
   ``<hex>`` string that follows the signature dictionary's ``/Contents``; c+d must be the file's length, since
   anything after it was added after signing ("bytes after the signed revision").
2. The hex string decodes to a DER ``ContentInfo`` of type signedData (1.2.840.113549.1.7.2), zero-padded,
   detached. Its SignerInfo holds: sid, digestAlgorithm, signedAttrs ([0], tag 0xA0), signatureAlgorithm,
   signature (OCTET STRING).
3. The messageDigest signed attribute (1.2.840.113549.1.9.4) must equal the SHA-256 of the signed bytes.
4. The signer (sid: issuer and serial number, or subject key identifier) must be the given certificate, and a
   certificate embedded in the CMS for that signer must be byte for byte the given one.
5. The signature is over the DER of the signed attributes as a SET: the same bytes with the first byte 0xA0
   replaced by 0x31. It must verify with the certificate's public key: ECDSA (signature DER-encoded) or RSA
   PKCS#1 v1.5, with the digest algorithm of step 3 (SHA-256; SHA-384 and SHA-512 are accepted too).
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

BYTE_RANGE = re.compile(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]")
HEX_STRING = re.compile(rb"<[0-9A-Fa-f\s]*>")
CONTENTS_KEY = re.compile(rb"/Contents\s*$")
SIGNED_DATA = bytes.fromhex("2a864886f70d010702")
MESSAGE_DIGEST = bytes.fromhex("2a864886f70d010904")
RSA_PSS = bytes.fromhex("2a864886f70d01010a")
DIGESTS = {  # digest algorithm OID (DER content bytes) -> (hashlib name, cryptography hash)
    bytes.fromhex("608648016503040201"): ("sha256", hashes.SHA256()),
    bytes.fromhex("608648016503040202"): ("sha384", hashes.SHA384()),
    bytes.fromhex("608648016503040203"): ("sha512", hashes.SHA512()),
}


class Der:
    """One DER element read at ``pos`` of ``data``: ``tag`` (one byte), ``value`` (contents), ``raw`` (whole
    element, header included). Definite lengths only; CMS from a PDF signer is DER."""

    def __init__(self, data: bytes, pos: int = 0):
        if pos + 2 > len(data):
            raise ValueError("truncated element")
        self.tag = data[pos]
        if self.tag & 0x1F == 0x1F:
            raise ValueError("multi-byte tag")
        length, start = data[pos + 1], pos + 2
        if length == 0x80:
            raise ValueError("indefinite length")
        if length & 0x80:
            count = length & 0x7F
            length, start = int.from_bytes(data[start : start + count], "big"), start + count
        if start + length > len(data):
            raise ValueError("element longer than its container")
        self.value, self.raw = data[start : start + length], data[pos : start + length]

    def children(self) -> list[Der]:
        items, pos = [], 0
        while pos < len(self.value):
            items.append(Der(self.value, pos))
            pos += len(items[-1].raw)
        return items


def oid_text(content: bytes) -> str:
    """Dotted form of an OBJECT IDENTIFIER's content bytes, for messages."""
    parts, number = [], 0
    for byte in content:
        number = (number << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(number)
            number = 0
    first = min(parts[0] // 40, 2) if parts else 0
    return ".".join(str(n) for n in [first, parts[0] - 40 * first, *parts[1:]]) if parts else "?"


def read_signer_info(blob: bytes) -> dict:
    """The parts of a CMS SignedData's (first) SignerInfo this check needs, and the embedded certificates."""
    content_type, explicit = Der(blob).children()[:2]
    if content_type.tag != 0x06 or content_type.value != SIGNED_DATA or explicit.tag != 0xA0:
        raise ValueError("not a CMS SignedData")
    signed_data = Der(explicit.value).children()
    certificates = [cert.raw for part in signed_data if part.tag == 0xA0 for cert in part.children()]
    signer_infos = signed_data[-1].children()
    if signed_data[-1].tag != 0x31 or not signer_infos:
        raise ValueError("no SignerInfo")
    fields = signer_infos[0].children()
    sid, digest_algorithm, attrs = fields[1], fields[2], fields[3]
    if attrs.tag != 0xA0:
        raise ValueError("no signed attributes")
    signature_algorithm, signature = fields[4], fields[5]
    if signature.tag != 0x04:
        raise ValueError("no signature value")
    digests = [
        value.value
        for attr in attrs.children()
        if attr.children()[0].value == MESSAGE_DIGEST
        for value in attr.children()[1].children()
    ]
    if len(digests) != 1:
        raise ValueError("not exactly one messageDigest attribute")
    return {
        "sid": sid,
        "digest_oid": digest_algorithm.children()[0].value,
        "signed_attrs": attrs.raw,
        "message_digest": digests[0],
        "signature_oid": signature_algorithm.children()[0].value,
        "signature": signature.value,
        "certificates": certificates,
    }


def identifies(sid: Der, certificate_der: bytes) -> bool:
    """Whether a SignerInfo's sid names this certificate: issuer + serial number, or [0] subject key identifier."""
    if sid.tag == 0x80:
        try:
            ski = x509.load_der_x509_certificate(certificate_der).extensions.get_extension_for_class(
                x509.SubjectKeyIdentifier
            )
        except (ValueError, x509.ExtensionNotFound):
            return False
        return ski.value.digest == sid.value
    tbs = Der(certificate_der).children()[0].children()
    tbs = tbs[1:] if tbs[0].tag == 0xA0 else tbs  # skip the explicit [0] version
    issuer, serial = sid.children()[:2]
    return issuer.raw == tbs[2].raw and serial.value == tbs[0].value  # tbs: serial, signature algorithm, issuer


def check_pdf_signature(pdf: bytes, certificate_pem: bytes) -> list[str]:
    """The problems with ``pdf``'s last signature checked against ``certificate_pem``; [] when it is good."""
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem)
    except ValueError:
        return ["the certificate is not a PEM X.509 certificate"]
    ranges = list(BYTE_RANGE.finditer(pdf))
    if not ranges:
        return ["no signature"]
    a, b, c, d = (int(n) for n in ranges[-1].groups())
    if a != 0 or not 0 < b < c or c + d > len(pdf):
        return [f"the signature's byte range [{a} {b} {c} {d}] does not fit the file"]
    if not HEX_STRING.fullmatch(pdf, b, c) or not CONTENTS_KEY.search(pdf[max(0, b - 64) : b]):
        return ["the gap in the signed byte range is not the signature's /Contents string"]
    problems = []
    if c + d < len(pdf):
        problems.append(f"signature does not cover the whole file ({len(pdf) - c - d} bytes after the signed revision)")
    try:
        signer = read_signer_info(bytes.fromhex(pdf[b + 1 : c - 1].decode("ascii")))
    except (ValueError, IndexError) as exc:
        return [*problems, f"the signature is not a readable CMS SignedData ({exc})"]
    if signer["digest_oid"] not in DIGESTS:
        return [*problems, f"the signature uses digest algorithm {oid_text(signer['digest_oid'])}, not SHA-2"]
    hash_name, hash_algorithm = DIGESTS[signer["digest_oid"]]
    document = hashlib.new(hash_name)
    document.update(memoryview(pdf)[a : a + b])
    document.update(memoryview(pdf)[c : c + d])
    if document.digest() != signer["message_digest"]:
        problems.append("document digest does not match the signed digest (the signed bytes were changed)")
    given_der = certificate.public_bytes(Encoding.DER)
    try:
        embedded = [der for der in signer["certificates"] if identifies(signer["sid"], der)]
        same_signer = identifies(signer["sid"], given_der) and all(der == given_der for der in embedded)
    except (ValueError, IndexError):
        same_signer = False
    if not same_signer:
        return [*problems, "signed by a different certificate"]
    signed_attrs = b"\x31" + signer["signed_attrs"][1:]  # [0] IMPLICIT -> SET OF, as the signer hashed it
    public_key = certificate.public_key()
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signer["signature"], signed_attrs, ec.ECDSA(hash_algorithm))
        elif isinstance(public_key, rsa.RSAPublicKey) and signer["signature_oid"] != RSA_PSS:
            public_key.verify(signer["signature"], signed_attrs, padding.PKCS1v15(), hash_algorithm)
        else:
            problems.append("the signature's algorithm is not supported (ECDSA or RSA PKCS#1 v1.5)")
    except InvalidSignature:
        problems.append("signature does not verify with the published certificate")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    pdf, certificate_pem = Path(argv[1]).read_bytes(), Path(argv[2]).read_bytes()
    problems = check_pdf_signature(pdf, certificate_pem)
    for problem in problems:
        print(f"FAIL: {argv[1]}: {problem}")
    if problems:
        return 1
    subject = x509.load_pem_x509_certificate(certificate_pem).subject.rfc4514_string()
    print(f"ok: {argv[1]} ({len(pdf)} bytes) is signed by {subject} and unchanged since")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""Evidence packs (``assay-evidence-pack/1``): a zip an auditor checks offline with ``scripts/verify_pack.py``.

A pack holds the audit events in a scope (JSON Lines, chain fields included), an RFC 9162 inclusion proof for
each against one signed checkpoint, that checkpoint, the public keys, the caller's record files, optionally the
signed report PDF, and a manifest listing every file with its SHA-256. The manifest is signed with the audit
signing key (the key that signs the checkpoints, so one published key checks both): it states the scope and the
sequence numbers of its events, so an event left out of ``events.jsonl`` is detected. The format is documented in
docs/evidence-pack.md.

Building costs O(events in scope × log(trail)): the events come from the export's keyset-paginated reader and the
proofs from ``TreeReader.inclusion`` in batches, never from a walk over the whole trail.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from datetime import UTC
from typing import IO

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.utils import timezone

from apps.audit import checkpoints, merkle, notes, tree
from apps.audit.chain import format_time
from apps.audit.checkpoints import Checkpoint
from apps.audit.exports import iter_export_rows, jsonl_line
from apps.audit.filters import EventFilter

FORMAT = "assay-evidence-pack/1"
SIGNATURE_DOMAIN = b"assay-evidence-pack:v1\n"
PROOF_BATCH = 5000  # seqs per TreeReader: bounds the subtree hashes held at once

MANIFEST, SIGNATURE = "manifest.json", "manifest.sig.json"
CHECKPOINT, EVENTS, PROOFS = "checkpoint.json", "events.jsonl", "proofs.jsonl"
AUDIT_KEY, AUDIT_VKEY = "keys/audit-log.pem", "keys/audit-log.vkey"
REPORT, REPORT_CERTIFICATE = "report.pdf", "keys/report-signing.crt"
# The pack's own names (and the folder of its keys): a caller's file may take none of them.
RESERVED = frozenset({MANIFEST, SIGNATURE, CHECKPOINT, EVENTS, PROOFS, REPORT, "keys"})

Progress = Callable[[int, str], None]


def build_pack(
    *,
    scope: dict,
    filters: EventFilter,
    files: dict[str, bytes],
    report_pdf: bytes | None,
    certificate_pem: bytes | None,
    generated_by: str,
    checkpoint: Checkpoint | None = None,
    progress: Progress | None = None,
) -> bytes:
    """The evidence pack for the events ``filters`` selects, as zip bytes (``write_pack`` into memory)."""
    buffer = io.BytesIO()
    write_pack(
        buffer,
        scope=scope,
        filters=filters,
        files=files,
        report_pdf=report_pdf,
        certificate_pem=certificate_pem,
        generated_by=generated_by,
        checkpoint=checkpoint,
        progress=progress,
    )
    return buffer.getvalue()


def write_pack(
    out: IO[bytes],
    *,
    scope: dict,
    filters: EventFilter,
    files: dict[str, bytes],
    report_pdf: bytes | None,
    certificate_pem: bytes | None,
    generated_by: str,
    checkpoint: Checkpoint | None = None,
    progress: Progress | None = None,
) -> None:
    """Write the evidence pack for the events ``filters`` selects into ``out`` (a file, for a large scope).

    ``scope`` is the caller's statement of what the pack covers (a JSON object, copied into the signed manifest).
    With ``checkpoint=None`` the trail is sealed and a fresh tree head signed and stored first
    (``checkpoint_write``), so every event committed before the call is covered; a given checkpoint must carry a
    signed note and be signed by the current audit key. ``files`` are further members (``records/...``),
    opaque to the verifier except for their digests; an unsafe or reserved name is a ValueError.
    ``progress(percent, message)`` is told when the events are read, the proofs computed and the pack written.
    """
    check_member_names(files)
    if not isinstance(scope, dict):
        raise ValueError("the scope statement must be a JSON object")
    if (report_pdf is None) != (certificate_pem is None):
        raise ValueError("a report PDF and the certificate that signed it go together")
    report = progress or (lambda percent, message: None)
    key = checkpoints.load_signing_key()
    public = key.public_key()
    key_id = checkpoints.key_id_for(public)
    if checkpoint is None:
        checkpoint = checkpoints.checkpoint_write()
        if checkpoint is None:
            raise ValueError("the audit trail is empty: there is no tree head to prove events against")
    if not checkpoint.note or not checkpoint.root:
        raise ValueError(f"checkpoint {checkpoint.seq} has no signed tree head (it predates the Merkle tree)")
    if checkpoint.key_id != key_id:
        raise ValueError(f"checkpoint {checkpoint.seq} is signed by key {checkpoint.key_id}, not the current key")
    size, root = checkpoint.seq, bytes.fromhex(checkpoint.root)
    report(5, f"tree head of {size} events signed")

    now = timezone.now().astimezone(UTC)
    generated_at, stamp = format_time(now), now.timetuple()[:6]
    digests: dict[str, tuple[str, int]] = {}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:

        def put(name: str, data: bytes) -> None:
            zf.writestr(_info(name, stamp), data)
            digests[name] = (hashlib.sha256(data).hexdigest(), len(data))

        seqs: list[int] = []
        hashes: list[bytes] = []
        with _Member(zf, EVENTS, stamp, digests) as out:
            lines: list[str] = []
            for row in iter_export_rows(filters, up_to_seq=size):
                seqs.append(row[0])
                hashes.append(bytes.fromhex(row[-1]))  # EXPORT_FIELDS ends with the event's hash
                lines.append(jsonl_line(row))
                if len(lines) >= 2000:
                    out.write("".join(lines).encode())
                    lines = []
            out.write("".join(lines).encode())
        report(40, f"{len(seqs)} events read")

        with _Member(zf, PROOFS, stamp, digests) as out:
            for start in range(0, len(seqs), PROOF_BATCH):
                batch = seqs[start : start + PROOF_BATCH]
                proofs = tree.TreeReader(size).inclusion(batch)
                proof_lines = []
                for seq, leaf in zip(batch, hashes[start : start + PROOF_BATCH], strict=True):
                    proof = proofs[seq]
                    # The stored nodes are an acceleration, not the truth: refuse to hand out a proof that fails.
                    if merkle.root_from_inclusion(seq - 1, size, merkle.leaf_hash(leaf), proof) != root:
                        raise merkle.ProofError(f"event {seq}: the stored tree does not lead to the signed root")
                    line = {"seq": seq, "leaf_index": seq - 1, "tree_size": size, "proof": [p.hex() for p in proof]}
                    proof_lines.append(json.dumps(line, separators=(",", ":")) + "\n")
                out.write("".join(proof_lines).encode())
        report(80, f"{len(seqs)} inclusion proofs computed")

        put(CHECKPOINT, _json(checkpoint.as_dict()))
        put(AUDIT_KEY, checkpoints.public_pem(public).encode())
        put(AUDIT_VKEY, (notes.verifier_key(settings.ASSAY_AUDIT_LOG_ORIGIN, public) + "\n").encode())
        report_entry = None
        if report_pdf is not None:
            certificate = x509.load_pem_x509_certificate(certificate_pem)
            der = certificate.public_bytes(serialization.Encoding.DER)
            put(REPORT, report_pdf)
            put(REPORT_CERTIFICATE, certificate.public_bytes(serialization.Encoding.PEM))
            report_entry = {"path": REPORT, "certificate_sha256": hashlib.sha256(der).hexdigest()}
        for name in sorted(files):
            put(name, bytes(files[name]))

        manifest = {
            "format": FORMAT,
            "scope": scope,
            "generated_at": generated_at,
            "generated_by": generated_by,
            "checkpoint": {"tree_size": size, "root": checkpoint.root, "key_id": key_id},
            "events": {"count": len(seqs), "seqs": seqs},
            "report": report_entry,
            "files": [{"path": p, "sha256": d, "size": n} for p, (d, n) in sorted(digests.items())],
        }
        manifest_bytes = _json(manifest)
        signature = base64.b64encode(key.sign(SIGNATURE_DOMAIN + manifest_bytes)).decode()
        zf.writestr(_info(MANIFEST, stamp), manifest_bytes)
        zf.writestr(_info(SIGNATURE, stamp), _json({"key_id": key_id, "signature": signature}))
    report(100, f"pack written: {len(digests) + 2} files, {len(seqs)} events")


def check_member_names(files: dict[str, bytes]) -> None:
    """ValueError unless every name is a safe relative path (``records/release.json``) the pack does not use.

    Refused: absolute paths, drive letters, backslashes, ``.`` and ``..`` segments, empty segments, control
    characters, names equal (in any letter case) to the pack's own files or inside its ``keys/`` folder, and
    two names that differ only in case (they would overwrite each other when unpacked on macOS or Windows).
    """
    seen: dict[str, str] = {}
    for name, data in files.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"file name {name!r}: a non-empty text is needed")
        if not isinstance(data, bytes | bytearray):
            raise ValueError(f"file {name}: the content must be bytes")
        if name.startswith("/") or "\\" in name or (len(name) > 1 and name[1] == ":"):
            raise ValueError(f"file name {name!r}: only relative paths with forward slashes")
        if any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise ValueError(f"file name {name!r}: control characters are not allowed")
        parts = name.split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise ValueError(f"file name {name!r}: empty, '.' and '..' segments are not allowed")
        folded = name.casefold()
        if folded in RESERVED or parts[0].casefold() in RESERVED:
            raise ValueError(f"file name {name!r}: the pack's own files and keys/ folder are reserved")
        if folded in seen:
            raise ValueError(f"file names {seen[folded]!r} and {name!r} differ only in letter case")
        seen[folded] = name
    folders = {"/".join(n.casefold().split("/")[:i]) for n in files for i in range(1, n.count("/") + 1)}
    clash = sorted(folders.intersection(seen))
    if clash:
        raise ValueError(f"file name {seen[clash[0]]!r} is also the folder of other files")


def _json(value: dict) -> bytes:
    return (json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def _info(name: str, stamp: tuple) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=stamp)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


class _Member:
    """A zip member written in pieces (the events of a large scope never sit in memory uncompressed) and hashed."""

    def __init__(self, zf: zipfile.ZipFile, name: str, stamp: tuple, digests: dict) -> None:
        self._zf, self._name, self._stamp, self._digests = zf, name, stamp, digests
        self._sha, self._size = hashlib.sha256(), 0

    def __enter__(self) -> _Member:
        self._out = self._zf.open(_info(self._name, self._stamp), "w", force_zip64=True)
        return self

    def write(self, data: bytes) -> None:
        self._out.write(data)
        self._sha.update(data)
        self._size += len(data)

    def __exit__(self, *exc: object) -> None:
        self._out.close()
        self._digests[self._name] = (self._sha.hexdigest(), self._size)

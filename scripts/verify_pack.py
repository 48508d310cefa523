#!/usr/bin/env python3
"""Verify an Assay evidence pack (assay-evidence-pack/1) offline, with Python's standard library and ``cryptography``.

usage: verify_pack.py PACK.zip [--key AUDIT-LOG.pem | --vkey VERIFIER-KEY] [--certificate REPORT-SIGNING.crt]

Prints one "ok: ..." line per check that passed, "warning: ..." for what the auditor must confirm by other means
(which key was trusted), and "FAIL: ..." for every failure; exits 0 only when nothing failed (2: bad usage).
Without --key or --vkey it trusts the key inside the pack (keys/audit-log.pem) and says so: compare its key id
with the audit key Assay publishes. Likewise without --certificate for the report's certificate (its fingerprint).

What it checks (docs/evidence-pack.md describes every step, so an auditor can write their own verifier):
1. manifest.json is signed (manifest.sig.json: Ed25519 over b"assay-evidence-pack:v1\\n" + manifest.json's bytes)
   by the trusted audit key;
2. every file's SHA-256 and size are the manifest's; no file is missing, none is unlisted;
3. checkpoint.json's signed note (C2SP tlog-checkpoint) verifies with the trusted key and states the manifest's
   tree size and root;
4. every event in events.jsonl hashes to its ``hash`` (canonical form as in docs/audit.md, exactly as
   scripts/verify_audit_export.py computes it) and consecutive events link by ``prev_hash``;
5. every event's RFC 9162 inclusion proof (proofs.jsonl) leads to the checkpoint's root;
6. events.jsonl holds exactly the sequence numbers the signed manifest lists, none beyond the tree, and
   each event fits the fields of the scope statement that can be checked offline (since, until, action,
   outcome, target_type, target_id);
7. report.pdf, when there is one, is signed by the trusted report certificate and unchanged since
   (pdf_signature.py), and that certificate is the one the manifest names.

This script imports nothing from Assay: the canonical serialisation, RFC 9162 inclusion verification, the
signed-note format and Ed25519 checks are copied here so it can be read and run alone. For the report PDF it
loads pdf_signature.py from its own folder: the two scripts travel together.
Importable: ``verify_pack(data, public_key_pem=..., vkey=..., certificate_pem=...)`` returns a ``Result``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.util
import io
import json
import sys
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMAT = "assay-evidence-pack/1"
MANIFEST_DOMAIN = b"assay-evidence-pack:v1\n"
CHECKPOINT_DOMAIN = b"assay-audit-checkpoint:v1"
GENESIS = "0" * 64
MANIFEST, SIGNATURE = "manifest.json", "manifest.sig.json"
CHECKPOINT, EVENTS, PROOFS = "checkpoint.json", "events.jsonl", "proofs.jsonl"
AUDIT_KEY, AUDIT_VKEY, REPORT_CERTIFICATE = "keys/audit-log.pem", "keys/audit-log.vkey", "keys/report-signing.crt"
REQUIRED = (CHECKPOINT, EVENTS, PROOFS, AUDIT_KEY)

# The chained fields of an event (every exported field but the display names and the chain), as in
# scripts/verify_audit_export.py and docs/audit.md.
KEYS = ["seq", "event_id", "occurred_at", "actor_type", "actor_id", "token_id", "source", "client_ip", "request_id"]
KEYS += ["action", "outcome", "target_type", "target_id", "related_type", "related_id", "before", "after", "reason"]
KEYS += ["artifact_sha256"]
HEX = frozenset("0123456789abcdef")
NOTE_DASH = "\u2014 "  # a signed note's signature lines start with an em dash and a space
ED25519 = b"\x01"


@dataclass
class Result:
    """What was verified (``checks``), what failed (``problems``) and what to confirm elsewhere (``warnings``)."""

    checks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class Malformed(ValueError):
    """A part of the pack that cannot be read as its format says."""


# -- canonical serialisation and the chain (docs/audit.md) --------------------------------------------------


def event_hash(event: dict) -> str:
    """SHA-256(prev_hash + "\\n" + canonical JSON of the chained fields and "v": 1), lowercase hex."""
    obj = {**{k: event[k] for k in KEYS}, "v": 1}
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{event['prev_hash']}\n{canonical}".encode()).hexdigest()


# -- RFC 9162 Merkle tree (section 2.1) ---------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes | None:
    """RFC 9162 section 2.1.3.2: the root ``proof`` and ``leaf`` imply; None when the proof is malformed."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None  # longer than the tree is deep
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None  # shorter than the tree is deep: None


# -- keys and signed notes (C2SP signed-note, tlog-checkpoint) ----------------------------------------------


def raw_key(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public: Ed25519PublicKey) -> str:
    """Assay's key id: the first 16 hex digits of the SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(raw_key(public)).hexdigest()[:16]


def note_key_hash(name: str, public: Ed25519PublicKey) -> bytes:
    """A signed note's key hash: SHA-256(name + "\\n" + 0x01 + raw public key), first 4 bytes."""
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + raw_key(public)).digest()[:4]


def load_public_pem(pem: bytes) -> Ed25519PublicKey:
    try:
        public = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise Malformed("not a PEM public key") from exc
    if not isinstance(public, Ed25519PublicKey):
        raise Malformed("not an Ed25519 public key")
    return public


def parse_verifier_key(text: str) -> tuple[str, Ed25519PublicKey]:
    """``name+hash+base64(0x01 || key)``: the key, its name, and the hash checked to match both."""
    try:
        name, hash_hex, encoded = text.strip().split("+", 2)
        raw = base64.b64decode(encoded, validate=True)
        if raw[:1] != ED25519 or len(raw) != 33:
            raise ValueError("not an Ed25519 key")
        public = Ed25519PublicKey.from_public_bytes(raw[1:])
    except ValueError as exc:
        raise Malformed(f"not a verifier key ({exc})") from exc
    if note_key_hash(name, public).hex() != hash_hex:
        raise Malformed("the verifier key's hash does not match its name and key")
    return name, public


def open_checkpoint(note: str, public: Ed25519PublicKey, name: str | None) -> tuple[str, int, bytes]:
    """(origin, tree size, root) of a checkpoint note once a signature by ``public`` verifies on its body.

    ``name``: the key name the signature must carry (from a verifier key); None accepts any name whose key
    hash matches ``public`` (a key given as PEM carries no name).
    """
    body, sep, signatures = note.partition("\n\n")
    if not sep or not body:
        raise Malformed("not a signed note (no blank line between the text and its signatures)")
    body += "\n"
    lines = body.split("\n")[:-1]
    if len(lines) < 3:
        raise Malformed("a checkpoint has an origin, a tree size and a root hash")
    origin, size_text, root_text = lines[:3]
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise Malformed(f"tree size {size_text!r} is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except ValueError as exc:
        raise Malformed("the root hash is not base64") from exc
    if len(root) != 32:
        raise Malformed("the root hash is not 32 bytes")
    for line in signatures.split("\n"):
        if not line.startswith(NOTE_DASH):
            continue
        signer, _, blob = line[len(NOTE_DASH) :].rpartition(" ")
        try:
            raw = base64.b64decode(blob, validate=True)
        except ValueError:
            continue
        if (name is None or signer == name) and raw[:4] == note_key_hash(signer, public):
            try:
                public.verify(raw[4:], body.encode())
            except InvalidSignature as exc:
                raise Malformed(f"the signature by {signer} does not verify") from exc
            return origin, int(size_text), root
    raise Malformed("no signature by the trusted key")


# -- the pack -----------------------------------------------------------------------------------------------


def verify_pack(
    data: bytes,
    *,
    public_key_pem: bytes | None = None,
    vkey: str | None = None,
    certificate_pem: bytes | None = None,
) -> Result:
    """Every check of the module docstring on a pack's bytes; the trusted keys as given, else the pack's own."""
    result = Result()
    files = _read_zip(data, result)
    if files is None:
        return result
    trust = _trusted_key(files, public_key_pem, vkey, result)
    manifest = _stage(result, "manifest.json", _manifest, files)
    if trust is None or manifest is None:
        return result
    public, name = trust
    _stage(result, "manifest.sig.json", _check_signature, files, public)
    _stage(result, "manifest.json", _check_files, manifest, files)
    head = _stage(result, CHECKPOINT, _check_checkpoint, files, manifest, public, name)
    events = _stage(result, EVENTS, _check_events, files, head)
    if events is not None and head is not None:
        _stage(result, PROOFS, _check_proofs, files, events, head)
    if events is not None:
        _stage(result, "scope", _check_scope, manifest, events, head)
    _stage(result, "report", _check_report, manifest, files, certificate_pem)
    return result


def _stage(result: Result, where: str, check, *args):
    """Run one check; a part that cannot be read is a problem named after it, and the other checks go on."""
    try:
        return check(*args, result)
    except (Malformed, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        detail = f"no {exc}" if isinstance(exc, KeyError) else str(exc) or exc.__class__.__name__
        result.problems.append(f"{where}: cannot be read ({detail})")
        return None


def _read_zip(data: bytes, result: Result) -> dict[str, bytes] | None:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        result.problems.append(f"not a zip file ({exc})")
        return None
    files: dict[str, bytes] = {}
    with zf:
        for info in zf.infolist():
            name = info.filename
            if name.endswith("/"):
                continue
            if name in files:
                result.problems.append(f"file {name}: twice in the zip")
            if name.startswith("/") or "\\" in name or any(part in ("", ".", "..") for part in name.split("/")):
                result.problems.append(f"file {name}: an unsafe name (absolute, '..' or backslashes)")
            try:
                files[name] = zf.read(info)
            except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
                result.problems.append(f"file {name}: cannot be read from the zip ({exc})")
    return files


def _trusted_key(files, public_key_pem, vkey, result) -> tuple[Ed25519PublicKey, str | None] | None:
    """The audit key to trust, and the note key name it must sign under (None: any name)."""
    try:
        if vkey is not None:
            name, public = parse_verifier_key(vkey)
        elif public_key_pem is not None:
            name, public = None, load_public_pem(public_key_pem)
        else:
            if AUDIT_KEY not in files:
                result.problems.append(f"file {AUDIT_KEY}: missing, and no key was given (--key or --vkey)")
                return None
            name, public = None, load_public_pem(files[AUDIT_KEY])
            result.warnings.append(
                f"no key given: trusting the pack's own {AUDIT_KEY} (key id {key_id(public)}); compare it with "
                "the audit key Assay publishes, or pass --key"
            )
    except Malformed as exc:
        result.problems.append(f"the audit key: {exc}")
        return None
    if AUDIT_KEY in files:
        try:
            packed = load_public_pem(files[AUDIT_KEY])
        except Malformed as exc:
            result.problems.append(f"file {AUDIT_KEY}: {exc}")
        else:
            if raw_key(packed) != raw_key(public):
                trusted = key_id(public)
                result.problems.append(f"file {AUDIT_KEY}: key id {key_id(packed)} is not the trusted key {trusted}")
    if AUDIT_VKEY in files:
        try:
            _, packed = parse_verifier_key(files[AUDIT_VKEY].decode())
        except (Malformed, UnicodeDecodeError) as exc:
            result.problems.append(f"file {AUDIT_VKEY}: {exc}")
        else:
            if raw_key(packed) != raw_key(public):
                result.problems.append(f"file {AUDIT_VKEY}: not the verifier key of the trusted key {key_id(public)}")
    return public, name


def _manifest(files, result) -> dict | None:
    if MANIFEST not in files:
        raise Malformed("missing from the pack")
    manifest = json.loads(files[MANIFEST].decode("utf-8"))
    if not isinstance(manifest, dict):
        raise Malformed("not a JSON object")
    if manifest.get("format") != FORMAT:
        raise Malformed(f"format {manifest.get('format')!r}, this verifier reads {FORMAT}")
    return manifest


def _check_signature(files, public, result) -> None:
    if SIGNATURE not in files:
        result.problems.append(f"manifest signature does not verify ({SIGNATURE} is missing)")
        return
    sig = json.loads(files[SIGNATURE].decode("utf-8"))
    named, trusted = sig.get("key_id"), key_id(public)
    try:
        public.verify(base64.b64decode(sig["signature"], validate=True), MANIFEST_DOMAIN + files[MANIFEST])
    except (InvalidSignature, ValueError):
        other = f" (it names key {named}; the trusted key is {trusted})" if named != trusted else ""
        result.problems.append(f"manifest signature does not verify{other}")
        return
    result.checks.append(f"manifest.json is signed by the trusted audit key {trusted}")


def _check_files(manifest, files, result) -> None:
    listed: dict[str, dict] = {}
    before = len(result.problems)
    for entry in manifest["files"]:
        path = entry["path"]
        if path in listed:
            result.problems.append(f"file {path}: listed twice in the manifest")
        listed[path] = entry
    for path, entry in listed.items():
        if path not in files:
            result.problems.append(f"file {path}: listed in the manifest but missing from the pack")
        elif hashlib.sha256(files[path]).hexdigest() != entry["sha256"]:
            result.problems.append(f"file {path}: SHA-256 does not match the manifest")
        elif len(files[path]) != entry["size"]:
            result.problems.append(f"file {path}: size does not match the manifest")
    for path in sorted(set(files) - set(listed) - {MANIFEST, SIGNATURE}):
        result.problems.append(f"file {path}: in the pack but not listed in the manifest")
    for path in REQUIRED:
        if path not in listed:
            result.problems.append(f"file {path}: a pack must hold it, and the manifest does not list it")
    if len(result.problems) == before:
        result.checks.append(f"{len(listed)} files match the manifest's SHA-256 digests, none missing or unlisted")


def _check_checkpoint(files, manifest, public, name, result) -> tuple[int, bytes] | None:
    """The tree head the proofs are checked against: the signed note's, or the manifest's if the note fails."""
    stated = manifest["checkpoint"]
    stated_size, stated_root = stated["tree_size"], bytes.fromhex(stated["root"])
    if CHECKPOINT not in files:
        result.problems.append(f"checkpoint: signature does not verify ({CHECKPOINT} is missing)")
        return stated_size, stated_root
    checkpoint = json.loads(files[CHECKPOINT].decode("utf-8"))
    try:
        origin, size, root = open_checkpoint(checkpoint["note"], public, name)
    except Malformed as exc:
        result.problems.append(f"checkpoint: signature does not verify ({exc})")
        return stated_size, stated_root
    problems = len(result.problems)
    message = b"\n".join(
        [CHECKPOINT_DOMAIN, str(checkpoint["seq"]).encode(), checkpoint["hash"].encode(), checkpoint["time"].encode()]
    )
    try:
        public.verify(base64.b64decode(checkpoint["signature"], validate=True), message)
    except (InvalidSignature, ValueError):
        result.problems.append("checkpoint: signature does not verify (checkpoint.json's signature over seq and hash)")
    if (checkpoint["seq"], checkpoint.get("root")) != (size, root.hex()):
        result.problems.append("checkpoint: checkpoint.json's seq and root are not the tree head its note signs")
    if (size, root) != (stated_size, stated_root):
        result.problems.append(
            f"checkpoint: the signed note states tree size {size} and root {root.hex()}, the manifest "
            f"tree size {stated_size} and root {stated['root']}"
        )
    if len(result.problems) == problems:
        result.checks.append(f"checkpoint: tree size {size}, root {root.hex()}, signed by {origin} ({key_id(public)})")
    return size, root


def _read_lines(data: bytes, what: str) -> list[dict]:
    out = []
    # Split on "\n" only: a text field may hold U+2028, which str.splitlines() would also break on.
    for n, line in enumerate(data.decode("utf-8").split("\n"), 1):
        if not line:
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise Malformed(f"line {n} is not JSON ({exc})") from exc
        if not isinstance(item, dict) or type(item.get("seq")) is not int:
            raise Malformed(f"line {n} is not a {what} with an integer seq")
        out.append(item)
    return out


def _is_hash(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= HEX


def _check_events(files, head, result) -> list[dict]:
    events = _read_lines(files[EVENTS], "event")
    problems, links, previous = len(result.problems), 0, None
    for event in events:
        seq = event["seq"]
        missing = [k for k in (*KEYS, "prev_hash", "hash") if k not in event]
        if missing:
            result.problems.append(f"event {seq}: not an event (no {', '.join(missing)})")
            previous = None
            continue
        if previous is not None and seq <= previous["seq"]:
            result.problems.append(f"event {seq}: out of order in events.jsonl (after event {previous['seq']})")
        if not (_is_hash(event["hash"]) and _is_hash(event["prev_hash"])):
            result.problems.append(f"event {seq}: hash and prev_hash must be 64 lowercase hex digits")
        elif event_hash(event) != event["hash"]:
            result.problems.append(f"event {seq}: content does not match its hash")
        if seq == 1:
            links += 1
            if event["prev_hash"] != GENESIS:
                result.problems.append("event 1: does not start the chain (its prev_hash is not 64 zeros)")
        elif previous is not None and seq == previous["seq"] + 1:
            links += 1
            if event["prev_hash"] != previous["hash"]:
                result.problems.append(f"event {seq}: does not follow event {seq - 1}")
        if head is not None and seq == head[0] and files.get(CHECKPOINT):
            head_hash = json.loads(files[CHECKPOINT].decode("utf-8")).get("hash")
            if event["hash"] != head_hash:
                result.problems.append(f"event {seq}: its hash is not the head hash checkpoint.json states")
        previous = event
    if len(result.problems) == problems:
        result.checks.append(f"{len(events)} events hash and chain ({links} links between consecutive events)")
    return events


def _check_proofs(files, events, head, result) -> None:
    size, root = head
    proofs: dict[int, dict] = {}
    problems = len(result.problems)
    for proof in _read_lines(files[PROOFS], "proof"):
        if proof["seq"] in proofs:
            result.problems.append(f"event {proof['seq']}: two inclusion proofs in proofs.jsonl")
        proofs[proof["seq"]] = proof
    held = {event["seq"] for event in events}
    for seq in sorted(set(proofs) - held):
        result.problems.append(f"event {seq}: an inclusion proof in proofs.jsonl, but no such event in events.jsonl")
    for event in events:
        seq, proof = event["seq"], proofs.get(event["seq"])
        if proof is None:
            result.problems.append(f"event {seq}: no inclusion proof in proofs.jsonl")
            continue
        if proof.get("tree_size") != size:
            result.problems.append(f"event {seq}: its proof is for a tree of {proof.get('tree_size')}, not {size}")
            continue
        if proof.get("leaf_index") != seq - 1:
            result.problems.append(f"event {seq}: its proof is for leaf {proof.get('leaf_index')}, not {seq - 1}")
            continue
        try:
            path = [bytes.fromhex(h) for h in proof["proof"]]
            leaf = leaf_hash(bytes.fromhex(event["hash"]))
        except (KeyError, TypeError, ValueError):
            path = leaf = None
        if path is None or root_from_inclusion(seq - 1, size, leaf, path) != root:
            result.problems.append(f"event {seq}: inclusion proof does not lead to the checkpoint's root")
    if len(result.problems) == problems:
        result.checks.append(f"{len(events)} inclusion proofs lead to the checkpoint's root (tree size {size})")


def _time(value: str, *, end_of_day: bool) -> datetime:
    """An ISO 8601 time or date (a bare ``until`` date means the end of that day, as Assay's filters read it)."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if len(value) == 10 and end_of_day:
        parsed += timedelta(days=1)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _outside(scope: dict, event: dict) -> str:
    """Why ``event`` falls outside the fields of the scope statement that can be checked offline ('' if not)."""
    occurred = datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00"))
    if scope.get("since") and occurred < _time(scope["since"], end_of_day=False):
        return f"it occurred at {event['occurred_at']}, before since {scope['since']}"
    if scope.get("until") and occurred >= _time(scope["until"], end_of_day=True):
        return f"it occurred at {event['occurred_at']}, not before until {scope['until']}"
    action = scope.get("action")
    if action and not (event["action"].startswith(action[:-1]) if action.endswith("*") else event["action"] == action):
        return f"its action {event['action']} is not {action}"
    for key in ("outcome", "target_type", "target_id"):
        if scope.get(key) and event[key] != scope[key]:
            return f"its {key} {event[key]!r} is not {scope[key]!r}"
    return ""


def _check_scope(manifest, events, head, result) -> None:
    listed, scope = manifest["events"], manifest["scope"]
    seqs = listed["seqs"]
    if not isinstance(seqs, list) or not all(type(s) is int for s in seqs):
        raise Malformed("the manifest's events.seqs is not a list of integers")
    problems = len(result.problems)
    if listed["count"] != len(seqs):
        result.problems.append(f"scope: the manifest counts {listed['count']} events but lists {len(seqs)}")
    if seqs != sorted(set(seqs)):
        result.problems.append("scope: the manifest's sequence numbers are not ascending and distinct")
    held = [event["seq"] for event in events]
    for seq in sorted(set(seqs) - set(held)):
        result.problems.append(f"event {seq}: in the signed scope but missing from events.jsonl")
    for seq in sorted(set(held) - set(seqs)):
        result.problems.append(f"event {seq}: in events.jsonl but not in the signed scope")
    size = head[0] if head is not None else None
    for seq in sorted(set(seqs) | set(held)):
        if seq < 1 or (size is not None and seq > size):
            result.problems.append(f"event {seq}: beyond the checkpoint's tree size {size}")
    if not isinstance(scope, dict):
        raise Malformed("the manifest's scope is not a JSON object")
    for event in events:
        if all(k in event for k in KEYS):
            why = _outside(scope, event)
            if why:
                result.problems.append(f"event {event['seq']}: outside the scope statement ({why})")
    if len(result.problems) == problems:
        subject = scope.get("subject") or scope.get("title") or "the stated scope"
        result.checks.append(f"events.jsonl holds exactly the {len(seqs)} events of the signed scope ({subject})")


def _pdf_checker():
    """``check_pdf_signature`` from pdf_signature.py in this script's folder (None when it is not there)."""
    path = Path(__file__).resolve().with_name("pdf_signature.py")
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("pdf_signature", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.check_pdf_signature


def _check_report(manifest, files, certificate_pem, result) -> None:
    report = manifest["report"]
    if report is None:
        if certificate_pem is not None:
            result.warnings.append("a report certificate was given, but this pack holds no report")
        result.checks.append("no report in this pack (nothing to check against a certificate)")
        return
    path = report["path"]
    if path not in files:
        result.problems.append(f"{path}: the manifest names a report the pack does not hold")
        return
    if certificate_pem is None:
        if REPORT_CERTIFICATE not in files:
            result.problems.append(f"{path}: no certificate to check it with (--certificate)")
            return
        certificate_pem = files[REPORT_CERTIFICATE]
        trusted_from_pack = True
    else:
        trusted_from_pack = False
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem)
    except ValueError:
        result.problems.append("report: the certificate is not a PEM X.509 certificate")
        return
    fingerprint = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()
    if trusted_from_pack:
        result.warnings.append(
            f"no certificate given: trusting the pack's own {REPORT_CERTIFICATE} (SHA-256 fingerprint {fingerprint}); "
            "compare it with the report certificate Assay publishes, or pass --certificate"
        )
    problems = len(result.problems)
    if fingerprint != report["certificate_sha256"]:
        result.problems.append("report: the certificate's SHA-256 does not match the manifest's certificate_sha256")
    check_pdf_signature = _pdf_checker()
    if check_pdf_signature is None:
        result.problems.append(f"{path}: cannot be checked: pdf_signature.py must sit next to verify_pack.py")
        return
    for problem in check_pdf_signature(files[path], certificate_pem):
        result.problems.append(f"{path}: {problem}")
    if len(result.problems) == problems:
        subject = certificate.subject.rfc4514_string()
        result.checks.append(f"{path} is signed by {subject} (certificate {fingerprint[:16]}...) and unchanged since")


# -- command line -------------------------------------------------------------------------------------------


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # a verifier key is no file name
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="verify_pack.py",
        description="Verify an Assay evidence pack offline (docs/evidence-pack.md).",
    )
    parser.add_argument("pack", type=Path, help="the evidence pack (.zip)")
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument("--key", type=Path, help="the audit log's public key (PEM), as Assay publishes it")
    keys.add_argument("--vkey", help="the signed-note verifier key (name+hash+key), or a file holding it")
    parser.add_argument("--certificate", type=Path, help="the report-signing certificate (PEM), as Assay publishes it")
    args = parser.parse_args(argv)
    try:
        data = args.pack.read_bytes()
        public_key_pem = args.key.read_bytes() if args.key else None
        vkey = args.vkey
        if vkey is not None and _is_file(vkey):
            vkey = Path(vkey).read_text()
        certificate_pem = args.certificate.read_bytes() if args.certificate else None
    except OSError as exc:
        print(f"verify_pack.py: {exc}", file=sys.stderr)
        return 2
    result = verify_pack(data, public_key_pem=public_key_pem, vkey=vkey, certificate_pem=certificate_pem)
    for warning in result.warnings:
        print(f"warning: {warning}")
    for check in result.checks:
        print(f"ok: {check}")
    for problem in result.problems:
        print(f"FAIL: {problem}")
    if result.ok:
        print(f"verified: {args.pack}")
        return 0
    print(f"NOT verified: {args.pack}: {len(result.problems)} problem(s)")
    return 1


if __name__ == "__main__":
    sys.exit(main())

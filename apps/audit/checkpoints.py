"""Signed checkpoints of the chain head, kept outside the database.

A checkpoint is a small JSON document ``{"seq", "hash", "time", "key_id",
"signature"}``; the signature is Ed25519 over ``assay-audit-checkpoint:v1\\n
<seq>\\n<hash>\\n<time>``. The signing key lives in a file or an environment
variable, never in the database; ``key_id`` is the first 16 hex characters of
the SHA-256 of the raw public key, so keys can rotate: the verifier trusts the
current key's public half plus every public key in the trusted-keys folder.
Checkpoints are written to a folder (``file:///…``) or an S3 bucket
(``s3://bucket/prefix``).

Since the Merkle tree (``apps.audit.tree``) a checkpoint also carries ``root`` (the tree's
root over the first ``seq`` events, hex) and ``note``: the same tree head as a signed note in
the C2SP checkpoint format (``apps.audit.notes``), signed by the same key, which is what an
auditor checks inclusion and consistency proofs against.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.db import connection
from django.utils import timezone

from . import notes, tree
from .chain import format_time, seal_pending

DOMAIN = b"assay-audit-checkpoint:v1"


class CheckpointKeyMissing(RuntimeError):
    pass


@dataclass
class Checkpoint:
    seq: int
    hash: str
    time: str
    key_id: str
    signature: str
    root: str = ""  # the Merkle tree's root over events 1..seq (hex); empty in checkpoints older than the tree
    note: str = ""  # the tree head as a signed note (C2SP tlog-checkpoint)

    def message(self) -> bytes:
        return b"\n".join([DOMAIN, str(self.seq).encode(), self.hash.encode(), self.time.encode()])

    def as_dict(self) -> dict:
        out = {
            "seq": self.seq,
            "hash": self.hash,
            "time": self.time,
            "key_id": self.key_id,
            "signature": self.signature,
        }
        if self.note:
            out.update(root=self.root, note=self.note)
        return out


def key_id_for(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public_key: Ed25519PublicKey) -> str:
    """The public half as PEM (SubjectPublicKeyInfo), the form the trusted-keys folder holds."""
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _key_from_environment(value: str) -> Ed25519PrivateKey:
    value = value.strip()
    if value.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(value.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise CheckpointKeyMissing("ASSAY_AUDIT_SIGNING_KEY is not an Ed25519 private key")
        return key
    try:
        return Ed25519PrivateKey.from_private_bytes(base64.b64decode(value, validate=True))
    except ValueError as exc:
        raise CheckpointKeyMissing(
            "ASSAY_AUDIT_SIGNING_KEY must be an Ed25519 private key in PEM or its 32-byte seed in base64"
        ) from exc


def write_key_file(path: Path, key: Ed25519PrivateKey, *, replace: bool = False) -> None:
    """Write a private key as PKCS#8 PEM with mode 0600 (atomically replacing the old one when asked)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    target = path.with_name(f".{path.name}.new") if replace else path
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    if replace:
        os.replace(target, path)


def signing_key_source() -> str:
    """Where the signing key comes from, for messages: the environment variable or the file path."""
    if settings.ASSAY_AUDIT_SIGNING_KEY:
        return "ASSAY_AUDIT_SIGNING_KEY"
    return str(settings.ASSAY_AUDIT_SIGNING_KEY_FILE)


def load_signing_key(*, create: bool = False) -> Ed25519PrivateKey:
    """The Ed25519 key from ASSAY_AUDIT_SIGNING_KEY (PEM or base64 seed) or the key file.

    ``create`` makes a new key file (mode 0600) when none exists: the run command
    uses it for the embedded setup; production provides its own key.
    """
    if settings.ASSAY_AUDIT_SIGNING_KEY:
        return _key_from_environment(settings.ASSAY_AUDIT_SIGNING_KEY)
    path = Path(settings.ASSAY_AUDIT_SIGNING_KEY_FILE)
    if not path.exists():
        if not create:
            raise CheckpointKeyMissing(
                f"no audit signing key: set ASSAY_AUDIT_SIGNING_KEY or create {path} (manage.py audit_keygen)"
            )
        key = Ed25519PrivateKey.generate()
        try:
            write_key_file(path, key)
        except FileExistsError:  # another process created it first: use theirs
            return load_signing_key()
        return key
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointKeyMissing(f"{path} is not an Ed25519 private key")
    return key


def trusted_public_keys() -> dict[str, Ed25519PublicKey]:
    """Public keys the verifier trusts: the current signing key's, plus retired ones in the trusted folder."""
    keys: dict[str, Ed25519PublicKey] = {}
    try:
        current = load_signing_key().public_key()
        keys[key_id_for(current)] = current
    except CheckpointKeyMissing:
        pass
    folder = Path(settings.ASSAY_AUDIT_TRUSTED_KEYS_DIR)
    if folder.is_dir():
        for path in sorted(folder.glob("*.pem")):
            public = serialization.load_pem_public_key(path.read_bytes())
            if isinstance(public, Ed25519PublicKey):
                keys[key_id_for(public)] = public
    return keys


# ---------------------------------------------------------------------------------------------
# The store: a folder or an S3 bucket, one JSON object per checkpoint.


class FolderStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, name: str, body: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{name}.tmp"
        tmp.write_bytes(body)
        os.replace(tmp, self.root / name)

    def list(self) -> list[tuple[str, bytes]]:
        if not self.root.is_dir():
            return []
        return [(p.name, p.read_bytes()) for p in sorted(self.root.glob("checkpoint-*.json"))]

    def describe(self) -> str:
        return str(self.root)


class S3Store:
    def __init__(self, bucket: str, prefix: str) -> None:
        from apps.core.storage import s3_client

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = s3_client()

    def put(self, name: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + name, Body=body, ContentType="application/json")

    def list(self) -> list[tuple[str, bytes]]:
        out = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + "checkpoint-"):
            for item in page.get("Contents", []):
                body = self.client.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
                out.append((item["Key"].rsplit("/", 1)[-1], body))
        return out

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def store():
    url = urlparse(settings.ASSAY_CHECKPOINT_URL)
    if url.scheme == "file":
        return FolderStore(Path(url.path))
    if url.scheme == "s3":
        return S3Store(url.netloc, url.path)
    raise ValueError(f"ASSAY_CHECKPOINT_URL scheme {url.scheme!r} is not supported (file:// or s3://)")


def checkpoint_write() -> Checkpoint | None:
    """Seal pending events, sign the chain head and store the checkpoint. None when the trail is empty."""
    seal_pending(blocking=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT seq, hash FROM audit_seal ORDER BY seq DESC LIMIT 1")
        head = cursor.fetchone()
    if not head:
        return None
    key = load_signing_key()
    cp = Checkpoint(seq=int(head[0]), hash=head[1], time=format_time(timezone.now()), key_id="", signature="")
    cp.key_id = key_id_for(key.public_key())
    cp.signature = base64.b64encode(key.sign(cp.message())).decode()
    root = tree.TreeReader(cp.seq).root()
    cp.root = root.hex()
    origin = settings.ASSAY_AUDIT_LOG_ORIGIN
    cp.note = notes.sign(notes.checkpoint_body(origin, cp.seq, root), name=origin, key=key)
    store().put(f"checkpoint-{cp.seq:015d}-{cp.key_id}.json", json.dumps(cp.as_dict(), sort_keys=True).encode())
    return cp


@dataclass
class LoadedCheckpoints:
    valid: list[Checkpoint] = field(default_factory=list)
    invalid: list[dict] = field(default_factory=list)


def load_verified() -> LoadedCheckpoints:
    """Every stored checkpoint, split into those whose signature a trusted key verifies and the rest."""
    keys = trusted_public_keys()
    out = LoadedCheckpoints()
    for name, body in store().list():
        data: object = {}
        try:
            data = json.loads(body)
            cp = Checkpoint(**{k: data[k] for k in ("seq", "hash", "time", "key_id", "signature")})
            cp.root, cp.note = data.get("root", ""), data.get("note", "")
            texts = (cp.hash, cp.time, cp.key_id, cp.root, cp.note)
            if type(cp.seq) is not int or not all(isinstance(v, str) for v in texts):
                raise ValueError("malformed checkpoint: seq must be an integer, the other fields text")
            public = keys.get(cp.key_id)
            if public is None:
                raise InvalidSignature(
                    f"signed by key {cp.key_id}, which is neither the current key nor in the trusted-keys folder"
                )
            try:
                public.verify(base64.b64decode(cp.signature, validate=True), cp.message())
            except (InvalidSignature, ValueError) as exc:
                raise InvalidSignature(f"the signature does not verify with key {cp.key_id}") from exc
            if cp.note:
                _check_note(cp, public)
            out.valid.append(cp)
        except (InvalidSignature, notes.NoteError, ValueError, KeyError, TypeError) as exc:
            bad = data if isinstance(data, dict) else {}
            out.invalid.append({**bad, "_name": name, "_error": str(exc) or exc.__class__.__name__})
    out.valid.sort(key=lambda c: c.seq)
    return out


def _check_note(cp: Checkpoint, public: Ed25519PublicKey) -> None:
    """The checkpoint's signed note verifies with the key that signed it and states the same tree head."""
    origin = cp.note.split("\n", 1)[0]
    names = {origin, settings.ASSAY_AUDIT_LOG_ORIGIN}
    head = notes.open_checkpoint(cp.note, [(name, public) for name in names])
    if head.size != cp.seq or head.root.hex() != cp.root:
        raise notes.NoteError("the signed note states another tree head than the checkpoint")


def latest_verified() -> Checkpoint | None:
    """The newest checkpoint with a signed tree head that a trusted key verifies (None if there is none)."""
    with_note = [cp for cp in load_verified().valid if cp.note]
    return with_note[-1] if with_note else None


def verifier_keys() -> list[str]:
    """The trusted keys in the signed-note verifier format, named with this log's origin."""
    origin = settings.ASSAY_AUDIT_LOG_ORIGIN
    return [notes.verifier_key(origin, public) for public in trusted_public_keys().values()]

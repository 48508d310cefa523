"""Signed tree heads in the signed-note checkpoint format (C2SP ``tlog-checkpoint`` and ``signed-note``).

The format Go's checksum database and Sigstore's Rekor publish, so existing tooling can read
Assay's tree heads. A checkpoint note is::

    <origin>\\n
    <tree size, decimal>\\n
    <root hash, standard base64>\\n
    \\n
    — <key name> <base64(key hash (4 bytes) || Ed25519 signature)>\\n

The signature is over the body: the three lines, each with its newline. The key hash is the
first 4 bytes of SHA-256(key name || "\\n" || 0x01 || the 32-byte public key); the published
verifier key is ``<name>+<key hash, 8 hex digits>+<base64(0x01 || public key)>``. Assay's key
name is its log's origin (``ASSAY_AUDIT_LOG_ORIGIN``).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519 = b"\x01"
DASH = "\u2014 "  # an em dash and a space start every signature line


class NoteError(ValueError):
    """A checkpoint note that is malformed or whose signature does not verify."""


@dataclass(frozen=True)
class TreeHead:
    origin: str
    size: int
    root: bytes


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_hash(name: str, public: Ed25519PublicKey) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + _raw(public)).digest()[:4]


def verifier_key(name: str, public: Ed25519PublicKey) -> str:
    """The public key as note verifiers take it: ``name+hash+base64(0x01 || key)``."""
    return f"{name}+{key_hash(name, public).hex()}+{base64.b64encode(ED25519 + _raw(public)).decode()}"


def parse_verifier_key(text: str) -> tuple[str, Ed25519PublicKey]:
    try:
        name, hash_hex, encoded = text.strip().split("+", 2)  # a name holds no "+"; base64 may
        raw = base64.b64decode(encoded, validate=True)
        if raw[:1] != ED25519 or len(raw) != 33:
            raise ValueError("not an Ed25519 key")
        public = Ed25519PublicKey.from_public_bytes(raw[1:])
    except ValueError as exc:
        raise NoteError(f"not a verifier key ({exc})") from exc
    if key_hash(name, public).hex() != hash_hex:
        raise NoteError("the verifier key's hash does not match its name and key")
    return name, public


def checkpoint_body(origin: str, size: int, root: bytes) -> str:
    if not origin or any(c in origin for c in "\n+ "):
        raise NoteError("the origin must be one non-empty line without spaces or '+' (it names the key too)")
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def sign(body: str, *, name: str, key: Ed25519PrivateKey) -> str:
    """A signed note: the body, a blank line, one signature line."""
    signature = key.sign(body.encode())
    blob = base64.b64encode(key_hash(name, key.public_key()) + signature).decode()
    return f"{body}\n{DASH}{name} {blob}\n"


def open_checkpoint(note: str, keys: list[tuple[str, Ed25519PublicKey]]) -> TreeHead:
    """The tree head a note states, once a signature by one of ``keys`` (name, key) verifies on it."""
    body, sep, signatures = note.partition("\n\n")
    if not sep or not body:
        raise NoteError("not a signed note (no blank line between the text and its signatures)")
    body += "\n"
    lines = body.split("\n")[:-1]
    if len(lines) < 3:
        raise NoteError("a checkpoint has an origin, a tree size and a root hash")
    origin, size_text, root_text = lines[:3]
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise NoteError(f"tree size {size_text!r} is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except ValueError as exc:
        raise NoteError("the root hash is not base64") from exc
    if len(root) != 32:
        raise NoteError("the root hash is not 32 bytes")
    for line in signatures.split("\n"):
        if not line.startswith(DASH):
            continue
        name, _, blob = line[len(DASH) :].rpartition(" ")
        try:
            raw = base64.b64decode(blob, validate=True)
        except ValueError:
            continue
        for key_name, public in keys:
            if key_name == name and raw[:4] == key_hash(name, public):
                try:
                    public.verify(raw[4:], body.encode())
                except InvalidSignature as exc:
                    raise NoteError(f"the signature by {name} does not verify") from exc
                return TreeHead(origin=origin, size=int(size_text), root=root)
    raise NoteError("no signature by a trusted key")

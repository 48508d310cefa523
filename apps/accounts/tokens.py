"""API token secrets: generation, parsing and hashing.

Tokens carry 256 random bits; a plain SHA-256 of the secret is enough to store
them (unlike passwords, they cannot be guessed, so a slow hash buys nothing).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

PREFIX = "assay_"
_ID_ALPHABET = string.ascii_lowercase + string.digits
ID_LENGTH = 12


def new_token() -> tuple[str, str, str]:
    """Return (token_id, secret, full token string)."""
    token_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(ID_LENGTH))
    secret = secrets.token_urlsafe(32)  # 256 bits
    return token_id, secret, f"{PREFIX}{token_id}_{secret}"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse(raw: str) -> tuple[str, str] | None:
    """Split a presented token into (token_id, secret), or None when it is not one of ours."""
    if not raw.startswith(PREFIX):
        return None
    body = raw[len(PREFIX) :]
    token_id, sep, secret = body.partition("_")
    if not sep or len(token_id) != ID_LENGTH or not secret or len(secret) > 128:
        return None
    return token_id, secret


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)

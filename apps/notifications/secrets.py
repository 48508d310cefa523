"""Webhook signing secrets: generated here, encrypted at rest, read back only to sign.

The key is ``ASSAY_WEBHOOK_ENCRYPTION_KEY`` when set, else derived from ``DJANGO_SECRET_KEY``
(HKDF-SHA256 with a fixed purpose, so it is never the secret key itself); see
``apps.core.encryption``. Decryption tries the dedicated key, then the derived one, so setting a
dedicated key later keeps old secrets readable (rotate them to re-encrypt).
"""

from __future__ import annotations

import base64
import secrets as _random

from apps.core.encryption import Sealer

PREFIX = "whsec_"
_SEALER = Sealer(purpose=b"assay.webhook-secret.v1", key_setting="ASSAY_WEBHOOK_ENCRYPTION_KEY", what="webhook secret")


def generate() -> str:
    """A new signing secret: ``whsec_`` and 256 random bits, base64url."""
    return PREFIX + base64.urlsafe_b64encode(_random.token_bytes(32)).decode().rstrip("=")


def encrypt(secret: str) -> str:
    return _SEALER.encrypt(secret)


def decrypt(token: str) -> str:
    """The secret; ``ValueError`` when no configured key opens it (the key changed)."""
    try:
        return _SEALER.decrypt(token)
    except ValueError:
        raise ValueError("the webhook secret cannot be decrypted with the configured key; rotate the secret") from None

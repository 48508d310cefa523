"""Webhook signing secrets: generated here, encrypted at rest, read back only to sign.

The key is ``ASSAY_WEBHOOK_ENCRYPTION_KEY`` when set, else derived from ``DJANGO_SECRET_KEY``
(HKDF-SHA256 with a fixed purpose, so it is never the secret key itself). Decryption tries
the dedicated key, then the derived one, so setting a dedicated key later keeps old secrets
readable (rotate them to re-encrypt).
"""

from __future__ import annotations

import base64
import secrets as _random

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

PREFIX = "whsec_"
_PURPOSE = b"assay.webhook-secret.v1"


def generate() -> str:
    """A new signing secret: ``whsec_`` and 256 random bits, base64url."""
    return PREFIX + base64.urlsafe_b64encode(_random.token_bytes(32)).decode().rstrip("=")


def _fernet(material: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PURPOSE).derive(material.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _keys() -> MultiFernet:
    keys = []
    if settings.ASSAY_WEBHOOK_ENCRYPTION_KEY:
        keys.append(_fernet(settings.ASSAY_WEBHOOK_ENCRYPTION_KEY))
    keys.append(_fernet(settings.SECRET_KEY))
    return MultiFernet(keys)


def encrypt(secret: str) -> str:
    return _keys().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    """The secret; ``ValueError`` when no configured key opens it (the key changed)."""
    try:
        return _keys().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("the webhook secret cannot be decrypted with the configured key; rotate the secret")

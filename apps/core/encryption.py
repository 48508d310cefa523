"""Secrets encrypted at rest (Fernet), each kind under a key of its own purpose.

A ``Sealer`` names its purpose (``b"assay.webhook-secret.v1"``, ``b"assay.target-credentials.v1"``) and
the setting that may hold a dedicated key for it. The key is that setting's value when set, else derived
from ``DJANGO_SECRET_KEY``; either way it goes through HKDF-SHA256 with the purpose, so it is never the
secret key itself and two purposes never share a key. Decryption tries the dedicated key, then the
derived one, so setting a dedicated key later keeps old values readable (re-encrypt them to move over).

Webhook signing secrets (``apps.notifications.secrets``) and deployment target credentials
(``apps.deployments``) use it. A value that no configured key opens raises ``ValueError`` with a message
that names the purpose and never the value.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


def _fernet(material: str, purpose: bytes) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(material.encode())
    return Fernet(base64.urlsafe_b64encode(key))


@dataclass(frozen=True)
class Sealer:
    """Encrypts and decrypts one kind of secret: ``purpose`` binds the key, ``key_setting`` may name a dedicated key."""

    purpose: bytes
    key_setting: str
    what: str  # how messages name the secret ("webhook secret")

    def _keys(self) -> MultiFernet:
        keys = []
        dedicated = getattr(settings, self.key_setting, "") if self.key_setting else ""
        if dedicated:
            keys.append(_fernet(dedicated, self.purpose))
        keys.append(_fernet(settings.SECRET_KEY, self.purpose))
        return MultiFernet(keys)

    def encrypt(self, plaintext: str) -> str:
        return self._keys().encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        """The plaintext; ``ValueError`` when no configured key opens it (the key changed)."""
        try:
            return self._keys().decrypt(token.encode()).decode()
        except InvalidToken:
            raise ValueError(f"the {self.what} cannot be decrypted with the configured key; set it again") from None


def fingerprint(plaintext: str) -> str:
    """A short, non-reversible mark of a secret for people to compare ("sha256:1a2b3c4d"): never the secret."""
    return "sha256:" + hashlib.sha256(plaintext.encode()).hexdigest()[:12]

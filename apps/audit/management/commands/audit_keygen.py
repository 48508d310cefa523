"""``manage.py audit_keygen [--if-missing | --rotate]``: the Ed25519 key that signs checkpoints.

Creates the key file at ``ASSAY_AUDIT_SIGNING_KEY_FILE`` (mode 0600) and prints
its key id and public key (PEM) - never the private key. ``--if-missing`` leaves
an existing key alone (for start-up scripts). ``--rotate`` retires the current key:
its public half goes to ``ASSAY_AUDIT_TRUSTED_KEYS_DIR`` so the checkpoints it
signed keep verifying, and a new key takes its place. Both are audited.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.management.base import CommandError
from django.db import transaction

from apps.audit import checkpoints
from apps.audit import services as audit

from ._base import AuditCommand


class Command(AuditCommand):
    help = (
        "Create the Ed25519 audit checkpoint signing key (file mode 0600) and print its key id and public key. "
        "--if-missing keeps an existing key; --rotate retires it (its public key stays trusted) and makes a new one."
    )

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--if-missing", action="store_true", help="Do nothing (but print it) if a key exists.")
        group.add_argument(
            "--rotate",
            action="store_true",
            help="Retire the current key (its public half stays trusted) and make a new one.",
        )

    def handle(self, *args, **options):
        path = Path(settings.ASSAY_AUDIT_SIGNING_KEY_FILE)
        if settings.ASSAY_AUDIT_SIGNING_KEY:
            if not options["if_missing"]:
                raise CommandError(
                    "The signing key comes from ASSAY_AUDIT_SIGNING_KEY; rotate it there (and put the old public key "
                    f"into {settings.ASSAY_AUDIT_TRUSTED_KEYS_DIR}), or unset it to use a key file."
                )
            self._print(checkpoints.load_signing_key(), "ASSAY_AUDIT_SIGNING_KEY (environment)", "kept")
            return
        if path.exists():
            if options["if_missing"]:
                self._print(checkpoints.load_signing_key(), str(path), "kept")
                return
            if not options["rotate"]:
                raise CommandError(f"{path} already exists: use --if-missing to keep it or --rotate to replace it.")
            self._rotate(path)
            return
        if options["rotate"]:
            raise CommandError(f"There is no key at {path} to rotate: run audit_keygen without --rotate.")
        key = Ed25519PrivateKey.generate()
        key_id = checkpoints.key_id_for(key.public_key())
        with transaction.atomic():  # the event rolls back if the file cannot be written
            audit.record(
                action="signing_key.created",
                actor=self.actor,
                target=("signing_key", key_id, f"audit checkpoint key {key_id}"),
                after={"key_id": key_id},
            )
            checkpoints.write_key_file(path, key)
        self._print(key, str(path), "created")

    def _rotate(self, path: Path) -> None:
        old = checkpoints.load_signing_key()
        old_id = checkpoints.key_id_for(old.public_key())
        trusted = Path(settings.ASSAY_AUDIT_TRUSTED_KEYS_DIR)
        trusted.mkdir(parents=True, exist_ok=True)
        (trusted / f"{old_id}.pem").write_text(checkpoints.public_pem(old.public_key()))
        new = Ed25519PrivateKey.generate()
        new_id = checkpoints.key_id_for(new.public_key())
        with transaction.atomic():
            audit.record(
                action="signing_key.rotated",
                actor=self.actor,
                target=("signing_key", new_id, f"audit checkpoint key {new_id}"),
                before={"key_id": old_id},
                after={"key_id": new_id, "retired_public_key": str(trusted / f"{old_id}.pem")},
            )
            checkpoints.write_key_file(path, new, replace=True)
        self.stdout.write(f"Retired key {old_id}: its public key is kept in {trusted / f'{old_id}.pem'}")
        self._print(new, str(path), "created")

    def _print(self, key: Ed25519PrivateKey, where: str, verb: str) -> None:
        public = key.public_key()
        self.stdout.write(f"Signing key {verb}: {where}")
        self.stdout.write(f"key id: {checkpoints.key_id_for(public)}")
        self.stdout.write(checkpoints.public_pem(public).rstrip())

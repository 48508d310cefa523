"""``manage.py audit_checkpoint``: sign the chain head now and store the checkpoint.

The worker does this periodically (``ASSAY_CHECKPOINT_INTERVAL_SECONDS``); operators
run it before a backup, an export for an auditor, or a key rotation.
"""

from __future__ import annotations

from apps.audit import checkpoints

from ._base import AuditCommand


class Command(AuditCommand):
    help = "Seal pending audit events, sign the chain head with the Ed25519 key and store the checkpoint."

    def handle(self, *args, **options):
        cp = checkpoints.checkpoint_write()
        if cp is None:
            self.stdout.write("Nothing to checkpoint: the audit trail is empty.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Checkpoint #{cp.seq} {cp.hash} signed by key {cp.key_id} at {cp.time}, "
                f"stored in {checkpoints.store().describe()}"
            )
        )

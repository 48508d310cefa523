"""Audit trail upkeep: sealing stragglers and signing checkpoints."""

from celery import shared_task

from apps.audit import chain, checkpoints


@shared_task(name="audit.seal")
def seal() -> int:
    """Seal any committed events that the writers' own after-commit seal missed."""
    return chain.seal_pending(blocking=True)


@shared_task(name="audit.checkpoint")
def checkpoint() -> int | None:
    """Sign the chain head with the Ed25519 key and store the checkpoint outside the database."""
    cp = checkpoints.checkpoint_write()
    return cp.seq if cp else None

"""Shared behaviour of the audit commands: they act as the system, with audit source ``cli``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.audit import context
from apps.audit.checkpoints import CheckpointKeyMissing
from apps.core.principals import Principal


class AuditCommand(BaseCommand):
    """A command run by an operator: ``Principal.system("cli")`` in a ``cli`` audit context.

    A missing or unreadable signing key becomes a ``CommandError``: one line on stderr, exit status 1.
    """

    actor = Principal.system("cli")

    def execute(self, *args, **options):
        token = context.set_context(context.AuditContext(source="cli", principal=self.actor))
        try:
            return super().execute(*args, **options)
        except CheckpointKeyMissing as exc:
            raise CommandError(str(exc)) from exc
        finally:
            context._current.reset(token)

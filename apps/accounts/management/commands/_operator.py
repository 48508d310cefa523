"""Shared behaviour of the operator commands: act as the system, audited with source ``cli``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.audit import context
from apps.core import request_cache
from apps.core.errors import DomainError
from apps.core.principals import Principal


class OperatorCommand(BaseCommand):
    """A command that changes state through the services as ``Principal.system("cli")``.

    Domain errors (unknown names, conflicts, bad input) become ``CommandError``:
    one clear line on stderr and exit status 1.
    """

    actor = Principal.system("cli")

    def execute(self, *args, **options):
        context.set_context(context.AuditContext(source="cli", principal=self.actor))
        try:
            with request_cache.unit_of_work():
                return super().execute(*args, **options)
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        finally:
            context.reset()

    def done(self, message: str) -> None:
        self.stdout.write(self.style.SUCCESS(message))


def split_list(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]

"""``manage.py user_create USERNAME [--email E] [--password P | --password-stdin] [--admin]``."""

from __future__ import annotations

import getpass
import sys

from django.core.management.base import CommandError
from django.db import transaction

from apps.accounts import services as accounts
from apps.rbac import services as rbac
from apps.rbac.roles import Role

from ._operator import OperatorCommand


class Command(OperatorCommand):
    help = (
        "Create a person who can sign in. Give the password with --password-stdin (preferred: it stays out of "
        "the process list and shell history), --password, or at the prompt. --admin grants the global admin role."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument("--first-name", default="")
        parser.add_argument("--last-name", default="")
        password = parser.add_mutually_exclusive_group()
        password.add_argument("--password", help="The password (visible to other local users while this runs).")
        password.add_argument("--password-stdin", action="store_true", help="Read the password from standard input.")
        parser.add_argument("--admin", action="store_true", help="Grant the global admin role.")

    def _password(self, options) -> str | None:
        if options["password"]:
            return options["password"]
        stdin = options.get("stdin") or sys.stdin
        if options["password_stdin"]:
            password = stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("--password-stdin: standard input held no password.")
            return password
        if stdin.isatty():
            first = getpass.getpass("Password: ")
            if first != getpass.getpass("Password (again): "):
                raise CommandError("The passwords do not match.")
            return first or None
        return None

    def handle(self, *args, **options):
        password = self._password(options)
        with transaction.atomic():
            user = accounts.user_create(
                actor=self.actor,
                username=options["username"],
                password=password,
                email=options["email"],
                first_name=options["first_name"],
                last_name=options["last_name"],
            )
            if options["admin"]:
                rbac.role_grant(actor=self.actor, subject=user, role=Role.ADMIN)
        self.done(f"Created user {user.username!r}" + (" with the global admin role." if options["admin"] else "."))
        if not password:
            self.stdout.write(
                f"No password was set, so this user cannot sign in yet: run `manage.py changepassword {user.username}`."
            )

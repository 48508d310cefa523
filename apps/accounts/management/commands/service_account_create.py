"""``manage.py service_account_create NAME --owner USER [--team T] [--description D]``."""

from __future__ import annotations

from apps.accounts import selectors
from apps.accounts import services as accounts

from ._operator import OperatorCommand


class Command(OperatorCommand):
    help = (
        "Create a service account for CI. Its owner is the person accountable for what it does "
        "(for segregation of duties it counts as the owner). Grant it roles with role_grant and "
        "give it a token with token_create."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--owner", required=True, help="Username of the accountable person.")
        parser.add_argument("--team", help="The team the account works for (informational).")
        parser.add_argument("--description", default="")

    def handle(self, *args, **options):
        owner = selectors.user_by_username(username=options["owner"])
        team = selectors.team_by_name(name=options["team"]) if options["team"] else None
        account = accounts.service_account_create(
            actor=self.actor, name=options["name"], owner=owner, team=team, description=options["description"]
        )
        self.done(f"Created service account {account.name!r} owned by {owner.username!r}.")

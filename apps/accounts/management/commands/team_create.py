"""``manage.py team_create NAME [--display-name D] [--description T]``."""

from __future__ import annotations

from apps.accounts import services as accounts

from ._operator import OperatorCommand


class Command(OperatorCommand):
    help = "Create a team (a slug such as credit-risk). Teams own models and datasets; roles can be bound to them."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--display-name", default="")
        parser.add_argument("--description", default="")

    def handle(self, *args, **options):
        team = accounts.team_create(
            actor=self.actor,
            name=options["name"],
            display_name=options["display_name"],
            description=options["description"],
        )
        self.done(f"Created team {team.name!r}.")

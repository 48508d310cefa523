"""``manage.py team_add_member TEAM USER``."""

from __future__ import annotations

from apps.accounts import selectors
from apps.accounts import services as accounts

from ._operator import OperatorCommand


class Command(OperatorCommand):
    help = "Add a user to a team; the user then holds every role bound to the team. Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("team")
        parser.add_argument("user")

    def handle(self, *args, **options):
        team = selectors.team_by_name(name=options["team"])
        user = selectors.user_by_username(username=options["user"])
        accounts.team_member_add(actor=self.actor, team=team, user=user)
        self.done(f"{user.username!r} is a member of team {team.name!r}.")

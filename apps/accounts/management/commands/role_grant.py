"""``manage.py role_grant (--user U | --team T | --service-account S) --role R [--model M | --team-scope T]``,
or ``[--environment E]`` (releases into that environment only).

``--team`` plays two parts, as the issue writes the command: with ``--user`` or
``--service-account`` it is the scope (the role applies to that team's models and
datasets); on its own it is the subject (every member of the team gets the role).
``--team-scope`` always names the scope, so a team can be given a role on another team.
"""

from __future__ import annotations

from django.core.management.base import CommandError

from apps.accounts import selectors
from apps.rbac import services as rbac
from apps.rbac.models import Environment
from apps.rbac.roles import Role
from apps.registry.models import RegisteredModel

from ._operator import OperatorCommand


class Command(OperatorCommand):
    help = (
        "Bind a role to a user, a team or a service account: globally (default), on one team's models and "
        "datasets (--team with --user/--service-account, or --team-scope), or on one model (--model). "
        f"Roles: {', '.join(Role.values)}."
    )

    def add_arguments(self, parser):
        parser.add_argument("--user", help="Username to grant the role to.")
        parser.add_argument("--service-account", help="Service account to grant the role to.")
        parser.add_argument(
            "--team",
            help="With --user or --service-account: the team the role applies to. Alone: the team to grant it to.",
        )
        parser.add_argument("--role", required=True, help=f"One of: {', '.join(Role.values)}.")
        parser.add_argument("--model", help="Limit the role to this model (by name).")
        parser.add_argument("--team-scope", help="Limit the role to this team's models and datasets.")
        parser.add_argument("--environment", help="Limit the role to releases into this environment (by name).")

    def handle(self, *args, **options):
        user_name, account_name, team_name = options["user"], options["service_account"], options["team"]
        if options["role"] not in Role.values:
            raise CommandError(f"Unknown role {options['role']!r}; choose one of: {', '.join(Role.values)}.")
        if sum(x is not None for x in (user_name, account_name)) > 1:
            raise CommandError("Give one subject: --user, --service-account or --team.")
        scope_team_name = options["team_scope"]
        if user_name or account_name:
            if team_name and scope_team_name:
                raise CommandError("Give the team scope once: --team or --team-scope.")
            scope_team_name = scope_team_name or team_name
            subject = (
                selectors.user_by_username(username=user_name)
                if user_name
                else selectors.service_account_by_name(name=account_name)
            )
        elif team_name:
            subject = selectors.team_by_name(name=team_name)
        else:
            raise CommandError("Give a subject: --user, --service-account or --team.")
        if scope_team_name and options["model"]:
            raise CommandError("A role is scoped to one team or one model, not both.")
        scope_team = selectors.team_by_name(name=scope_team_name) if scope_team_name else None
        model = None
        if options["model"]:
            model = RegisteredModel.objects.filter(name=options["model"]).first()
            if model is None:
                raise CommandError(f"No model named {options['model']!r}.")
        environment = None
        if options["environment"]:
            if scope_team_name or options["model"]:
                raise CommandError("A role is scoped to one team, model or environment, not both.")
            environment = Environment.objects.filter(name=options["environment"]).first()
            if environment is None:
                raise CommandError(f"No environment named {options['environment']!r}.")
        binding = rbac.role_grant(
            actor=self.actor,
            subject=subject,
            role=options["role"],
            team=scope_team,
            model=model,
            environment=environment,
        )
        self.done(f"Granted: {binding}.")

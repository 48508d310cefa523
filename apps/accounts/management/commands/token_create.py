"""``manage.py token_create (--user U | --service-account S) [--name N] [--expires-in-days D] [--scopes a,b]``."""

from __future__ import annotations

from apps.accounts import selectors
from apps.accounts import services as accounts
from apps.rbac.roles import Scope

from ._operator import OperatorCommand, split_list


class Command(OperatorCommand):
    help = (
        "Issue an API token for a user or a service account. The token is printed once, as the last line of "
        f"output (scripts can take it with `tail -n 1`). Scopes: {', '.join(Scope.values)} (default: read)."
    )

    def add_arguments(self, parser):
        owner = parser.add_mutually_exclusive_group(required=True)
        owner.add_argument("--user", help="Username that will own the token.")
        owner.add_argument("--service-account", help="Service account that will own the token.")
        parser.add_argument("--name", default="cli", help="What the token is for (default: cli).")
        parser.add_argument(
            "--expires-in-days",
            type=int,
            default=90,
            help="Lifetime in days (default 90; at most ASSAY_TOKEN_MAX_DAYS, 365 unless configured).",
        )
        parser.add_argument("--scopes", default="", help="Comma-separated scopes, e.g. read,registry:write.")

    def handle(self, *args, **options):
        if options["user"]:
            owner = {"user": selectors.user_by_username(username=options["user"])}
        else:
            owner = {"service_account": selectors.service_account_by_name(name=options["service_account"])}
        token, raw = accounts.token_create(
            actor=self.actor,
            name=options["name"],
            scopes=split_list(options["scopes"]),
            expires_in_days=options["expires_in_days"],
            **owner,
        )
        expires = token.expires_at.strftime("%Y-%m-%d %H:%M UTC") if token.expires_at else "never"
        self.stdout.write(
            f"Token {token.prefix}… for {token.owner_label}: scopes {', '.join(token.scopes)}; expires {expires}."
        )
        self.stdout.write("Store it now: it is not shown again.")
        self.stdout.write(raw)

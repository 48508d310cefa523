"""DRF authentication: bearer tokens for CI, sessions for the browser.

Both put the principal into the audit context, so every event the request
causes names the actor and the token used.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import connections, router
from django.utils import timezone
from rest_framework import authentication, exceptions

from apps.audit import context
from apps.core.fastpath import hot_cursor

from . import tokens
from .models import ApiToken, ServiceAccount, User
from .principals import principal_for_token, principal_for_user

# last_used_at is written at most this often per token, so reads stay reads.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class _TokenLookup:
    """The token with its user, service account and that account's owner, in one hand-written SELECT.

    Same rows and objects as ``ApiToken.objects.select_related("user", "service_account",
    "service_account__owner").get(token_id=...)``, but the SQL and the column converters are
    built once per database connection alias instead of on every request: compiling that
    three-join query was about a tenth of a registration's CPU. Each table is read with all
    its concrete columns in model order, so ``Model.from_db`` builds ordinary instances.
    """

    _parts = (("t", ApiToken), ("u", User), ("sa", ServiceAccount), ("o", User))

    def __init__(self, alias: str) -> None:
        connection = connections[alias]
        quote = connection.ops.quote_name
        columns, self.layout = [], []
        for table_alias, model in self._parts:
            fields = model._meta.concrete_fields
            converters = []
            for field in fields:
                columns.append(f"{table_alias}.{quote(field.column)}")
                col = field.get_col(table_alias)
                converters.append((col, connection.ops.get_db_converters(col) + col.get_db_converters(connection)))
            pk_index = [f.attname for f in fields].index(model._meta.pk.attname)
            self.layout.append((model, [f.attname for f in fields], converters, pk_index))
        token, user, account = (quote(m._meta.db_table) for m in (ApiToken, User, ServiceAccount))
        fk = {name: quote(ApiToken._meta.get_field(name).column) for name in ("user", "service_account", "token_id")}
        owner = quote(ServiceAccount._meta.get_field("owner").column)
        user_pk, account_pk = quote(User._meta.pk.column), quote(ServiceAccount._meta.pk.column)
        from apps.rbac import services as rbac  # here: rbac's imports reach back to this module

        # The subject's role bindings come along, one row each (rbac decides which apply).
        grant_columns, grant_join = rbac.token_grants_join(
            connection, user_column=f"t.{fk['user']}", service_account_column=f"t.{fk['service_account']}"
        )
        self.sql = (
            f"SELECT {', '.join(columns)}, {grant_columns} FROM {token} t"
            f" LEFT JOIN {user} u ON u.{user_pk} = t.{fk['user']}"
            f" LEFT JOIN {account} sa ON sa.{account_pk} = t.{fk['service_account']}"
            f" LEFT JOIN {user} o ON o.{user_pk} = sa.{owner}"
            f"{grant_join}"
            f" WHERE t.{fk['token_id']} = %s"
        )
        self.alias = alias
        self.grant_width = rbac.GRANT_COLUMNS

    def fetch(self, token_id: str) -> tuple[ApiToken | None, list]:
        """The token (None if unknown) and its subject's grant rows."""
        connection = connections[self.alias]
        with hot_cursor(connection) as cursor:  # prepared on PostgreSQL: every API request runs it
            cursor.execute(self.sql, [token_id])
            rows = cursor.fetchall()
        if not rows:
            return None, []
        row = rows[0]
        objects, start = [], 0
        for model, attnames, converters, pk_index in self.layout:
            values = list(row[start : start + len(attnames)])
            start += len(attnames)
            if values[pk_index] is None:  # the LEFT JOIN found nothing
                objects.append(None)
                continue
            for i, (col, funcs) in enumerate(converters):
                for convert in funcs:
                    values[i] = convert(values[i], col, connection)
            objects.append(model.from_db(self.alias, attnames, values))
        token, user, account, owner = objects
        if user is not None:
            token.user = user
        if account is not None:
            account.owner = owner
            token.service_account = account
        return token, [r[-self.grant_width :] for r in rows]


_token_lookups: dict[str, _TokenLookup] = {}


def _find_token(token_id: str) -> tuple[ApiToken | None, list]:
    alias = router.db_for_read(ApiToken)
    lookup = _token_lookups.get(alias)
    if lookup is None:
        lookup = _token_lookups[alias] = _TokenLookup(alias)
    return lookup.fetch(token_id)


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer assay_<id>_<secret>``."""

    keyword = "bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: expected 'Bearer <token>'.")
        try:
            raw = header[1].decode()
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Malformed token.") from exc
        parsed = tokens.parse(raw)
        if parsed is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        token_id, secret = parsed
        token, grant_rows = _find_token(token_id)
        if token is None or not tokens.secret_matches(secret, token.secret_hash):
            raise exceptions.AuthenticationFailed("Invalid token.")
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("Token has been revoked.")
        now = timezone.now()
        if token.expires_at is not None and token.expires_at <= now:
            raise exceptions.AuthenticationFailed("Token has expired.")
        if token.service_account_id:
            if not token.service_account.is_active:
                raise exceptions.AuthenticationFailed("Service account is disabled.")
            user = token.service_account.owner
        else:
            user = token.user
        if not user.is_active:
            raise exceptions.AuthenticationFailed("Token owner is disabled.")
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(
                last_used_at=now, last_used_ip=context.current().client_ip or ""
            )
        principal = principal_for_token(token)
        context.update(principal=principal)
        from apps.rbac.services import remember_grants

        remember_grants(principal, grant_rows)
        request.principal = principal
        return (user, token)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="assay"'


class SessionAuthentication(authentication.SessionAuthentication):
    """Django sessions with CSRF, for the dashboard's own API calls."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None:
            principal = principal_for_user(result[0])
            context.update(principal=principal)
            request.principal = principal
        return result

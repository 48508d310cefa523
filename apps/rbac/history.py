"""This app's parts of a subject for the audit trail's "related to" filter (``apps.audit.related``): a team's
role bindings (those scoped to the team and those the team holds)."""

from __future__ import annotations

from django.db.models import Q

from apps.audit import related

from .models import RoleBinding


def _team(kind: str, name: str, parts: related.Parts) -> None:
    teams = parts.ids("team")
    if teams:
        bindings = RoleBinding.objects.filter(Q(scope_team_id__in=teams) | Q(team_id__in=teams))
        parts.add("role_binding", *bindings.values_list("pk", flat=True))


def register() -> None:
    related.provide("team", _team)

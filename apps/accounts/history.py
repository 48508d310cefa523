"""This app's parts of a subject for the audit trail's "related to" filter (``apps.audit.related``)."""

from __future__ import annotations

from apps.audit import related

from .models import ApiToken, ServiceAccount, Team, User


def _person(kind: str, username: str, parts: related.Parts) -> None:
    parts.add("user", *User.objects.filter(username=username).values_list("pk", flat=True))


def _token(kind: str, token_id: str, parts: related.Parts) -> None:
    parts.add("api_token", *ApiToken.objects.filter(token_id=token_id).values_list("token_id", flat=True))


def _team(kind: str, name: str, parts: related.Parts) -> None:
    team = Team.objects.filter(name=name).values_list("pk", flat=True).first()
    if team is None:
        return
    parts.add("team", team)  # its creation, its members joining and leaving
    parts.add("service_account", *ServiceAccount.objects.filter(team_id=team).values_list("pk", flat=True))


def register() -> None:
    related.provide("person", _person)
    related.provide("token", _token)
    related.provide("team", _team)

"""'Related to': the events about one subject, across the apps that hold its parts.

A subject is ``kind:key``:

- ``model:<name>``: the model, its versions (and their gate decisions), their evidence runs and reviews, their
  release requests and approvals, their deployments, and the jobs that worked on any of these;
- ``version:<model>:<number>``: the same for one version;
- ``release:<id>``: the request, its approvals, its deployments and their jobs;
- ``deployment:<id>``: the deployment and its jobs;
- ``person:<username>``: everything the person did, and every change made to their account;
- ``token:<token id>``: everything done with the API token, and every change made to it;
- ``team:<name>``: the team (its members, its role bindings), its service accounts, and everything about each of
  its models and datasets (as ``model:`` finds, for every model the team owns).

The audit app knows none of these objects. Each app that holds parts of a subject says which of its objects
belong to it (``provide``, from its ``AppConfig.ready()``), in the apps' layer order, so a provider can build
on what the lower apps found: the registry names a model's versions, evidence the runs on them, releases the
requests for them, deployments the deployments of those requests. The filter then selects the events whose
target or related object is one of the parts (both columns are indexed).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Q

from apps.core.errors import ValidationFailed

KINDS = ("model", "version", "release", "deployment", "person", "token", "team")
EXAMPLE = (
    "model:credit-scoring, version:credit-scoring:3, release:<id>, deployment:<id>, person:alice, token:<id>, "
    "team:credit-risk"
)

# (kind, key, parts so far) -> adds (audit type, id) pairs to the parts
Provider = Callable[[str, str, "Parts"], None]
_providers: list[tuple[str, Provider]] = []


class Parts(dict[str, set[str]]):
    """The subject's objects as the trail names them: audit type -> ids."""

    def add(self, audit_type: str, *ids: object) -> None:
        self.setdefault(audit_type, set()).update(str(i) for i in ids)

    def ids(self, audit_type: str) -> set[str]:
        return self.get(audit_type, set())


def public_id(key: str) -> uuid.UUID | None:
    """``key`` as a public id (a UUID), or None when it is not one: then no object has it."""
    try:
        return uuid.UUID(key)
    except ValueError:
        return None


def provide(kind: str, provider: Provider) -> None:
    """Register ``provider`` for subjects of ``kind`` (an app's ``ready()``; called once per process)."""
    if kind not in KINDS:
        raise ValueError(f"unknown subject kind {kind!r}")
    if (kind, provider) not in _providers:
        _providers.append((kind, provider))


@dataclass(frozen=True)
class Subject:
    """A parsed ``related`` filter: what was asked, and the objects found for it."""

    text: str
    kind: str
    key: str
    parts: tuple[tuple[str, tuple[str, ...]], ...]  # sorted, hashable: (audit type, ids)


def _refusal(message: str) -> ValidationFailed:
    return ValidationFailed(f"related: {message}", errors={"related": [message]})


def parse(text: str) -> str:
    """``text`` as ``kind:key`` (spaces trimmed); a malformed subject is a ``ValidationFailed``. Reads nothing."""
    kind, sep, key = text.strip().partition(":")
    kind, key = kind.strip(), key.strip()
    if not sep or kind not in KINDS or not key:
        raise _refusal(f"name a subject as kind:key ({EXAMPLE}).")
    return f"{kind}:{key}"


def resolve(text: str) -> Subject:
    """The subject ``text`` names and its parts; a malformed or unknown subject is a ``ValidationFailed``.

    Only after the caller's ``audit.view`` (or ``audit.export``) check: whether a subject exists is not for
    everyone to learn."""
    kind, _, key = parse(text).partition(":")
    parts = Parts()
    for provider_kind, provider in _providers:
        if provider_kind == kind:
            provider(kind, key, parts)
    if not any(parts.values()):
        raise _refusal(f"no {kind} {key!r} is known.")
    return Subject(
        text=f"{kind}:{key}",
        kind=kind,
        key=key,
        parts=tuple(sorted((t, tuple(sorted(ids))) for t, ids in parts.items() if ids)),
    )


def condition(subject: Subject) -> Q:
    """The events about ``subject``: its parts as target or related object; a person's or token's own acts too."""
    found = Q(pk__in=[])
    for audit_type, ids in subject.parts:
        found |= Q(target_type=audit_type, target_id__in=ids) | Q(related_type=audit_type, related_id__in=ids)
        if subject.kind == "person" and audit_type == "user":
            found |= Q(actor_type="user", actor_id__in=ids)
        if subject.kind == "token" and audit_type == "api_token":
            found |= Q(token_id__in=ids)
    return found

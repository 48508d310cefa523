"""The acting principal: a person, a CI service account, or the system itself.

Principals are compared by (kind, id), never by id alone: user 7 and service
account 7 are different actors. For segregation of duties a service account
counts as its owning user, which ``person_key`` expresses.
"""

from __future__ import annotations

from dataclasses import dataclass


class PrincipalKind:
    USER = "user"
    SERVICE_ACCOUNT = "service_account"
    SYSTEM = "system"
    ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Principal:
    """An actor as the audit trail and rbac see it."""

    kind: str
    id: int | None
    name: str
    owner_user_id: int | None = None  # the person behind a service account
    token_id: str | None = None  # the API token used, if any
    token_scopes: tuple[str, ...] | None = None  # None: a session or operator, not narrowed
    is_superuser: bool = False

    @property
    def key(self) -> tuple[str, int | None]:
        return (self.kind, self.id)

    @property
    def person_key(self) -> tuple[str, int | None]:
        """The person accountable for this principal's acts (service accounts count as their owner)."""
        if self.kind == PrincipalKind.SERVICE_ACCOUNT and self.owner_user_id is not None:
            return (PrincipalKind.USER, self.owner_user_id)
        return self.key

    @property
    def is_authenticated(self) -> bool:
        return self.kind in (PrincipalKind.USER, PrincipalKind.SERVICE_ACCOUNT)

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "id": self.id,
            "name": self.name,
            "owner_user_id": self.owner_user_id,
            "token_id": self.token_id,
            "token_scopes": list(self.token_scopes) if self.token_scopes is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Principal:
        scopes = data.get("token_scopes")
        return cls(
            kind=data["kind"],
            id=data.get("id"),
            name=data.get("name", ""),
            owner_user_id=data.get("owner_user_id"),
            token_id=data.get("token_id"),
            token_scopes=tuple(scopes) if scopes is not None else None,
        )

    @classmethod
    def system(cls, name: str = "assay") -> Principal:
        return cls(kind=PrincipalKind.SYSTEM, id=None, name=name)

    @classmethod
    def anonymous(cls) -> Principal:
        return cls(kind=PrincipalKind.ANONYMOUS, id=None, name="anonymous")

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


def same_person(a: Principal | None, b: Principal | None) -> bool:
    """True when two principals are (or act for) the same person."""
    if a is None or b is None or a.id is None or b.id is None:
        return False
    return a.person_key == b.person_key

"""Writes for policy packs, their versions and bindings; every one ends in ``_policies_changed``.

Packs are never edited in place: a change is a new ``PolicyPackVersion``. Only
``policies.manage`` (compliance officers and admins, globally) may write. Audit events:
``policy_pack.created``, ``policy_pack.version_created``, ``policy_binding.created``,
``policy_binding.deleted``.
"""

from __future__ import annotations

import re

from django.db import transaction

from apps.audit import services as audit
from apps.core.errors import Conflict, NotFound, ValidationFailed
from apps.core.principals import Principal, PrincipalKind
from apps.jobs import events
from apps.rbac import services as rbac

from . import engine
from .catalog import SHIPPED, sha256_text, shipped_description, shipped_source, shipped_title
from .inputs import SAMPLE_INPUT
from .models import PolicyBinding, PolicyPack, PolicyPackVersion, package_for

MAX_SOURCE_BYTES = 256 * 1024
RESERVED_NAMES = frozenset({"dry-run", "bindings", "new"})
_NAME = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z0-9_.]+)", re.MULTILINE)


class PolicySourceInvalid(ValidationFailed):
    """An uploaded module that does not compile or does not give the decision's shape (400)."""

    code = "policy_invalid"
    title = "Invalid policy module"


def _policies_changed(*, actor: Principal, change: str, pack: PolicyPack, team_id: int | None = None, **extra) -> None:
    """The one place every pack or binding change passes: publishes ``policy.changed`` in the change's
    transaction. The releases re-judge every live request in a worker job (a pack may apply to any
    version, and judging them all is no work for a web request); the webhooks of ``team_id`` (everyone's
    for a change that is not team-bound) are told."""
    payload = {"change": change, "pack": pack.name, "actor": actor.name, "team_id": team_id, **extra}
    events.publish("policy.changed", payload=payload, target=pack, actor=actor)


def source_check(*, name: str, source: str) -> str:
    """Compile ``source`` and check it is pack ``name``'s module with the decision's shape; its sha256.

    Raises ``PolicySourceInvalid`` naming the line of a syntax error, a wrong package, a built-in
    outside the sandbox's allow-list (with its line), an evaluation of the sample input past the
    time or memory budget, or a document that does not carry violations as objects with rule,
    message, clause, severity.
    """
    if not source.strip():
        raise PolicySourceInvalid("The module is empty.", errors={"source": ["The module is empty."]})
    if len(source.encode("utf-8")) > MAX_SOURCE_BYTES:
        raise PolicySourceInvalid(f"The module is larger than {MAX_SOURCE_BYTES // 1024} KiB.")
    expected = package_for(name)
    declared = _PACKAGE.search(source)
    if declared is None or declared.group(1) != expected:
        found = declared.group(1) if declared else "none"
        message = f"The module must declare 'package {expected}' (found: {found})."
        raise PolicySourceInvalid(message, errors={"source": [message]})
    sha256 = sha256_text(source)
    try:
        engine.compile_check(source, sha256, expected)
        result = engine._query_local(source, sha256, expected, SAMPLE_INPUT)
        engine.read_document(result, require_violations=True)
    except engine.RegoSyntaxError as exc:
        raise PolicySourceInvalid(
            f"Syntax error: {exc.message}",
            errors={"source": [f"Syntax error: {exc.message}"]},
            extra={"line": exc.line, "syntax_errors": exc.errors},
        )
    except engine.ForbiddenBuiltin as exc:
        first = exc.calls[0] if exc.calls else {"name": "", "line": None}
        message = f"The module is refused: {exc}. Packs may call pure built-ins only (docs/policy-sandbox.md)."
        raise PolicySourceInvalid(
            message,
            errors={"source": [message]},
            extra={"line": first.get("line"), "builtin": first.get("name"), "forbidden_builtins": exc.calls},
        )
    except engine.BudgetExceeded as exc:
        message = f"The module was stopped on the sample input: {exc}."
        raise PolicySourceInvalid(message, errors={"source": [message]}, extra={"budget": exc.reason})
    except engine.EvaluationError as exc:
        message = f"The module does not give the decision's shape on the sample input: {exc}"
        raise PolicySourceInvalid(message, errors={"source": [message]})
    return sha256


def _author(actor: Principal) -> dict:
    if actor.kind == PrincipalKind.USER:
        return {"created_by_id": actor.id}
    if actor.kind == PrincipalKind.SERVICE_ACCOUNT:
        return {"created_by_id": actor.owner_user_id, "created_by_service_account_id": actor.id}
    return {}


@transaction.atomic
def policy_pack_create(
    *, actor: Principal, name: str, source: str, title: str = "", description: str = "", note: str = ""
) -> PolicyPackVersion:
    """Upload a custom pack and its first version. Audited: ``policy_pack.created`` and
    ``policy_pack.version_created``."""
    rbac.require(actor, "policies.manage", audit_action="policy_pack.created")
    if not _NAME.match(name or ""):
        raise ValidationFailed(
            "A pack name is 2-63 lowercase letters, digits or hyphens, starting with a letter.",
            errors={"name": ["Use lowercase letters, digits and hyphens."]},
        )
    if name in RESERVED_NAMES:
        raise ValidationFailed(f"{name!r} is reserved.", errors={"name": ["Reserved name."]})
    if name in SHIPPED or PolicyPack.objects.filter(name=name).exists():
        raise Conflict(f"A policy pack named {name!r} exists already; upload a new version of it instead.")
    sha256 = source_check(name=name, source=source)
    author = _author(actor)
    pack = PolicyPack.objects.create(
        name=name, title=title or name, description=description, created_by_id=author.get("created_by_id")
    )
    audit.record(action="policy_pack.created", actor=actor, target=pack, after={"name": name, "title": pack.title})
    version = PolicyPackVersion.objects.create(pack=pack, number=1, source=source, sha256=sha256, note=note, **author)
    audit.record(
        action="policy_pack.version_created",
        actor=actor,
        target=version,
        related=pack,
        after={"pack": name, "number": 1, "sha256": sha256, "note": note},
    )
    _policies_changed(actor=actor, change="pack_created", pack=pack, version=1, sha256=sha256)
    return version


@transaction.atomic
def policy_pack_version_create(*, actor: Principal, name: str, source: str, note: str = "") -> PolicyPackVersion:
    """A new version of a custom pack (shipped packs change with their file). Audited:
    ``policy_pack.version_created``. The pack row is locked so numbers are gapless and unique."""
    rbac.require(actor, "policies.manage", audit_action="policy_pack.version_created")
    pack = PolicyPack.objects.select_for_update().filter(name=name).first()
    if pack is None:
        raise NotFound(f"No policy pack named {name!r}.")
    if pack.shipped:
        raise Conflict("A shipped pack changes with the release of Assay; bind a custom pack to add rules.")
    sha256 = source_check(name=name, source=source)
    latest = pack.versions.order_by("-number").first()
    if latest is not None and latest.sha256 == sha256:
        raise Conflict(f"Version {latest.number} has this very source already.")
    number = (latest.number if latest else 0) + 1
    version = PolicyPackVersion.objects.create(
        pack=pack, number=number, source=source, sha256=sha256, note=note, **_author(actor)
    )
    audit.record(
        action="policy_pack.version_created",
        actor=actor,
        target=version,
        related=pack,
        before={"number": latest.number, "sha256": latest.sha256} if latest else None,
        after={"pack": name, "number": number, "sha256": sha256, "note": note},
    )
    _policies_changed(actor=actor, change="version_created", pack=pack, version=number, sha256=sha256)
    return version


@transaction.atomic
def policy_binding_create(
    *, actor: Principal, pack_name: str, team=None, model=None, environment: str = ""
) -> PolicyBinding:
    """Apply a pack to every model, a team's models or one model, in one environment or all. Audited:
    ``policy_binding.created``."""
    rbac.require(actor, "policies.manage", audit_action="policy_binding.created")
    pack = PolicyPack.objects.filter(name=pack_name).first()
    if pack is None:
        raise NotFound(f"No policy pack named {pack_name!r}.")
    if team is not None and model is not None:
        raise ValidationFailed("A binding names a team or a model, not both.")
    environment = (environment or "").strip()
    if environment and not re.match(r"^[a-z0-9][a-z0-9_-]{0,63}$", environment):
        raise ValidationFailed("An environment name is lowercase letters, digits, '-' and '_'.")
    exists = PolicyBinding.objects.filter(pack=pack, team=team, model=model, environment=environment).first()
    if exists is not None:
        raise Conflict(f"This binding exists already (id {exists.pk}).", extra={"existing_binding": exists.pk})
    binding = PolicyBinding.objects.create(
        pack=pack, team=team, model=model, environment=environment, created_by_id=_author(actor).get("created_by_id")
    )
    audit.record(
        action="policy_binding.created",
        actor=actor,
        target=binding,
        related=pack,
        after={"pack": pack.name, "scope": binding.scope_label},
    )
    team_id = team.pk if team is not None else model.owner_team_id if model is not None else None
    _policies_changed(actor=actor, change="binding_created", pack=pack, team_id=team_id, binding=binding.pk)
    return binding


@transaction.atomic
def policy_binding_delete(*, actor: Principal, binding_id: int) -> None:
    """Remove a binding. Audited: ``policy_binding.deleted``."""
    rbac.require(actor, "policies.manage", audit_action="policy_binding.deleted")
    binding = (
        PolicyBinding.objects.select_for_update(of=("self",))
        .select_related("pack", "model")
        .filter(pk=binding_id)
        .first()
    )
    if binding is None:
        raise NotFound("No such policy binding.")
    pack = binding.pack
    team_id = binding.team_id or (binding.model.owner_team_id if binding.model_id else None)
    audit.record(
        action="policy_binding.deleted",
        actor=actor,
        target=binding,
        related=pack,
        before={"pack": pack.name, "scope": binding.scope_label},
    )
    binding.delete()
    _policies_changed(actor=actor, change="binding_deleted", pack=pack, team_id=team_id, binding=binding_id)


def shipped_versions_store(entries: list[tuple[str, str, str]], *, descriptions: dict) -> list[PolicyPackVersion]:
    """For each shipped (name, source, title): create the pack if new, and a version if the source changed.

    Runs as the system inside the caller's transaction (after every migrate, and after a test
    flush). A shipped pack's first version is installed silently, like the rest of the schema;
    a later version (the file changed with an upgrade of Assay) is audited as
    ``policy_pack.version_created`` and passes ``_policies_changed``, since decisions change.
    """
    actor = Principal.system("policies-sync")
    created = []
    for name, source, title in entries:
        description = descriptions.get(name, "")
        pack, new = PolicyPack.objects.get_or_create(
            name=name, defaults={"title": title, "description": description, "shipped": True}
        )
        if not new and (pack.title != title or pack.description != description):
            PolicyPack.objects.filter(pk=pack.pk).update(title=title, description=description)
        pack = PolicyPack.objects.select_for_update().get(pk=pack.pk)
        sha256 = sha256_text(source)
        latest = pack.versions.order_by("-number").first()
        if latest is not None and latest.sha256 == sha256:
            continue
        number = (latest.number if latest else 0) + 1
        version = PolicyPackVersion.objects.create(
            pack=pack, number=number, source=source, sha256=sha256, note="shipped with Assay"
        )
        if latest is not None:
            audit.record(
                action="policy_pack.version_created",
                actor=actor,
                target=version,
                related=pack,
                before={"number": latest.number, "sha256": latest.sha256},
                after={"pack": name, "number": number, "sha256": sha256, "shipped": True},
            )
            _policies_changed(actor=actor, change="version_created", pack=pack, version=number, sha256=sha256)
        created.append(version)
    return created


@transaction.atomic
def shipped_packs_sync() -> list[PolicyPackVersion]:
    """Store a new version of each shipped pack whose file changed; returns the versions created.

    Written as the system (no actor: it runs after migrate); audited as ``policy_pack.version_created``.
    """
    return shipped_versions_store(
        [(name, shipped_source(name), shipped_title(shipped_source(name), name)) for name in SHIPPED],
        descriptions={name: shipped_description(shipped_source(name)) for name in SHIPPED},
    )

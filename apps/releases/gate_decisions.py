"""The stored gate decisions: what the gate answers from, re-made by jobs when a decision can change.

The gate (``selectors.gate_for``) never evaluates a policy: it reads the ``GateDecision`` of the
version and environment, made by ``gate_decisions_refresh``. That service runs in the reactions to
every event that can change a decision (``apps.releases.subscribers``): a version verified, an
evidence run finished, a finding reviewed, the model's facts changed, a policy or an environment
changed, a release request changed state. Each (version, environment) is judged as the gate would
judge it: with the release request the gate picks (the newest approved, else the open one, else
the newest) as the policy input's ``release``. A decision equal to the stored one (the parts in
``services.DECISION_PARTS``) writes nothing; a new or changed one is stored with its audit event
``release.gate_decided`` in the same transaction, so a refresh that runs twice writes once.

Policies read no clock (their input is the facts, evidence, packs and the request), so a stored
decision only goes stale through one of those events; the gate reads an open request past its
time as expired from the request itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit import services as audit
from apps.core.principals import Principal
from apps.registry.choices import VersionStatus
from apps.registry.models import ModelVersion

from . import duties, gates, selectors
from .choices import LIVE
from .models import Environment, GateDecision, ReleaseRequest
from .services import DECISION_PARTS, blocking
from .services.common import SYSTEM

# How many versions one batch job refreshes (a policy or environment change re-judges all of them).
BATCH = 500


def _summary(decision: dict) -> dict:
    return {
        "allow": decision.get("allow"),
        "binding_digest": decision.get("binding_digest"),
        "violations": [v.get("rule") for v in decision.get("violations", [])],
        "missing_evidence": [m.get("rule") or m.get("kind") for m in decision.get("missing_evidence", [])],
        "required_approvals": [f"{r['role']}:{r['count']}" for r in decision.get("required_approvals", [])],
    }


def _same(stored: dict, decision: dict) -> bool:
    return all(stored.get(part) == decision.get(part) for part in (*DECISION_PARTS, REQUESTER_REFUSALS))


# What the packs would refuse in a request made now, by the version's author or by anyone else (the gate's
# request preview reads it, so that the gate never evaluates a policy): the blocking violations a request
# adds to the decision without one. Segregation-of-duties rules compare the requester with the author, so
# these two requesters are the two answers such a rule can give.
REQUESTER_REFUSALS = "requester_refusals"
SOMEONE_ELSE = 0  # no account has id 0: a requester who is not the author


def _requesters(version: ModelVersion) -> list[int]:
    """The requesters a preview needs: each person accountable for the version (``duties.version_authors``),
    then someone else."""
    return [*sorted(duties.version_authors(version)), SOMEONE_ELSE]


def _requester_cases(version: ModelVersion, picked: list) -> list:
    """(environment, release input) for a request by each author and by someone else, where a request is needed."""
    return [
        (env, gates.release_input(change_reference="(change reference)", requested_by_id=who, emergency=False))
        for env, release in picked
        if release is None or release.status not in LIVE
        for who in _requesters(version)
    ]


def _blocking_keys(decision: dict) -> set[tuple]:
    return {(v["rule"], v["message"]) for v in blocking(decision)}


def _with_requester_refusals(version: ModelVersion, picked: list, made: list[dict], extra: list[dict]) -> None:
    """Stamp each decision with the refusals a request would add (``REQUESTER_REFUSALS``): those of a request
    by any of the version's authors, and by someone else; None where a live request exists (nobody requests
    again)."""
    requesters = _requesters(version)
    extra_iter = iter(extra)
    for (_env, release), decision in zip(picked, made, strict=True):
        if release is not None and release.status in LIVE:
            decision[REQUESTER_REFUSALS] = None
            continue
        before = _blocking_keys(decision)
        refusals: dict[str, list] = {"author": [], "someone_else": []}
        for who in requesters:
            added = [
                {"rule": v["rule"], "message": v["message"]}
                for v in blocking(next(extra_iter))
                if (v["rule"], v["message"]) not in before
            ]
            side = refusals["someone_else" if who == SOMEONE_ELSE else "author"]
            side.extend(r for r in added if r not in side)
        decision[REQUESTER_REFUSALS] = refusals


def _refresh_version(version: ModelVersion, environments: list[Environment], *, reason: str, actor: Principal) -> int:
    """Judge one version in ``environments`` and store what changed, in one transaction; how many rows changed."""
    releases = list(
        ReleaseRequest.objects.filter(version=version, environment__in=environments).prefetch_related("approvals")
    )
    picked = [(env, selectors._pick([r for r in releases if r.environment_id == env.pk])) for env in environments]
    cases = [(env, gates.release_input_for(r) if r is not None else None) for env, r in picked]
    now = timezone.now()
    extra = _requester_cases(version, picked)
    judged = [d.as_dict() for d in gates.decide_each(version=version, cases=cases + extra)]
    made = judged[: len(cases)]
    _with_requester_refusals(version, picked, made, judged[len(cases) :])
    changed = 0
    with transaction.atomic():
        stored = {
            row.environment_id: row
            for row in GateDecision.objects.select_for_update().filter(version=version, environment__in=environments)
        }
        for (env, _release), decision in zip(picked, made, strict=True):
            row = stored.get(env.pk)
            if row is not None and _same(row.decision, decision):
                continue
            decision["evaluated_at"] = now.isoformat()
            before = _summary(row.decision) if row is not None else None
            if row is None:
                row = GateDecision(version=version, environment=env)
            row.decision, row.binding_digest, row.evaluated_at = decision, decision["binding_digest"], now
            row.save()
            audit.record(
                action="release.gate_decided",
                actor=actor,
                target=version,
                related=env,
                before=before,
                after={"environment": env.name, **_summary(decision)},
                reason=reason,
            )
            changed += 1
    return changed


def gate_decisions_refresh(
    *,
    version_ids: Iterable[int] | None = None,
    environment_ids: Iterable[int] | None = None,
    missing_only: bool = False,
    reason: str,
    actor: Principal | None = None,
    progress: Callable[[int, str], Any] | None = None,
) -> int:
    """Re-make the stored gate decisions of these versions (None: every version not retired) in these
    environments (None: all); with ``missing_only``, only the (version, environment) pairs that have
    none yet. Returns how many stored decisions were written (each audited ``release.gate_decided``).

    Each version is judged and stored in a transaction of its own, under the row locks of its stored
    decisions; a decision that did not change is not written.
    """
    actor = actor or SYSTEM
    envs = list(Environment.objects.order_by("pk"))
    if environment_ids is not None:
        wanted = set(environment_ids)
        envs = [e for e in envs if e.pk in wanted]
    qs = ModelVersion.objects.exclude(status=VersionStatus.RETIRED)
    if version_ids is not None:
        qs = qs.filter(pk__in=list(version_ids))
    ids = list(qs.order_by("pk").values_list("pk", flat=True))
    written = 0
    for done, version_id in enumerate(ids, start=1):
        todo = envs
        if missing_only:
            have = set(
                GateDecision.objects.filter(version_id=version_id, environment__in=envs).values_list(
                    "environment_id", flat=True
                )
            )
            todo = [e for e in envs if e.pk not in have]
        version = ModelVersion.objects.select_related("model").filter(pk=version_id).first()
        if todo and version is not None:
            try:
                written += _refresh_version(version, todo, reason=reason, actor=actor)
            except IntegrityError:  # another job stored the first decision meanwhile: judge against it
                written += _refresh_version(version, todo, reason=reason, actor=actor)
        if progress is not None and (done % 50 == 0 or done == len(ids)):
            progress(5 + 95 * done // len(ids), f"{done} of {len(ids)} versions judged, {written} decisions stored")
    return written


def version_batches(*, environment_ids: list[int] | None = None) -> list[list[int]]:
    """Every version not retired, by id, in batches of ``BATCH`` (one refresh job each)."""
    ids = list(ModelVersion.objects.exclude(status=VersionStatus.RETIRED).order_by("pk").values_list("pk", flat=True))
    return [ids[i : i + BATCH] for i in range(0, len(ids), BATCH)]

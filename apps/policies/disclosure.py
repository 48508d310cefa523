"""A stored policy decision as one reader may see it: datasets outside their scope hidden.

A decision is evaluated on every fact about a version, whoever asks (the same version must get
the same decision), so its input document names every dataset in the version's lineage, and the
packs' messages may repeat those names. A reader who may see the version but not one of its
datasets (another team's training data) gets the decision with that dataset's name, digest, id
and scan run replaced wherever they occur ("a dataset you cannot see"). Rules, outcomes,
violations and counts are unchanged. The teams that can read the model (``access.teams``) stay:
who can read a model is a fact about that model, which the reader may see.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from apps.core.principals import Principal
from apps.rbac import services as rbac

HIDDEN_VALUE = "hidden"


def dataset_ids(decision: dict | None) -> list[int]:
    """The ids of the datasets a stored decision names (its lineage and the sources of scrubbed copies)."""
    document = decision.get("input") if isinstance(decision, dict) and isinstance(decision.get("input"), dict) else {}
    datasets = [d for d in document.get("datasets") or [] if isinstance(d, dict)]
    ids = [d.get("id") for d in datasets]
    ids += [(d.get("scrubbed_from") or {}).get("id") for d in datasets if isinstance(d.get("scrubbed_from"), dict)]
    return [i for i in ids if i is not None]


def visible_dataset_ids(*, actor: Principal, decisions: Iterable) -> set:
    """Which datasets named by any of ``decisions`` the actor may see: one query for a page of releases."""
    from apps.registry.models import Dataset

    return rbac.visible_pks(actor, Dataset, [i for d in decisions for i in dataset_ids(d)], "registry.view")


def _hidden_datasets(actor: Principal, document: dict, known: Iterable | None, visible_ids: set | None) -> list[dict]:
    from apps.registry.models import Dataset

    datasets = [d for d in document.get("datasets") or [] if isinstance(d, dict)]
    ids = dataset_ids({"input": document})
    if visible_ids is not None:
        visible = set(visible_ids)
    else:
        # datasets the caller has loaded already are judged without a query (rbac reads their owner team)
        loaded = {d.pk: d for d in known or () if d is not None}
        visible = {pk for pk, d in loaded.items() if rbac.allows(actor, "registry.view", d)}
        visible |= rbac.visible_pks(actor, Dataset, [i for i in ids if i not in loaded], "registry.view")
    hidden = [d for d in datasets if d.get("id") not in visible]
    for d in datasets:
        source = d.get("scrubbed_from")
        if isinstance(source, dict) and source.get("id") not in visible:
            hidden.append({"id": source.get("id"), "name": source.get("name")})
    return hidden


_HEX_RUN = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{8,64}(?![0-9a-fA-F])")


def _replace(value: Any, names: re.Pattern | None, labels: dict[str, str], tokens: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _replace(v, names, labels, tokens) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, names, labels, tokens) for v in value]
    if isinstance(value, str):
        if value in tokens:
            return tokens[value]
        for token, shown in tokens.items():
            if token in value:
                value = value.replace(token, shown)
        # a message may quote a digest's first characters ("3f2a9c1e0b7d…")
        value = _HEX_RUN.sub(
            lambda m: HIDDEN_VALUE if any(t.startswith(m.group(0).lower()) for t in tokens) else m.group(0), value
        )
        if names is not None:
            value = names.sub(lambda m: labels[m.group(0)], value)
    return value


def decision_for_reader(
    *, actor: Principal, decision: dict | None, datasets: Iterable | None = None, visible_ids: set | None = None
) -> dict | None:
    """``decision`` (``PolicyDecision.as_dict()``, as stored on a release) for ``actor``; unchanged when
    every dataset it names is in the actor's scope (no copy is made then).

    ``datasets``: Dataset rows the caller has loaded (a version's lineage), judged without a query;
    ``visible_ids``: what ``visible_dataset_ids`` gave for a whole page of decisions.
    """
    if not isinstance(decision, dict):
        return decision
    document = decision.get("input") if isinstance(decision.get("input"), dict) else {}
    datasets = _hidden_datasets(actor, document, datasets, visible_ids)
    if not datasets:
        return decision
    labels = {d["name"]: rbac.HIDDEN_DATASET for d in datasets if d.get("name")}
    tokens: dict[str, str] = {}
    for d in datasets:
        if d.get("sha256"):
            tokens[d["sha256"]] = HIDDEN_VALUE
        scan = d.get("pii_scan")
        if isinstance(scan, dict) and scan.get("run"):
            tokens[scan["run"]] = HIDDEN_VALUE
    names = None
    if labels:
        alternatives = "|".join(re.escape(n) for n in sorted(labels, key=len, reverse=True))
        names = re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])")
    shown = _replace(decision, names, labels, tokens)
    hidden_ids = {d.get("id") for d in datasets if d.get("id") is not None}
    shown_input = shown.get("input") or {}
    for entry in shown_input.get("datasets") or []:
        if isinstance(entry, dict) and entry.get("id") in hidden_ids:
            entry.update(id=None, columns=[], hidden=True)
        source = entry.get("scrubbed_from") if isinstance(entry, dict) else None
        if isinstance(source, dict) and source.get("id") in hidden_ids:
            source["id"] = None
    for seen in shown.get("evidence") or []:
        if isinstance(seen, dict) and seen.get("run") == HIDDEN_VALUE:
            seen.update(run=None, hidden=True)
    lineage = (shown_input.get("version") or {}).get("lineage") or {}
    if isinstance(lineage.get("training_datasets"), list):
        lineage["training_datasets"] = [None if i in hidden_ids else i for i in lineage["training_datasets"]]
    if lineage.get("evaluation_dataset") in hidden_ids:
        lineage["evaluation_dataset"] = None
    return shown

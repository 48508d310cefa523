"""The ``assay.pii/v1`` summary of a (merged) partial: what policies read. See the package docstring."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json

from .detection import PATTERNS_NAME, SUPPORTED_ENTITIES, PiiConfig
from .scan import SCORE_SCALE, PiiPartial

SCHEMA = "assay.pii/v1"
# A structured column holds an entity type when at least this share of its sampled rows do.
CLASSIFY_SHARE = 0.3


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _score(value: int | None) -> float | None:
    return None if value is None else round(value / SCORE_SCALE, 4)


def _share(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def classify(column: dict) -> dict[str, dict]:
    """The entity types a structured column's sample says it holds: {type: {share, score stats}}."""
    sample = column.get("sample") or {}
    total = sum(entry["rows"] for entry in sample.values())
    found: dict[str, dict] = {}
    for entry in sample.values():
        for entity, score in entry["entities"].items():
            acc = found.setdefault(entity, {"rows": 0, "score_sum": 0, "min": score, "max": score})
            acc["rows"] += entry["rows"]
            acc["score_sum"] += score * entry["rows"]
            acc["min"], acc["max"] = min(acc["min"], score), max(acc["max"], score)
    return {
        entity: {
            "share": _share(acc["rows"], total),
            "score": {
                "min": _score(acc["min"]),
                "mean": _score(round(acc["score_sum"] / acc["rows"])),
                "max": _score(acc["max"]),
            },
        }
        for entity, acc in sorted(found.items())
        if total and acc["rows"] / total >= CLASSIFY_SHARE
    }


def _entity_entry(entity: str, stats: dict, n_rows: int, score: dict | None = None) -> dict:
    if score is None:
        count = stats["count"]
        score = {
            "min": _score(stats["score_min"]),
            "mean": _score(round(stats["score_sum"] / count)) if count and stats["score_min"] is not None else None,
            "max": _score(stats["score_max"]),
        }
    return {
        "entity_type": entity,
        "count": stats["count"],
        "rows": stats["rows"],
        "share_of_rows": _share(stats["rows"], n_rows),
        "score": score,
        "examples": [stats["examples"][key] for key in sorted(stats["examples"])],
    }


def reported_entities(partial: PiiPartial) -> dict[str, list[dict]]:
    """Per scanned column, the entity entries the report lists (free text: all found; structured: classified)."""
    out: dict[str, list[dict]] = {}
    for name, column in partial.columns.items():
        entries = []
        if column["kind"] == "free_text":
            for entity, stats in column["entities"].items():
                if stats["count"]:
                    entries.append(_entity_entry(entity, stats, partial.n_rows))
        else:
            for entity, info in classify(column).items():
                stats = column["entities"].get(entity)
                if not stats or not stats["count"]:
                    continue
                # Shape-counted types (PERSON, LOCATION, DATE_TIME) have no score of their own: the sample's.
                score = info["score"] if stats["score_min"] is None else None
                entry = _entity_entry(entity, stats, partial.n_rows, score)
                entry["sample_share"] = info["share"]
                entries.append(entry)
        entries.sort(key=lambda e: SUPPORTED_ENTITIES.index(e["entity_type"]))
        out[name] = entries
    return out


def summary(partial: PiiPartial, config: PiiConfig, analyzer_name: str | None = None) -> dict:
    """The ``assay.pii/v1`` report of a (merged) partial: strict JSON, masked examples, never a raw value."""
    analyzer_name = analyzer_name or partial.nlp
    reported = reported_entities(partial)
    n_rows = partial.n_rows
    limitations = []
    if analyzer_name == PATTERNS_NAME:
        limitations.append(
            "No spaCy pipeline: PERSON and LOCATION were not looked for, "
            "and DATE_TIME only by presidio's date patterns."
        )
    columns, findings = [], []
    for name, column in partial.columns.items():
        structured = column["kind"] == "structured"
        columns.append(
            {
                "name": name,
                "role": column["role"],
                "kind": column["kind"],
                "type": column["type"],
                "n_values": column["n_values"],
                "classified_from_sample": len(column.get("sample") or {}) if structured else None,
                "entities": reported[name],
            }
        )
        for entry in reported[name]:
            findings.append(
                {
                    "id": f"{name}:{entry['entity_type']}",
                    "column": name,
                    "entity_type": entry["entity_type"],
                    "count": entry["count"],
                    "rows": entry["rows"],
                    "share_of_rows": entry["share_of_rows"],
                    "max_score": entry["score"]["max"],
                }
            )
    reported_ids = {f["id"] for f in findings}
    totals: dict[str, dict] = {}
    for f in findings:
        total = totals.setdefault(f["entity_type"], {"count": 0, "rows": 0, "share_of_rows": 0.0, "columns": []})
        total["count"] += f["count"]
        total["columns"].append(f["column"])
    rows_with_pii = 0
    for key, count in partial.row_patterns.items():
        present = [p for p in json.loads(key) if p in reported_ids]
        if present:
            rows_with_pii += count
        for entity in {p.rsplit(":", 1)[1] for p in present}:
            totals[entity]["rows"] += count
    for total in totals.values():
        total["share_of_rows"] = _share(total["rows"], n_rows)
    totals = {e: totals[e] for e in SUPPORTED_ENTITIES if e in totals}
    allow = sorted(set(config.allow_list))
    columns_with_pii = [c["name"] for c in columns if c["entities"]]
    return {
        "schema": SCHEMA,
        "engine": {
            "nlp": analyzer_name,
            "presidio_analyzer": _version("presidio-analyzer"),
            "spacy": _version("spacy") if analyzer_name != PATTERNS_NAME else None,
            "limitations": limitations,
        },
        "parameters": {
            "entities": list(config.entity_types),
            "score_threshold": float(config.score_threshold),
            "language": config.language,
            "sample_size": int(config.sample_size),
            "classify_share": CLASSIFY_SHARE,
            "allow_list_size": len(allow),
            "allow_list_sha256": hashlib.sha256(json.dumps(allow).encode()).hexdigest() if allow else None,
            "nlp_requested": config.nlp,
        },
        "n_rows": n_rows,
        "columns": columns,
        "skipped_columns": [{"name": name, **info} for name, info in partial.skipped.items()],
        "findings": findings,
        "totals": totals,
        "rows_with_pii": rows_with_pii,
        "columns_with_pii": columns_with_pii,
        "has_pii": bool(findings),
    }

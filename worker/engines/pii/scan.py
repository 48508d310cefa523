"""Scanning record batches into a mergeable ``PiiPartial``.

Every number in a partial is a sum, a minimum or a maximum, and every sample is a bottom-k
by value fingerprint, so ``merge_partials`` over chunks gives exactly the partial of one pass:

- free-text columns: per entity type, findings (``count``), cells with at least one
  (``rows``), scores in millionths (sum, min, max) and up to five masked examples (the
  five smallest fingerprints);
- structured columns: per entity type, the cells that a cheap full-column check accepts (a
  presidio pattern recognizer, the column's name as context, for e-mails, phones, cards,
  SSNs, IBANs and IPs; the value's shape for PERSON, LOCATION, DATE_TIME), plus a sample of
  ``sample_size`` distinct values (those of smallest fingerprint) analyzed in full, with the
  spaCy pipeline, and weighted by how many rows hold them. Which entity types a column holds is
  decided from the merged sample in ``summary``, never in a chunk;
- rows: how many rows show each combination of (column, entity type) detections, so that the
  report can say exactly how many rows hold a type in any column.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import regex as re

from .detection import (
    NER_ENTITIES,
    PiiConfig,
    analyzer,
    detect,
    value_shapes,
    whole_value_scores,
)
from .masking import fingerprint, mask_example

ROLES = ("feature", "label", "prediction", "sensitive", "identifier", "text")
PARTIAL_FORMAT = "assay.pii.partial/v1"
SCORE_SCALE = 1_000_000  # scores are summed as integers (millionths) so merging is exact
EXAMPLES = 5
SLICE_ROWS = 2048  # rows analyzed between two progress calls
# Structured columns: the pattern types checked in every cell (PERSON, LOCATION, DATE_TIME go by shape).
STRUCTURED_PATTERN_ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS")
# Integer columns: the types a number can be (a card number, an SSN or a phone number stored as int64).
INTEGER_ENTITIES = ("PHONE_NUMBER", "CREDIT_CARD", "US_SSN")
_INTEGER_MIN = 1_000_000  # fewer than seven digits cannot be any of them
_CACHE_LIMIT = 200_000
_WORDS = re.compile(r"[\p{L}]+")

ProgressFn = Callable[[float], None]


class ColumnsProblem(ValueError):
    """The columns asked for cannot be scanned as given; the message names columns, roles and types only."""


@dataclass(frozen=True)
class ColumnSpec:
    """A column to scan and its role in the registry's dataset schema (``text`` = free text, scanned in full)."""

    name: str
    role: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ColumnsProblem(f"column {self.name!r} has role {self.role!r}; roles are {', '.join(ROLES)}")


def _score(value: float) -> int:
    return int(round(value * SCORE_SCALE))


def _new_stats() -> dict:
    return {"count": 0, "rows": 0, "score_sum": 0, "score_min": None, "score_max": None, "examples": {}}


def _wants_example(stats: dict, fp: int) -> bool:
    """True when a value of this fingerprint would be among the kept examples (so masking it is worth it)."""
    examples = stats["examples"]
    return len(examples) < EXAMPLES or f"{fp:016x}" < max(examples)


def _add(stats: dict, *, count: int, rows: int, score: int | None, example: tuple[int, str] | None) -> None:
    stats["count"] += count
    stats["rows"] += rows
    if score is not None:
        stats["score_sum"] += score * count
        stats["score_min"] = score if stats["score_min"] is None else min(stats["score_min"], score)
        stats["score_max"] = score if stats["score_max"] is None else max(stats["score_max"], score)
    if example is not None:
        _keep_examples(stats["examples"], {f"{example[0]:016x}": example[1]})


def _keep_examples(into: dict, more: Mapping[str, str]) -> None:
    into.update(more)
    if len(into) > EXAMPLES:
        for key in sorted(into)[EXAMPLES:]:
            del into[key]


def _merge_stats(a: dict, b: dict) -> dict:
    out = {
        "count": a["count"] + b["count"],
        "rows": a["rows"] + b["rows"],
        "score_sum": a["score_sum"] + b["score_sum"],
        "score_min": min((v for v in (a["score_min"], b["score_min"]) if v is not None), default=None),
        "score_max": max((v for v in (a["score_max"], b["score_max"]) if v is not None), default=None),
        "examples": dict(a["examples"]),
    }
    _keep_examples(out["examples"], b["examples"])
    return out


@dataclass
class PiiPartial:
    """What a scan of some rows found; ``merge_partials`` of chunks equals the scan of all of them.

    ``columns`` maps a scanned column's name to its counts (see the module docstring), ``skipped``
    the columns not scanned to why, ``row_patterns`` a JSON list of "column:ENTITY" detections to the
    number of rows showing exactly that combination. No raw value is stored: examples are masked
    and samples are keyed by 64-bit fingerprints.
    """

    n_rows: int
    columns: dict[str, dict]
    skipped: dict[str, dict] = field(default_factory=dict)
    row_patterns: dict[str, int] = field(default_factory=dict)
    nlp: str = ""
    sample_size: int = 1000

    def to_json(self) -> str:
        """Strict JSON; ``PiiPartial.from_json`` reverses it."""
        return json.dumps(
            {
                "format": PARTIAL_FORMAT,
                "n_rows": self.n_rows,
                "nlp": self.nlp,
                "sample_size": self.sample_size,
                "columns": [{"name": name, **col} for name, col in self.columns.items()],
                "skipped": [{"name": name, **info} for name, info in self.skipped.items()],
                "row_patterns": self.row_patterns,
            },
            sort_keys=True,
            allow_nan=False,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> PiiPartial:
        """The partial ``to_json`` wrote."""
        data = json.loads(text)
        if data.get("format") != PARTIAL_FORMAT:
            raise ValueError(f"not a PII partial ({PARTIAL_FORMAT}): format is {data.get('format')!r}")
        return cls(
            n_rows=int(data["n_rows"]),
            columns={c.pop("name"): c for c in data["columns"]},
            skipped={s.pop("name"): s for s in data["skipped"]},
            row_patterns={k: int(v) for k, v in data["row_patterns"].items()},
            nlp=data["nlp"],
            sample_size=int(data["sample_size"]),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PiiPartial) and self.to_json() == other.to_json()


def merge_partials(parts: Iterable[PiiPartial]) -> PiiPartial:
    """The partial of all the chunks together: sums, minima, maxima and bottom-k samples, exactly.

    The chunks must come from scans of the same columns with the same configuration; a
    different column set, NLP engine or sample size is a ValueError.
    """
    parts = list(parts)
    if not parts:
        raise ValueError("nothing to merge: no partials given")
    first = parts[0]
    out = PiiPartial(
        n_rows=0,
        columns=json.loads(json.dumps(first.columns)),
        skipped=dict(first.skipped),
        nlp=first.nlp,
        sample_size=first.sample_size,
    )
    for col in out.columns.values():
        col["n_values"] = 0
        col["entities"] = {}
        if "sample" in col:
            col["sample"] = {}
    for part in parts:
        if (list(part.columns), part.nlp, part.sample_size) != (list(first.columns), first.nlp, first.sample_size):
            raise ValueError(
                "these partials come from different scans (other columns, NLP engine or sample size); "
                "only chunks of one scan can be merged"
            )
        out.n_rows += part.n_rows
        for key, count in part.row_patterns.items():
            out.row_patterns[key] = out.row_patterns.get(key, 0) + count
        for name, col in part.columns.items():
            into = out.columns[name]
            into["n_values"] += col["n_values"]
            for entity, stats in col["entities"].items():
                into["entities"][entity] = _merge_stats(into["entities"].get(entity) or _new_stats(), stats)
            if "sample" in col:
                for fp, entry in col["sample"].items():
                    seen = into["sample"].get(fp)
                    into["sample"][fp] = (
                        entry if seen is None else {"rows": seen["rows"] + entry["rows"], "entities": entry["entities"]}
                    )
    for col in out.columns.values():
        if "sample" in col and len(col["sample"]) > out.sample_size:
            keep = heapq.nsmallest(out.sample_size, col["sample"])
            col["sample"] = {fp: col["sample"][fp] for fp in keep}
    out.columns = {name: _sorted_column(col) for name, col in out.columns.items()}
    out.row_patterns = dict(sorted(out.row_patterns.items()))
    return out


def _sorted_column(col: dict) -> dict:
    col["entities"] = dict(sorted(col["entities"].items()))
    if "sample" in col:
        col["sample"] = dict(sorted(col["sample"].items()))
    return col


# --- scanning -------------------------------------------------------------------------------


def _context_words(column: str) -> list[str]:
    """A column's name as presidio context words: ``phone_number`` -> ["phone", "number"]."""
    return [w.lower() for w in _WORDS.findall(column.replace("_", " "))] or [column.lower()]


class _ColumnScan:
    """The running counts of one column."""

    def __init__(self, spec: ColumnSpec, kind: str, arrow_type: str, config: PiiConfig, types: tuple[str, ...]):
        self.spec, self.kind, self.config, self.types = spec, kind, config, types
        self.arrow_type = arrow_type
        self.integer = arrow_type.startswith(("int", "uint"))
        self.n_values = 0
        self.stats: dict[str, dict] = {}
        self.cache: dict[Any, Any] = {}
        self.context = _context_words(spec.name)
        self.allow = set(config.allow_list)
        # bottom-k sample of distinct values: fingerprint -> [value, rows]
        self.sample: dict[int, list] = {}
        self.sample_cut: int | None = None

    def stats_for(self, entity: str) -> dict:
        return self.stats.setdefault(entity, _new_stats())

    def to_dict(self, sample: dict | None) -> dict:
        out = {
            "role": self.spec.role,
            "kind": self.kind,
            "type": self.arrow_type,
            "n_values": self.n_values,
            "entities": dict(sorted(self.stats.items())),
        }
        if self.kind == "structured":
            out["sample"] = dict(sorted((sample or {}).items()))
        return out


def _distinct(array) -> tuple[list, np.ndarray, np.ndarray]:
    """Distinct non-null values of a pyarrow array, each row's index into them (-1 for null), and counts."""
    import pyarrow as pa

    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    encoded = array.dictionary_encode()
    values = encoded.dictionary.to_pylist()
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    if encoded.null_count:
        indices = np.where(encoded.indices.is_valid().to_numpy(zero_copy_only=False), indices, -1)
    indices = indices.astype(np.int64, copy=False)
    counts = np.bincount(indices[indices >= 0], minlength=len(values))
    return values, indices, counts


class _Scanner:
    def __init__(self, specs: list[ColumnSpec], config: PiiConfig):
        self.specs, self.config = specs, config
        self.az = analyzer(config)
        self.types = self.az.detectable(config.entity_types)
        self.columns: dict[str, _ColumnScan] = {}
        self.skipped: dict[str, dict] = {}
        self.row_patterns: dict[str, int] = {}
        self.n_rows = 0
        self.schema_checked = False

    # -- schema --

    def check_schema(self, schema) -> None:
        import pyarrow as pa

        missing = [s.name for s in self.specs if s.name not in schema.names]
        if missing:
            raise ColumnsProblem(
                f"column(s) {', '.join(repr(m) for m in missing)} are not in the data, "
                f"which has {', '.join(schema.names)}"
            )
        for spec in self.specs:
            t = schema.field(spec.name).type
            value_type = t.value_type if pa.types.is_dictionary(t) else t
            is_string = pa.types.is_string(value_type) or pa.types.is_large_string(value_type)
            if spec.role == "text":
                if not (is_string or pa.types.is_null(value_type)):
                    raise ColumnsProblem(
                        f"column {spec.name!r} has role text (free text) but holds {t}, not strings; "
                        "give it another role or fix the schema"
                    )
                kind, types = "free_text", self.types
            elif is_string:
                kind, types = "structured", self.types
            elif pa.types.is_integer(value_type) and spec.role not in ("label", "prediction"):
                kind, types = "structured", tuple(e for e in self.types if e in INTEGER_ENTITIES)
            else:
                reason = "no values (null type)" if pa.types.is_null(value_type) else f"{t} cannot hold PII"
                if spec.role in ("label", "prediction") and pa.types.is_integer(value_type):
                    reason = f"a {spec.role} column of integers"
                self.skipped[spec.name] = {"role": spec.role, "type": str(t), "reason": reason}
                continue
            if pa.types.is_null(value_type):
                self.skipped[spec.name] = {"role": spec.role, "type": str(t), "reason": "no values (null type)"}
                continue
            self.columns[spec.name] = _ColumnScan(spec, kind, str(value_type), self.config, types)
        self.schema_checked = True

    # -- rows --

    def add(self, batch) -> None:
        n = batch.num_rows
        self.n_rows += n
        detections: list[tuple[str, np.ndarray]] = []
        for name, col in self.columns.items():
            values, indices, counts = _distinct(batch.column(name))
            if col.kind == "free_text":
                detections += self._add_text(col, values, indices, counts)
            else:
                detections += self._add_structured(col, values, indices, counts)
        self._add_row_patterns(n, detections)

    def _lookup(self, col: _ColumnScan, values: list, compute) -> list:
        todo = [v for v in dict.fromkeys(values) if v not in col.cache]
        if todo:
            if len(col.cache) + len(todo) > _CACHE_LIMIT:
                col.cache.clear()
            col.cache.update(zip(todo, compute(todo), strict=True))
        return [col.cache[v] for v in values]

    def _add_text(self, col: _ColumnScan, values, indices, counts) -> list:
        keep = [i for i, v in enumerate(values) if v.strip()]
        col.n_values += int(counts[keep].sum()) if keep else 0
        texts = [values[i] for i in keep]
        results = self._lookup(col, texts, lambda todo: detect(todo, self.config, self.az, entity_types=col.types))
        with_type: dict[str, list[int]] = {}
        for i, text, findings in zip(keep, texts, results, strict=True):
            if not findings:
                continue
            mult = int(counts[i])
            for f in findings:
                span = text[f.start : f.end]
                stats, fp = col.stats_for(f.entity_type), fingerprint(span)
                example = (fp, mask_example(span, f.entity_type)) if _wants_example(stats, fp) else None
                _add(stats, count=mult, rows=0, score=_score(f.score), example=example)
            for entity in {f.entity_type for f in findings}:
                col.stats_for(entity)["rows"] += mult
                with_type.setdefault(entity, []).append(i)
        return [(f"{col.spec.name}:{e}", np.isin(indices, ids)) for e, ids in with_type.items()]

    def _check_values(self, col: _ColumnScan, todo: list) -> list[dict]:
        """The full-column check of structured values: {entity type: score in millionths or None}."""
        texts = [str(v) for v in todo]
        out: list[dict] = [{} for _ in todo]
        pattern_types = [e for e in col.types if e in STRUCTURED_PATTERN_ENTITIES]
        shape_types = [e for e in col.types if e in NER_ENTITIES]
        positions = [
            i
            for i, (v, t) in enumerate(zip(todo, texts, strict=True))
            if t.strip() and t not in col.allow and (not col.integer or abs(v) >= _INTEGER_MIN)
        ]
        if pattern_types and positions:
            found = whole_value_scores(
                [texts[i] for i in positions], self.config, self.az, entity_types=pattern_types, context=col.context
            )
            for i, scores in zip(positions, found, strict=True):
                for entity, score in scores.items():
                    out[i][entity] = _score(score)
        for i in positions:
            for entity in value_shapes(texts[i], shape_types):
                out[i].setdefault(entity, None)
        return out

    def _add_structured(self, col: _ColumnScan, values, indices, counts) -> list:
        present = [i for i, v in enumerate(values) if col.integer or v.strip()]
        col.n_values += int(counts[present].sum()) if present else 0
        checks = self._lookup(col, [values[i] for i in present], lambda todo: self._check_values(col, todo))
        with_type: dict[str, list[int]] = {}
        k = self.config.sample_size
        for i, check in zip(present, checks, strict=True):
            value, mult = values[i], int(counts[i])
            text = str(value)
            fp = fingerprint(text)
            if col.sample_cut is None or fp < col.sample_cut or fp in col.sample:
                entry = col.sample.setdefault(fp, [value, 0])
                entry[1] += mult
                if len(col.sample) >= 2 * k:
                    self._prune(col)
            for entity, score in check.items():
                stats = col.stats_for(entity)
                example = (fp, mask_example(text, entity)) if _wants_example(stats, fp) else None
                _add(stats, count=mult, rows=mult, score=score, example=example)
                with_type.setdefault(entity, []).append(i)
        return [(f"{col.spec.name}:{e}", np.isin(indices, ids)) for e, ids in with_type.items()]

    def _prune(self, col: _ColumnScan) -> None:
        k = self.config.sample_size
        keep = heapq.nsmallest(k, col.sample)
        col.sample = {fp: col.sample[fp] for fp in keep}
        col.sample_cut = keep[-1] if len(keep) == k else None

    def _add_row_patterns(self, n: int, detections: list[tuple[str, np.ndarray]]) -> None:
        if not detections:
            self.row_patterns["[]"] = self.row_patterns.get("[]", 0) + n
            return
        names = [name for name, _ in detections]
        matrix = np.stack([mask for _, mask in detections], axis=1)
        combos, counts = np.unique(matrix, axis=0, return_counts=True)
        for combo, count in zip(combos, counts, strict=True):
            key = json.dumps(sorted(name for name, on in zip(names, combo, strict=True) if on))
            self.row_patterns[key] = self.row_patterns.get(key, 0) + int(count)

    # -- sample --

    def finish(self) -> PiiPartial:
        columns = {}
        for name, col in self.columns.items():
            sample = None
            if col.kind == "structured":
                self._prune(col)
                sample = self._analyze_sample(col)
            columns[name] = col.to_dict(sample)
        return PiiPartial(
            n_rows=self.n_rows,
            columns=columns,
            skipped=self.skipped,
            row_patterns=dict(sorted(self.row_patterns.items())),
            nlp=self.az.name,
            sample_size=self.config.sample_size,
        )

    def _analyze_sample(self, col: _ColumnScan) -> dict:
        """Full presidio analysis (spaCy included) of the sampled values, keyed by fingerprint."""
        entries = sorted(col.sample.items())
        texts = [str(value) for _, (value, _) in entries]
        results: list[dict] = [{} for _ in entries]
        ner_types = [e for e in col.types if e in NER_ENTITIES]
        # spaCy only sees values that have the shape of a name, a place or a date.
        shaped = [i for i, t in enumerate(texts) if t not in col.allow and value_shapes(t, ner_types)]
        plain = [i for i, t in enumerate(texts) if t not in col.allow and i not in set(shaped)]
        for group, types in ((shaped, col.types), (plain, [e for e in col.types if e not in ("PERSON", "LOCATION")])):
            if not group or not types:
                continue
            found = detect(
                [texts[i] for i in group],
                self.config,
                self.az,
                entity_types=types,
                context=col.context,
                whole_values=True,
            )
            for i, findings in zip(group, found, strict=True):
                for f in findings:
                    results[i][f.entity_type] = max(results[i].get(f.entity_type, 0), _score(f.score))
        return {
            f"{fp:016x}": {"rows": rows, "entities": dict(sorted(results[n].items()))}
            for n, (fp, (_, rows)) in enumerate(entries)
        }


def _specs(columns: Iterable[ColumnSpec | tuple | Mapping]) -> list[ColumnSpec]:
    specs = []
    for c in columns:
        if isinstance(c, ColumnSpec):
            specs.append(c)
        elif isinstance(c, Mapping):
            specs.append(ColumnSpec(c["name"], c["role"]))
        else:
            specs.append(ColumnSpec(*c))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ColumnsProblem(
            f"a column is named twice in columns: {', '.join(sorted({n for n in names if names.count(n) > 1}))}"
        )
    if not specs:
        raise ColumnsProblem("no columns to scan: name at least one column and its role")
    return specs


def scan(
    batches,
    columns: Iterable[ColumnSpec],
    config: PiiConfig,
    progress: ProgressFn | None = None,
    *,
    total_rows: int | None = None,
) -> PiiPartial:
    """Scan record batches (or a pyarrow Table) for PII in ``columns``; merge chunk partials with ``merge_partials``.

    Role ``text`` columns must hold strings and are analyzed cell by cell; every other string
    or integer column is structured (integers only as card numbers, SSNs or phone numbers);
    other types are listed as skipped. ``progress(fraction)`` is called after every
    ``SLICE_ROWS`` rows, by rows out of ``total_rows`` when given (or when ``batches`` is a
    list or a Table), otherwise by a fraction that grows towards 1; and with 1.0 at the end.
    A column missing from the data, a text column that is not strings, a bad role are
    ValueErrors.
    """
    import pyarrow as pa

    specs = _specs(columns)
    if isinstance(batches, pa.Table):
        total_rows = total_rows if total_rows is not None else batches.num_rows
        batches = batches.to_batches()
    elif total_rows is None and isinstance(batches, list | tuple):
        total_rows = sum(b.num_rows for b in batches)
    scanner = _Scanner(specs, config)
    done = 0
    for batch in batches:
        if not scanner.schema_checked:
            scanner.check_schema(batch.schema)
        for offset in range(0, batch.num_rows, SLICE_ROWS):
            piece = batch.slice(offset, SLICE_ROWS)
            scanner.add(piece)
            done += piece.num_rows
            if progress is not None:
                fraction = done / total_rows if total_rows else done / (done + 100_000)
                progress(min(0.95, 0.95 * fraction))
    if not scanner.schema_checked:  # no batches at all: nothing to check the names against
        for spec in specs:
            kind = "free_text" if spec.role == "text" else "structured"
            scanner.columns[spec.name] = _ColumnScan(spec, kind, "string", config, scanner.types)
    partial = scanner.finish()
    if progress is not None:
        progress(1.0)
    return partial

"""Scrubbing: the same batches with every finding replaced, by an operator chosen per entity type."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from .detection import SUPPORTED_ENTITIES, Finding, PiiConfig, analyzer, detect
from .masking import hash_int, hash_token, mask_operator
from .report import summary
from .scan import SLICE_ROWS, PiiPartial, _distinct

OPERATORS = ("redact", "mask", "replace", "hash", "keep")
DEFAULT_OPERATOR = "replace"


@dataclass(frozen=True)
class ColumnPlan:
    """How to scrub one column: ``free_text`` is analyzed cell by cell for ``entity_types``;
    ``structured`` has every non-empty cell replaced as one value of ``entity_types[0]`` (the
    type the column holds most of)."""

    kind: str
    entity_types: tuple[str, ...]


@dataclass
class ScrubPlan:
    """Which columns hold which entity types, from a scan, and the configuration that scan used."""

    columns: dict[str, ColumnPlan]
    config: PiiConfig

    @classmethod
    def from_summary(cls, report: Mapping, config: PiiConfig) -> ScrubPlan:
        """The plan of an ``assay.pii/v1`` summary: its columns with entities, most frequent type first."""
        columns = {}
        for column in report["columns"]:
            entities = sorted(column["entities"], key=lambda e: -e["count"])
            if entities:
                columns[column["name"]] = ColumnPlan(column["kind"], tuple(e["entity_type"] for e in entities))
        return cls(columns, config)

    @classmethod
    def from_partial(cls, partial: PiiPartial, config: PiiConfig) -> ScrubPlan:
        """The plan of a (merged) partial, as its summary would give it."""
        return cls.from_summary(summary(partial, config), config)

    def to_dict(self) -> dict:
        """JSON-safe form; ``ScrubPlan.from_dict`` reverses it."""
        return {
            "columns": {n: {"kind": p.kind, "entity_types": list(p.entity_types)} for n, p in self.columns.items()},
            "config": self.config.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> ScrubPlan:
        """The plan ``to_dict`` wrote."""
        return cls(
            {n: ColumnPlan(p["kind"], tuple(p["entity_types"])) for n, p in data["columns"].items()},
            PiiConfig(**data["config"]),
        )


def _operators(operators: Mapping[str, str] | None, salt: bytes | str) -> tuple[dict[str, str], bytes]:
    chosen = {e: DEFAULT_OPERATOR for e in SUPPORTED_ENTITIES}
    for entity, op in (operators or {}).items():
        if entity not in SUPPORTED_ENTITIES:
            raise ValueError(
                f"unknown entity type {entity!r} in operators; the types are {', '.join(SUPPORTED_ENTITIES)}"
            )
        if op not in OPERATORS:
            raise ValueError(f"unknown operator {op!r} for {entity}; the operators are {', '.join(OPERATORS)}")
        chosen[entity] = op
    salt = salt.encode() if isinstance(salt, str) else bytes(salt or b"")
    if "hash" in chosen.values() and not salt:
        raise ValueError(
            "the hash operator needs a secret salt (without one, tokens of low-entropy values can be reversed)"
        )
    return chosen, salt


def _replacement(op: str, value: str, entity: str, salt: bytes) -> str:
    if op == "redact":
        return ""
    if op == "mask":
        return mask_operator(value)
    if op == "replace":
        return f"<{entity}>"
    if op == "hash":
        return hash_token(value, salt)
    return value


def _spans(findings: list[Finding]) -> list[tuple[int, int, str]]:
    """Overlapping findings merged into one span each, of the type that scores highest (then is longest)."""
    spans: list[list] = []
    for f in sorted(findings, key=lambda f: (f.start, -f.end)):
        if spans and f.start < spans[-1][1]:
            last = spans[-1]
            last[1] = max(last[1], f.end)
            if (f.score, f.end - f.start) > (last[3], last[4]):
                last[2], last[3], last[4] = f.entity_type, f.score, f.end - f.start
        else:
            spans.append([f.start, f.end, f.entity_type, f.score, f.end - f.start])
    return [(s[0], s[1], s[2]) for s in spans]


def scrub_text(text: str, findings: list[Finding], operators: Mapping[str, str], salt: bytes) -> str:
    """``text`` with each (merged) finding replaced by its entity type's operator."""
    out, last = [], 0
    for start, end, entity in _spans(findings):
        out.append(text[last:start])
        out.append(_replacement(operators[entity], text[start:end], entity, salt))
        last = end
    out.append(text[last:])
    return "".join(out)


def _rebuild(field, values: list):
    import pyarrow as pa

    value_type = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
    array = pa.array(values, type=value_type)
    if pa.types.is_dictionary(field.type):
        array = array.dictionary_encode().cast(field.type)
    return array


def _scrub_column(array, field, plan: ColumnPlan, config: PiiConfig, ops: dict[str, str], salt: bytes):
    import pyarrow as pa

    values, indices, _ = _distinct(array)
    if plan.kind == "structured":
        entity = plan.entity_types[0]
        op = ops[entity]
        if op == "keep":
            return array
        if pa.types.is_integer(field.type):
            # A number column cannot hold a token: hash gives a keyed number, the other operators empty the cell.
            new = [hash_int(v, salt) if op == "hash" else None for v in values]
        else:
            new = [_replacement(op, v, entity, salt) if v.strip() else v for v in values]
    else:
        texts = [v if v.strip() else "" for v in values]
        found = detect(texts, config, analyzer(config), entity_types=plan.entity_types)
        new = [scrub_text(v, f, ops, salt) if f else v for v, f in zip(values, found, strict=True)]
    out = [None if i < 0 else new[i] for i in indices.tolist()]
    return _rebuild(field, out)


def scrub_batch(batch, plan: ScrubPlan, operators: Mapping[str, str] | None = None, salt: bytes | str = b""):
    """The batch with every finding of the plan replaced: same columns, order, types and row count.

    ``operators`` maps an entity type to ``redact`` (remove the span), ``mask`` (every letter
    and digit but the last four becomes ``*``), ``replace`` (``<ENTITY_TYPE>``, the default),
    ``hash`` (HMAC-SHA256 of the value keyed by ``salt``, first 16 hex characters: the same value
    gets the same token everywhere) or ``keep``. Structured columns of the plan are replaced
    whole in every non-empty cell (integer columns: ``hash`` gives a keyed non-negative int64,
    ``keep`` keeps, the others empty the cell); free-text columns are analyzed cell by cell.
    Columns outside the plan pass through unchanged.
    """
    import pyarrow as pa

    ops, salt = _operators(operators, salt)
    missing = [name for name in plan.columns if name not in batch.schema.names]
    if missing:
        raise ValueError(f"the plan scrubs column(s) {', '.join(missing)}, which the data does not have")
    arrays = []
    for i, field in enumerate(batch.schema):
        array = batch.column(i)
        column_plan = plan.columns.get(field.name)
        if column_plan is not None:
            array = _scrub_column(array, field, column_plan, plan.config, ops, salt)
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)


def scrub(
    batches: Iterable,
    plan: ScrubPlan,
    operators: Mapping[str, str] | None = None,
    salt: bytes | str = b"",
    progress: Callable[[float], None] | None = None,
    *,
    total_rows: int | None = None,
):
    """Yield ``scrub_batch`` of each batch (same batch boundaries), working ``SLICE_ROWS`` rows at a time.

    ``progress(fraction)`` is called after every slice, by rows out of ``total_rows`` when
    given (or when ``batches`` is a list), otherwise by a fraction growing towards 1; and with
    1.0 at the end. Bad operators or a hash without salt are refused before any batch is read.
    """
    import pyarrow as pa

    _operators(operators, salt)
    if total_rows is None and isinstance(batches, list | tuple):
        total_rows = sum(b.num_rows for b in batches)
    done = 0
    for batch in batches:
        pieces = []
        for offset in range(0, max(batch.num_rows, 1), SLICE_ROWS):
            piece = batch.slice(offset, SLICE_ROWS)
            pieces.append(scrub_batch(piece, plan, operators, salt))
            done += piece.num_rows
            if progress is not None:
                progress(min(0.99, done / total_rows) if total_rows else done / (done + 100_000))
        yield pieces[0] if len(pieces) == 1 else pa.concat_batches(pieces)
    if progress is not None:
        progress(1.0)

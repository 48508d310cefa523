"""PII engine against presidio, per cell and batched: rows/s, the ratios, and recall on seeded PII.

    $ASSAY_VENV/bin/python benchmarks/pii_bench.py [--rows 20000] [--baseline-rows 1000] [--batch-size 100]

(run from the worktree root). Data: ``apps.demo.customers.customer_table`` (ten string columns,
two of them free text with PII in about a third of the rows, three numbers), as one pyarrow
table. The engine scans every column end to end (``scan`` + ``summary``); the scrub of the
whole table (``ScrubPlan.from_summary`` + ``scrub``) is timed separately. Two baselines, what a
scan without the engine would do with presidio as shipped (same spaCy pipeline, offline):

- per cell: ``AnalyzerEngine.analyze(cell, language="en", entities=<the nine types>,
  score_threshold=0.5)`` on every cell of the two free-text columns;
- batched: presidio's ``BatchAnalyzerEngine.analyze_iterator(cells, language="en",
  batch_size=--batch-size, entities=..., score_threshold=0.5)`` column by column (what its
  ``analyze_dict`` does for a table), which runs spaCy over the cells with ``nlp.pipe``;

each measured on the first ``--baseline-rows`` rows and scaled to the table (and, for
reference, on every string cell of a fifth of those rows). Recall: a seeded value counts as
found when a finding of its entity type overlaps it in its cell (free text), or when its cell
is counted under that type (structured columns). Figures are printed, never asserted. One
process, one core; each time is given as wall-clock and as this process's CPU time
(``time.process_time``), and the ratios use CPU time, which other processes on a shared
machine do not inflate. The machine's load and host speed index are printed before and after
(``benchmarks/machine.py``).
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core, as a worker has
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import machine  # noqa: E402

from apps.demo.customers import COLUMN_ROLES, ENTITY_TYPES, TEXT_COLUMNS, customer_table  # noqa: E402
from worker.engines import pii  # noqa: E402


class _Clock:
    """Wall-clock and CPU time of this process since it was made."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def _overlaps(cell: str, value: str, spans) -> bool:
    start = cell.find(value)
    end = start + len(value)
    return any(s < end and start < e for s, e in spans)


def text_recall(table, truth, found_by_cell) -> dict[str, tuple[int, int]]:
    """Per entity type, (found, seeded) over the free-text columns; ``found_by_cell[(row, col)]`` = {type: spans}."""
    out: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    columns = {c: table.column(c).to_pylist() for c in TEXT_COLUMNS}
    for item in truth:
        if item.column not in TEXT_COLUMNS or (item.row, item.column) not in found_by_cell:
            continue
        out[item.entity_type][1] += 1
        spans = found_by_cell[(item.row, item.column)].get(item.entity_type, [])
        out[item.entity_type][0] += _overlaps(columns[item.column][item.row], item.value, spans)
    return {k: (v[0], v[1]) for k, v in out.items()}


def engine_text_findings(table, config, rows) -> dict:
    """The engine's findings per free-text cell of the first ``rows`` rows."""
    az = pii.analyzer(config)
    out = {}
    for column in TEXT_COLUMNS:
        cells = table.column(column).to_pylist()[:rows]
        distinct = list(dict.fromkeys(c for c in cells if c))
        found = dict(zip(distinct, pii.detect(distinct, config, az), strict=True))
        for row, cell in enumerate(cells):
            if cell:
                spans: dict[str, list] = collections.defaultdict(list)
                for f in found[cell]:
                    spans[f.entity_type].append((f.start, f.end))
                out[(row, column)] = spans
    return out


def structured_recall(table, truth, report) -> dict[str, tuple[int, int]]:
    """Per entity type, (cells counted, seeded) in the structured columns, from the report's counts."""
    counted = {(c["name"], e["entity_type"]): e["rows"] for c in report["columns"] for e in c["entities"]}
    seeded = collections.Counter((t.column, t.entity_type) for t in truth if t.column not in TEXT_COLUMNS)
    out: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for (column, entity), n in seeded.items():
        out[entity][0] += min(n, counted.get((column, entity), 0))
        out[entity][1] += n
    return {k: (v[0], v[1]) for k, v in out.items()}


def stock_presidio():
    """presidio as shipped, with the same spaCy pipeline and offline settings: the baseline."""
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    provider = NlpEngineProvider(
        nlp_configuration={"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": pii.SPACY_MODEL}]}
    )
    return AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--baseline-rows", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=100, help="BatchAnalyzerEngine's batch size (default 100)")
    args = parser.parse_args()
    print(machine.line())

    config = pii.PiiConfig()
    t0 = time.perf_counter()
    az = pii.analyzer(config)
    print(f"analyzer: {az.name}, loaded in {time.perf_counter() - t0:.1f} s")
    table, truth = customer_table(args.rows, seed=args.seed)
    columns = [pii.ColumnSpec(name, role) for name, role in COLUMN_ROLES.items()]
    texts = [v for c in TEXT_COLUMNS for v in table.column(c).to_pylist() if v]
    n_sentences = len({s for t in set(texts) for _, s in pii.sentences(t)})
    print(
        f"table: {args.rows} rows, {len(texts)} free-text cells ({len(set(texts))} distinct, "
        f"{n_sentences} distinct sentences), "
        f"{len(truth)} seeded values"
    )

    clock = _Clock()
    partial = pii.scan(table, columns, config)
    report = pii.summary(partial, config, az.name)
    scan_wall, scan_s = clock.stop()
    text_columns = [c for c in columns if c.role == "text"]
    az.ner_cache.clear()  # like for like with the baseline: the free-text columns alone, cold
    clock = _Clock()
    pii.scan(table, text_columns, config)
    text_wall, text_s = clock.stop()
    plan = pii.ScrubPlan.from_summary(report, config)
    az.ner_cache.clear()  # a scrub usually runs in another process than its scan: start cold
    clock = _Clock()
    scrubbed = list(pii.scrub(table.to_batches(max_chunksize=4096), plan, salt=b"bench-salt"))
    scrub_wall, scrub_s = clock.stop()
    assert sum(b.num_rows for b in scrubbed) == args.rows

    # Baseline: presidio per cell, on the first rows, scaled.
    stock = stock_presidio()
    n_base = min(args.baseline_rows, args.rows)
    entities = list(ENTITY_TYPES)
    base_cells: dict = {}
    clock = _Clock()
    for column in TEXT_COLUMNS:
        for row, cell in enumerate(table.column(column).to_pylist()[:n_base]):
            if cell:
                spans: dict[str, list] = collections.defaultdict(list)
                for r in stock.analyze(cell, language="en", entities=entities, score_threshold=0.5):
                    spans[r.entity_type].append((r.start, r.end))
                base_cells[(row, column)] = spans
    base_wall, base_s = clock.stop()
    base_rate = n_base / base_s
    all_strings = [c for c in COLUMN_ROLES if c not in ("income", "tenure_months", "risk_score")]
    n_all = max(1, n_base // 5)
    clock = _Clock()
    for column in all_strings:
        for cell in table.column(column).to_pylist()[:n_all]:
            if cell:
                stock.analyze(cell, language="en", entities=entities, score_threshold=0.5)
    all_wall, all_s = clock.stop()
    all_rate = n_all / all_s

    # Baseline: presidio's BatchAnalyzerEngine, column by column, on the same rows.
    from presidio_analyzer.batch_analyzer_engine import BatchAnalyzerEngine

    batch = BatchAnalyzerEngine(analyzer_engine=stock)
    options = {"entities": entities, "score_threshold": 0.5, "batch_size": args.batch_size}
    batch_cells: dict = {}
    clock = _Clock()
    for column in TEXT_COLUMNS:
        cells = [(row, cell) for row, cell in enumerate(table.column(column).to_pylist()[:n_base]) if cell]
        answers = batch.analyze_iterator([cell for _, cell in cells], language="en", **options)
        for (row, _), results in zip(cells, answers, strict=True):
            spans = collections.defaultdict(list)
            for r in results:
                spans[r.entity_type].append((r.start, r.end))
            batch_cells[(row, column)] = spans
    batch_wall, batch_s = clock.stop()
    batch_rate = n_base / batch_s
    clock = _Clock()
    for column in all_strings:
        cells = [cell for cell in table.column(column).to_pylist()[:n_all] if cell]
        batch.analyze_iterator(cells, language="en", **options)
    batch_all_wall, batch_all_s = clock.stop()
    batch_all_rate = n_all / batch_all_s

    engine_rate = args.rows / scan_s
    print()
    print("CPU seconds (wall-clock seconds); rows/s from CPU time")
    print(f"engine scan + summary: {scan_s:.1f} s ({scan_wall:.1f}), {engine_rate:.0f} rows/s (all 13 columns)")
    print(
        f"engine scan of the two free-text columns alone: {text_s:.1f} s ({text_wall:.1f}), "
        f"{args.rows / text_s:.0f} rows/s"
    )
    print(f"engine scrub:          {scrub_s:.1f} s ({scrub_wall:.1f}), {args.rows / scrub_s:.0f} rows/s")
    print(
        f"per-cell analyze, free-text cells: {base_s:.1f} s ({base_wall:.1f}) for {n_base} rows, "
        f"{base_rate:.1f} rows/s (scaled: {args.rows / base_rate:.0f} s for the table)"
    )
    print(
        f"per-cell analyze, every string cell: {all_s:.1f} s ({all_wall:.1f}) for {n_all} rows, {all_rate:.1f} rows/s"
    )
    print(
        f"BatchAnalyzerEngine (batch_size {args.batch_size}), free-text cells: {batch_s:.1f} s ({batch_wall:.1f}) "
        f"for {n_base} rows, {batch_rate:.1f} rows/s (scaled: {args.rows / batch_rate:.0f} s for the table)"
    )
    print(
        f"BatchAnalyzerEngine, every string cell: {batch_all_s:.1f} s ({batch_all_wall:.1f}) for {n_all} rows, "
        f"{batch_all_rate:.1f} rows/s"
    )
    print(f"ratio engine / per-cell (free-text cells): {engine_rate / base_rate:.1f}x")
    print(f"ratio engine / BatchAnalyzerEngine (free-text cells): {engine_rate / batch_rate:.1f}x")
    print(f"ratio engine / per-cell (every string cell): {engine_rate / all_rate:.1f}x")
    print(f"ratio engine / BatchAnalyzerEngine (every string cell): {engine_rate / batch_all_rate:.1f}x")
    print(f"ratio engine on free text alone / per-cell (free-text cells): {args.rows / text_s / base_rate:.1f}x")
    print(
        f"ratio engine on free text alone / BatchAnalyzerEngine (free-text cells): "
        f"{args.rows / text_s / batch_rate:.1f}x"
    )
    print(f"ratio BatchAnalyzerEngine / per-cell (free-text cells): {batch_rate / base_rate:.1f}x")

    engine_cells = engine_text_findings(table, config, n_base)
    ours = text_recall(table, truth, engine_cells)
    theirs = text_recall(table, truth, base_cells)
    batched = text_recall(table, truth, batch_cells)
    full = text_recall(table, truth, engine_text_findings(table, config, args.rows))
    structured = structured_recall(table, truth, report)
    print()
    print(
        f"recall on seeded PII, free text (first {n_base} rows): engine vs per-cell vs BatchAnalyzerEngine; "
        f"engine on all {args.rows} rows"
    )
    for entity in ENTITY_TYPES:
        if entity in ours:
            (a, n), (b, _), (d, _), (c, m) = ours[entity], theirs[entity], batched[entity], full[entity]
            print(
                f"  {entity:14s} {a / n:7.1%} vs {b / n:7.1%} vs {d / n:7.1%}   (n={n});  all rows {c / m:7.1%} (n={m})"
            )
    print("recall on seeded PII, structured columns (all rows, cells counted under the type)")
    for entity in ENTITY_TYPES:
        if entity in structured:
            a, n = structured[entity]
            print(f"  {entity:14s} {a / n:7.1%}   (n={n})")
    print(machine.line())


if __name__ == "__main__":
    main()

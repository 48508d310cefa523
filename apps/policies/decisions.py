"""The policy decision for a model version in an environment: the contract releases code against.

``policy_decide(version=..., environment=..., release=...)`` builds the input document
(``inputs.build_input``), evaluates every pack in force (``catalog.packs_in_force``) and merges
their answers into one ``PolicyDecision``. It writes nothing and checks no permission: callers
check ``policies.view`` / ``releases.view`` first.

Approvals are bound to ``binding_digest``: the artifact's sha256, the digests of the evidence
the decision saw, the pack versions applied and the model facts the packs read
(``facts_sha256``, see ``inputs.bound_facts``), never the approvals or the release context.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from . import engine
from .catalog import PackInForce, packs_in_force
from .inputs import bound_facts, build_input, canonical_sha256, environment_part, release_part

RESULT_PASS, RESULT_FAIL, RESULT_WARNING, RESULT_NOT_APPLICABLE = "pass", "fail", "warning", "not_applicable"


@dataclass(frozen=True)
class Violation:
    """One failed rule."""

    rule: str  # stable id, e.g. "eu_ai_act.high_risk_bias_report"
    pack: str  # pack name, e.g. "eu-ai-act"
    message: str  # readable, cites the clause
    clause: str  # e.g. "EU AI Act Art. 10(2)(f)"
    severity: str  # "blocking" | "warning"


@dataclass(frozen=True)
class RequiredApproval:
    """Approvals a release needs: ``count`` people holding ``role``."""

    role: str  # an rbac Role value: "reviewer" | "compliance_officer" | ...
    count: int
    reason: str  # the rule/clause that asks for it


@dataclass(frozen=True)
class PolicyDecision:
    """What the packs in force say about one version in one environment (and release, if any)."""

    allow: bool  # no blocking violation and no missing evidence (approvals are counted by releases)
    violations: tuple[Violation, ...]
    missing_evidence: tuple[dict, ...]  # {"kind", "subject", "reason", "rule"}
    required_approvals: tuple[RequiredApproval, ...]  # merged over packs: the max count per role
    # {"rule","pack","clause","title","result","message"
    #  [, "approvals": [{role, count}]][, "measured","threshold","detail"]}
    rules: tuple[dict, ...]
    packs: tuple[dict, ...]  # {"name","version","sha256"} of each pack applied
    evidence: tuple[dict, ...]  # {"run","kind","subject","summary_sha256"} evidence seen
    artifact_sha256: str
    input: dict = field(compare=False)

    @property
    def facts_sha256(self) -> str:
        """sha256 over the model facts the packs read (``inputs.bound_facts``): raising the risk tier,
        adding a data category or moving a fairness threshold is a different basis for approvals."""
        return canonical_sha256(bound_facts(self.input or {}))

    @property
    def binding_digest(self) -> str:
        """sha256 over the artifact, the evidence digests, the pack versions and the model facts
        (what approvals are bound to)."""
        body = {
            "artifact_sha256": self.artifact_sha256,
            "facts_sha256": self.facts_sha256,
            "evidence": sorted(
                [e["run"], e["kind"], e["summary_sha256"], e.get("review_sha256", "")] for e in self.evidence
            ),
            "packs": sorted([p["name"], p["version"], p["sha256"]] for p in self.packs if p["version"] is not None)
            + sorted([p["name"], -1, p["sha256"]] for p in self.packs if p["version"] is None),
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    @property
    def blocking(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if v.severity == "blocking")

    def as_dict(self) -> dict:
        return {
            "allow": self.allow,
            "violations": [
                {"rule": v.rule, "pack": v.pack, "message": v.message, "clause": v.clause, "severity": v.severity}
                for v in self.violations
            ],
            "missing_evidence": [dict(m) for m in self.missing_evidence],
            "required_approvals": [
                {"role": a.role, "count": a.count, "reason": a.reason} for a in self.required_approvals
            ],
            "rules": [dict(r) for r in self.rules],
            "packs": [dict(p) for p in self.packs],
            "evidence": [dict(e) for e in self.evidence],
            "artifact_sha256": self.artifact_sha256,
            "facts_sha256": self.facts_sha256,
            "binding_digest": self.binding_digest,
            "input": self.input,
        }


def _engine_failure(pack: PackInForce, exc: Exception) -> Violation:
    # the sandbox's refusals: the pack did not give an answer, so the release is blocked (fail closed)
    for refusal, rule, what_happened in (
        (engine.ForbiddenBuiltin, "assay.forbidden_builtin", "was not run"),
        (engine.BudgetExceeded, "assay.budget", "was stopped"),
    ):
        if isinstance(exc, refusal):
            return Violation(
                rule=rule,
                pack=pack.name,
                message=f"Policy pack {pack.name} v{pack.number} {what_happened}: {exc}; the release is blocked "
                "until the pack is fixed.",
                clause="Assay policy sandbox",
                severity="blocking",
            )
    what = exc.message if isinstance(exc, engine.RegoSyntaxError) else str(exc)
    return Violation(
        rule=f"{pack.package.split('.', 1)[1]}.evaluation_error",
        pack=pack.name,
        message=f"Policy pack {pack.name} v{pack.number} could not be evaluated ({what}); the release is blocked "
        "until the pack is fixed.",
        clause="Assay policy engine",
        severity="blocking",
    )


# Optional keys of a pack's rule: the value it measured (number or null), the limit, and a sentence
# saying both ("demographic parity difference 0.068 ≤ 0.1 (worst: sex)").
MEASURE_KEYS = ("measured", "threshold", "detail")


def _measure_ok(key: str, value) -> bool:
    if key == "detail":
        return isinstance(value, str)
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _rule_rows(pack: PackInForce, result: engine.PackResult, applied: bool) -> list[dict]:
    """Each declared rule's result: not applicable, fail, warning or pass; undeclared failures too."""
    failing: dict[str, list[dict]] = {}
    for v in result.violations:
        failing.setdefault(v["rule"], []).append(v)
    for m in result.missing_evidence:
        failing.setdefault(m["rule"], []).append(
            {"severity": "blocking", "message": f"Missing evidence: {m['reason']}", "clause": ""}
        )
    # A required approval names the rule that asks for it at the head of its reason ("rule: clause").
    asks: dict[str, list[dict]] = {}
    if applied:
        for a in result.required_approvals:
            if int(a.get("count") or 0) > 0:
                rule_id = str(a.get("reason") or "").split(":", 1)[0].strip()
                asks.setdefault(rule_id, []).append({"role": a["role"], "count": int(a["count"])})
    rows, declared = [], set()
    for rule in result.rules:
        declared.add(rule["rule"])
        hits = failing.get(rule["rule"], [])
        if not applied or (rule.get("applies") is False and not hits):
            outcome, message = RESULT_NOT_APPLICABLE, ""
        elif any(h["severity"] == "blocking" for h in hits):
            outcome, message = RESULT_FAIL, "; ".join(h["message"] for h in hits)
        elif hits:
            outcome, message = RESULT_WARNING, "; ".join(h["message"] for h in hits)
        else:
            outcome, message = RESULT_PASS, ""
        row = {
            "rule": rule["rule"],
            "pack": pack.name,
            "clause": rule["clause"],
            "title": rule["title"],
            "result": outcome,
            "message": message,
        }
        if rule["rule"] in asks:
            # The rule is met by people, not by the input: releases show it pending until they approve.
            row["approvals"] = asks[rule["rule"]]
        # a rule that measures something says what it measured against what limit, passing or not
        if outcome != RESULT_NOT_APPLICABLE:
            row.update({k: rule[k] for k in MEASURE_KEYS if k in rule and _measure_ok(k, rule[k])})
        rows.append(row)
    if applied:
        for rule_id, hits in failing.items():
            if rule_id not in declared:
                blocking = any(h["severity"] == "blocking" for h in hits)
                rows.append(
                    {
                        "rule": rule_id,
                        "pack": pack.name,
                        "clause": next((h["clause"] for h in hits if h["clause"]), ""),
                        "title": rule_id,
                        "result": RESULT_FAIL if blocking else RESULT_WARNING,
                        "message": "; ".join(h["message"] for h in hits),
                    }
                )
    return rows


def decide_with(*, document: dict, seen: list[dict], packs: list[PackInForce], artifact_sha256: str) -> PolicyDecision:
    """Evaluate ``packs`` on ``document`` and merge their answers (``policy_decide`` without the reads)."""
    violations: list[Violation] = []
    missing: dict[tuple, dict] = {}
    approvals: dict[str, RequiredApproval] = {}
    rules: list[dict] = []
    applied: list[dict] = []
    results = engine.evaluate_each(packs=[(p.source, p.sha256, p.package) for p in packs], document=document)
    for pack, result in zip(packs, results, strict=True):
        if isinstance(result, (engine.RegoSyntaxError, engine.EvaluationError)):
            failure = _engine_failure(pack, result)
            violations.append(failure)
            applied.append({"name": pack.name, "version": pack.number, "sha256": pack.sha256})
            rules.append(
                {
                    "rule": failure.rule,
                    "pack": pack.name,
                    "clause": failure.clause,
                    "title": "The pack evaluates",
                    "result": RESULT_FAIL,
                    "message": failure.message,
                }
            )
            continue
        in_force = pack.bound or result.applies
        rules.extend(_rule_rows(pack, result, in_force))
        if not in_force:
            continue
        applied.append({"name": pack.name, "version": pack.number, "sha256": pack.sha256})
        violations.extend(
            Violation(rule=v["rule"], pack=pack.name, message=v["message"], clause=v["clause"], severity=v["severity"])
            for v in result.violations
        )
        for m in result.missing_evidence:
            item = {"kind": m["kind"], "subject": m["subject"], "reason": m["reason"], "rule": m["rule"]}
            missing.setdefault((item["kind"], item["subject"], item["rule"]), item)
        for a in result.required_approvals:
            current = approvals.get(a["role"])
            if a["count"] > 0 and (current is None or a["count"] > current.count):
                approvals[a["role"]] = RequiredApproval(role=a["role"], count=a["count"], reason=a["reason"])
    violations.sort(key=lambda v: (v.severity != "blocking", v.pack, v.rule, v.message))
    allow = not any(v.severity == "blocking" for v in violations) and not missing
    return PolicyDecision(
        allow=allow,
        violations=tuple(violations),
        missing_evidence=tuple(sorted(missing.values(), key=lambda m: (m["rule"], m["kind"], m["subject"]))),
        required_approvals=tuple(sorted(approvals.values(), key=lambda a: a.role)),
        rules=tuple(rules),
        packs=tuple(applied),
        evidence=tuple(sorted(seen, key=lambda e: (e["kind"], e["subject"], e["run"]))),
        artifact_sha256=artifact_sha256,
        input=document,
    )


def policy_decide(
    *, version, environment: dict, release: dict | None = None, pin: dict | None = None
) -> PolicyDecision:
    """The decision for ``version`` in ``environment``.

    ``environment = {"name": "production", "production": True}``; ``release = {"change_reference": str,
    "requested_by": [kind, id], "emergency": bool, "approvals": [{"person": [kind, id], "roles": [...],
    "decision": "approve"|"reject"}]}`` or None. ``pin`` ({pack name: PolicyPackVersion}) evaluates
    those versions instead of the latest (dry-runs). No writes, no permission check.
    """
    document, seen = build_input(version=version, environment=environment, release=release)
    packs = packs_in_force(model=version.model, environment_name=document["environment"]["name"], pin=pin)
    return decide_with(document=document, seen=seen, packs=packs, artifact_sha256=version.sha256)


def policy_decide_each(*, version, cases: list[tuple[dict, dict | None]]) -> list[PolicyDecision]:
    """``policy_decide`` for one version in several (environment, release) cases, in that order.

    The input document is read from the database once; only its ``environment`` and ``release``
    parts differ between cases (the version page's gate per environment).
    """
    if not cases:
        return []
    document, seen = build_input(version=version, environment=cases[0][0], release=None)
    decisions = []
    for environment, release in cases:
        case = {**document, "environment": environment_part(environment), "release": release_part(release)}
        packs = packs_in_force(model=version.model, environment_name=case["environment"]["name"])
        decisions.append(decide_with(document=case, seen=list(seen), packs=packs, artifact_sha256=version.sha256))
    return decisions

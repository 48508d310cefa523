"""A stand-in for ``apps.policies.decisions.policy_decide`` until the policies branch is merged.

Same contract and shape; deliberately small: unacceptable risk is blocked, high risk in a
production environment needs a compliance officer besides a reviewer, and the binding digest
covers the artifact and the version's succeeded evidence. Deleted at the merge.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Violation:
    rule: str
    pack: str
    message: str
    clause: str
    severity: str


@dataclass(frozen=True)
class RequiredApproval:
    role: str
    count: int
    reason: str


@dataclass(frozen=True)
class PolicyDecision:
    allow: bool
    violations: tuple = ()
    missing_evidence: tuple = ()
    required_approvals: tuple = ()
    rules: tuple = ()
    packs: tuple = ()
    evidence: tuple = ()
    artifact_sha256: str = ""
    input: dict = field(default_factory=dict)

    @property
    def binding_digest(self) -> str:
        body = {"artifact": self.artifact_sha256, "evidence": sorted(e["summary_sha256"] for e in self.evidence)}
        body["packs"] = sorted(f"{p['name']}@{p['version']}" for p in self.packs)
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    def as_dict(self) -> dict:
        data = asdict(self)
        data["binding_digest"] = self.binding_digest
        return json.loads(json.dumps(data, default=str))


def policy_decide(*, version, environment: dict, release: dict | None = None) -> PolicyDecision:
    from apps.evidence.choices import RunStatus
    from apps.evidence.models import EvidenceRun

    model = version.model
    evidence = tuple(
        {
            "run": str(run.public_id),
            "kind": run.kind,
            "subject": f"model_version:{version.pk}",
            "summary_sha256": hashlib.sha256(json.dumps(run.summary, sort_keys=True).encode()).hexdigest(),
        }
        for run in EvidenceRun.objects.filter(version=version, status=RunStatus.SUCCEEDED).order_by("id")
    )
    violations, rules = [], []
    if model.risk_tier == "unacceptable":
        violations.append(
            Violation(
                "eu_ai_act.unacceptable", "eu_ai_act", "Unacceptable risk is never released.", "Art. 5", "blocking"
            )
        )
    required = [RequiredApproval("reviewer", 1, "four eyes")]
    if model.risk_tier == "high" and environment.get("production"):
        required.append(RequiredApproval("compliance_officer", 1, "EU AI Act: high risk in production"))
    rules.append(
        {
            "rule": "eu_ai_act.unacceptable",
            "pack": "eu_ai_act",
            "clause": "Art. 5",
            "title": "Unacceptable risk is never released",
            "result": "fail" if violations else "pass",
            "message": violations[0].message if violations else "",
        }
    )
    return PolicyDecision(
        allow=not violations,
        violations=tuple(violations),
        required_approvals=tuple(required),
        rules=tuple(rules),
        packs=({"name": "interim", "version": "0", "sha256": ""},),
        evidence=evidence,
        artifact_sha256=version.sha256,
        input={"environment": environment, "release": release or {}},
    )

"""The decision contract: shape, merging, the binding digest, engine failures."""

from __future__ import annotations

import json

import pytest

from apps.policies.decisions import PolicyDecision, RequiredApproval, policy_decide
from apps.policies.models import PolicyPack, PolicyPackVersion
from tests.factories.policies import bias_run, compliant_version

PRODUCTION = {"name": "production", "production": True}
STAGING = {"name": "staging", "production": False}

pytestmark = pytest.mark.django_db


def _rule(decision: PolicyDecision, rule: str) -> dict:
    return next(r for r in decision.rules if r["rule"] == rule)


def test_shipped_packs_are_stored_versions_after_migrate():
    # given the test database, migrated
    # when
    names = set(PolicyPack.objects.filter(shipped=True).values_list("name", flat=True))
    # then every shipped pack has a stored version whose source is its file's
    assert {"baseline", "security", "gdpr", "hipaa", "pci-dss", "sox", "eu-ai-act", "fairness"} <= names
    assert PolicyPackVersion.objects.filter(pack__name="security").exists()


def test_a_compliant_version_is_allowed_in_production_with_one_reviewer():
    # given
    version = compliant_version()
    # when
    decision = policy_decide(version=version, environment=PRODUCTION)
    # then
    assert decision.allow, decision.violations
    assert decision.required_approvals == (
        RequiredApproval(role="reviewer", count=1, reason=decision.required_approvals[0].reason),
    )
    assert "baseline.production_review" in decision.required_approvals[0].reason
    assert _rule(decision, "security.safe_format")["result"] == "pass"
    assert {p["name"] for p in decision.packs} >= {"baseline", "security"}
    assert all(p["version"] >= 1 and len(p["sha256"]) == 64 for p in decision.packs)
    json.dumps(decision.as_dict())  # serialisable


def test_staging_needs_no_reviewer():
    version = compliant_version()
    decision = policy_decide(version=version, environment=STAGING)
    assert decision.required_approvals == ()
    assert _rule(decision, "baseline.production_review")["result"] == "not_applicable"


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"format": "pickle"}, "security.safe_format"),
        ({"status": "pending_verification"}, "security.verified_digest"),
        ({"sha256": ""}, "security.verified_digest"),
    ],
)
def test_security_pack_blocks_unsafe_formats_and_unverified_digests(changes, rule):
    # given
    version = compliant_version(**changes)
    # when
    decision = policy_decide(version=version, environment=STAGING)
    # then
    assert not decision.allow
    failed = [v for v in decision.violations if v.rule == rule]
    assert failed and failed[0].severity == "blocking" and failed[0].pack == "security"
    assert "Assay security baseline" in failed[0].message
    assert _rule(decision, rule)["result"] == "fail"


def test_binding_digest_follows_artifact_evidence_and_pack_version_not_approvals():
    # given
    version = compliant_version()
    release = {"change_reference": "CHG-1", "requested_by": ["user", 99], "emergency": False, "approvals": []}
    before = policy_decide(version=version, environment=PRODUCTION, release=release)
    # when approvals change
    approved = dict(release, approvals=[{"person": ["user", 5], "roles": ["reviewer"], "decision": "approve"}])
    after_approval = policy_decide(version=version, environment=PRODUCTION, release=approved)
    # then the digest holds
    assert after_approval.binding_digest == before.binding_digest
    # when new evidence arrives
    bias_run(version, dp=0.02)
    after_evidence = policy_decide(version=version, environment=PRODUCTION, release=release)
    assert after_evidence.binding_digest != before.binding_digest
    # when a pack gets a new version
    pack = PolicyPack.objects.get(name="baseline")
    latest = pack.versions.order_by("-number").first()
    PolicyPackVersion.objects.create(
        pack=pack, number=latest.number + 1, source=latest.source + "\n# v2\n", sha256="f" * 64
    )
    after_pack = policy_decide(version=version, environment=PRODUCTION, release=release)
    assert after_pack.binding_digest != after_evidence.binding_digest


def test_binding_digest_follows_the_artifact():
    v1 = compliant_version(evidence=False)
    v2 = compliant_version(v1.model, evidence=False)
    d1 = policy_decide(version=v1, environment=PRODUCTION)
    d2 = policy_decide(version=v2, environment=PRODUCTION)
    assert d1.artifact_sha256 != d2.artifact_sha256
    assert d1.binding_digest != d2.binding_digest


def test_an_unreachable_opa_server_blocks_with_a_clear_violation(settings):
    # given an OPA URL where nothing listens (a port just freed)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.ASSAY_OPA_URL = f"http://127.0.0.1:{port}"
    settings.ASSAY_OPA_TIMEOUT_SECONDS = 1
    version = compliant_version()
    # when
    decision = policy_decide(version=version, environment=STAGING)
    # then every pack is blocked with an evaluation error naming the server, no exception
    assert not decision.allow
    errors = [v for v in decision.violations if v.rule.endswith(".evaluation_error")]
    assert {v.pack for v in errors} >= {"security", "baseline"}
    assert f"127.0.0.1:{port}" in errors[0].message


def test_a_changed_shipped_file_becomes_an_audited_new_version(audit_mark, monkeypatch, tmp_path):
    # given a packs folder whose security pack changed with an upgrade
    import shutil

    from apps.policies import catalog, services

    shutil.copytree(catalog.PACKS_DIR, tmp_path / "packs")
    with open(tmp_path / "packs" / "security.rego", "a") as f:
        f.write("\n# 2.0\n")
    monkeypatch.setattr(catalog, "PACKS_DIR", tmp_path / "packs")
    before = PolicyPackVersion.objects.filter(pack__name="security").count()
    mark = audit_mark()
    # when the sync runs (as after migrate), twice
    created = services.shipped_packs_sync()
    again = services.shipped_packs_sync()
    # then one new version, audited once, and nothing the second time
    assert [(v.pack.name, v.number) for v in created] == [("security", before + 1)]
    assert again == []
    assert mark.actions() == ["policy_pack.version_created"]
    assert policy_decide(version=compliant_version(), environment=STAGING).packs[1]["version"] == before + 1

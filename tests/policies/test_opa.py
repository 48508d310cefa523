"""Decisions through an OPA server (``ASSAY_OPA_URL``) equal the in-process ones.

The server is ``tests.support.opa_server.OpaLikeServer``: OPA's own binary cannot be installed
here (see its docstring), so the test runs Assay's real HTTP client against a local server that
implements OPA's Policy API and Data API as documented and evaluates with a real Rego engine.
"""

from __future__ import annotations

import pytest

from apps.policies.catalog import sha256_text
from apps.policies.decisions import policy_decide
from apps.policies.models import PolicyBinding, PolicyPack, PolicyPackVersion
from tests.factories.policies import compliant_model, compliant_version
from tests.support.opa_server import OpaLikeServer

PRODUCTION = {"name": "production", "production": True}

pytestmark = pytest.mark.django_db


@pytest.fixture
def opa(settings):
    server = OpaLikeServer().start()
    settings.ASSAY_OPA_URL = server.url
    settings.ASSAY_OPA_TIMEOUT_SECONDS = 5
    yield server
    server.stop()


def _same(a, b) -> None:
    assert a.allow == b.allow
    assert a.violations == b.violations
    assert a.missing_evidence == b.missing_evidence
    assert a.required_approvals == b.required_approvals
    assert a.rules == b.rules
    assert a.binding_digest == b.binding_digest


def test_decisions_through_the_opa_api_equal_the_in_process_ones(opa, settings):
    # given a compliant version and one that fails the EU AI Act's oversight and GDPR's DPIA rules
    passing = compliant_version(compliant_model(risk_tier="high"))
    failing = compliant_version(compliant_model(risk_tier="high", human_oversight="", dpia_reference=""))
    # when each is decided on the OPA server, then in-process
    remote = [policy_decide(version=v, environment=PRODUCTION) for v in (passing, failing)]
    settings.ASSAY_OPA_URL = ""
    local = [policy_decide(version=v, environment=PRODUCTION) for v in (passing, failing)]
    # then the decisions are the same, rule by rule
    for r, loc in zip(remote, local, strict=True):
        _same(r, loc)
    assert remote[0].allow
    assert {"eu_ai_act.high_risk_human_oversight", "gdpr.art35_dpia"} <= {v.rule for v in remote[1].violations}
    # and each module was pushed once, to OPA's Policy API, then queried through the Data API
    puts = [path for method, path in opa.requests if method == "PUT"]
    assert puts and len(puts) == len(set(puts)) and all(p.startswith("/v1/policies/assay-") for p in puts)
    assert ("POST", "/v1/data/assay/security") in opa.requests


def test_a_restarted_opa_server_is_sent_the_modules_again(opa):
    # given decisions made once, so every module is on the server
    version = compliant_version()
    before = policy_decide(version=version, environment=PRODUCTION)
    pushed = sum(1 for method, _ in opa.requests if method == "PUT")
    # when the server restarts and forgets them
    opa.restart()
    after = policy_decide(version=version, environment=PRODUCTION)
    # then the decision is the same (no "undefined package" error), each module pushed again once
    _same(after, before)
    assert not [v for v in after.violations if v.rule.endswith(".evaluation_error")]
    assert sum(1 for method, _ in opa.requests if method == "PUT") == 2 * pushed


def test_a_pack_calling_a_forbidden_builtin_is_never_sent_to_opa(opa):
    # given a custom pack stored directly (never through the upload check) that reads OPA's environment
    source = (
        "package assay.leaky\n\nimport rego.v1\n\n"
        'violations contains {"rule": "leaky.env", "message": sprintf("%v", [opa.runtime().env]), '
        '"clause": "x", "severity": "blocking"}\n'
    )
    pack = PolicyPack.objects.create(name="leaky", title="leaky")
    PolicyPackVersion.objects.create(pack=pack, number=1, source=source, sha256=sha256_text(source))
    PolicyBinding.objects.create(pack=pack)
    # when a decision is made on the OPA server
    decision = policy_decide(version=compliant_version(), environment=PRODUCTION)
    # then the pack fails closed and its module never reached the server
    assert [(v.rule, v.severity) for v in decision.violations if v.pack == "leaky"] == [
        ("assay.forbidden_builtin", "blocking")
    ]
    puts = [path for method, path in opa.requests if method == "PUT"]
    assert puts and f"/v1/policies/assay-{sha256_text(source)}" not in puts
    assert ("POST", "/v1/data/assay/leaky") not in opa.requests

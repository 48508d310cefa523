"""Release fixtures: the shipped environments, a model and version by an author, people per role."""

from __future__ import annotations

import pytest

from apps.accounts.principals import principal_for_service_account, principal_for_user
from apps.evidence.choices import RunStatus
from apps.evidence.models import EvidenceRun
from apps.registry.choices import RiskTier
from apps.releases import services
from apps.releases.models import Environment
from tests.factories.accounts import ServiceAccountFactory
from tests.factories.policies import bias_summary, compliant_model, compliant_version, evidence_run, explain_summary
from tests.factories.registry import ModelVersionFactory, RegisteredModelFactory


def who(user):
    return principal_for_user(user)


@pytest.fixture
def staging(db):
    env, _ = Environment.objects.get_or_create(name="staging", defaults={"production": False})
    return env


@pytest.fixture
def production(db):
    env, _ = Environment.objects.get_or_create(
        name="production", defaults={"production": True, "requires_change_reference": True}
    )
    return env


@pytest.fixture
def author(make_user, team):
    """The ML engineer who registered the version."""
    return make_user("contributor", username="ava", team=team)


@pytest.fixture
def requester(make_user, team):
    return make_user("contributor", username="rex", team=team)


@pytest.fixture
def reviewer(make_user, team):
    return make_user("reviewer", username="rita", team=team)


@pytest.fixture
def reviewer2(make_user, team):
    return make_user("reviewer", username="rob", team=team)


@pytest.fixture
def officer(make_user):
    return make_user("compliance_officer", username="cleo")


@pytest.fixture
def manager(make_user):
    return make_user("release_manager", username="max")


@pytest.fixture
def model(team):
    """A minimal-risk model without sensitive data categories: the simple flows' subject."""
    return RegisteredModelFactory(name="churn", owner_team=team, risk_tier=RiskTier.MINIMAL, data_categories=[])


@pytest.fixture
def version(model, author):
    return ModelVersionFactory(model=model, number=1, created_by=author, sha256="a" * 64)


@pytest.fixture
def high_model(team):
    """A high-risk EU model whose documented facts satisfy the shipped packs (the EU AI Act pack then asks
    for a compliance officer's approval besides the baseline reviewer in production)."""
    return compliant_model(name="credit-score", owner_team=team, risk_tier=RiskTier.HIGH)


@pytest.fixture
def high_version(high_model, author):
    """A ready high-risk version with its model card, a scanned training set, bias and explainability reports."""
    return compliant_version(high_model, number=1, created_by=author, sha256="b" * 64)


@pytest.fixture
def request_release(staging, production):
    """request_release(user_or_principal, version, env="staging", **kw) -> ReleaseRequest."""

    def make(actor, version, environment="staging", **kw):
        principal = actor if not hasattr(actor, "username") else who(actor)
        kw.setdefault("justification", "quarterly refresh")
        return services.release_request_create(
            actor=principal, model_name=version.model.name, number=version.number, environment=environment, **kw
        )

    return make


@pytest.fixture
def ci_account(author):
    """A CI service account owned by the version's author."""
    return ServiceAccountFactory(owner=author, name="ci-churn")


@pytest.fixture
def ci_principal(ci_account):
    return principal_for_service_account(ci_account)


def add_evidence(version, kind="bias", status=RunStatus.SUCCEEDED) -> EvidenceRun:
    """A new evidence run on the version (what a worker leaves behind), with a summary of the real schema."""
    if kind == "bias":
        return evidence_run(kind=kind, summary=bias_summary(dp=0.03), version=version, status=status)
    return evidence_run(kind=kind, summary=explain_summary(), version=version, status=status)


@pytest.fixture
def decided(react):
    """decided() -> runs the queued reactions, then judges every version's gate as the reacting jobs do
    (``gate_decisions_refresh``): the state the gate reads once the workers have caught up, also for
    rows a test wrote directly (which publish no event)."""
    from apps.releases.gate_decisions import gate_decisions_refresh

    def go() -> None:
        react()
        gate_decisions_refresh(reason="test")

    return go

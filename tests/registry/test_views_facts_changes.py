"""Dashboard: a model's pending facts change with its diff; compliance officers approve or reject it there,
the team withdraws it; the approval queue lists it for those who may decide (never the proposer)."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.accounts.principals import principal_for_user
from apps.rbac import services as rbac
from apps.registry import services
from apps.registry.choices import FactsChangeStatus
from apps.registry.models import FactsChange
from tests.factories.registry import RegisteredModelFactory

pytestmark = pytest.mark.django_db


def _web(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def cora(make_user, team):
    return make_user("contributor", username="cora", team=team)


@pytest.fixture
def carol(make_user):
    return make_user("compliance_officer", username="carol")


@pytest.fixture
def proposed(team, cora):
    """The credit team proposes to lower its model's tier and drop a jurisdiction."""
    RegisteredModelFactory(name="scoring", owner_team=team, risk_tier="high", jurisdictions=["EU", "US"])
    result = services.model_update(
        actor=principal_for_user(cora),
        name="scoring",
        changes={"risk_tier": "limited", "jurisdictions": ["US"]},
        reason="Only ranks applications now",
    )
    return result.facts_change


def test_the_model_page_shows_the_pending_change_and_a_compliance_officer_approves_it(carol, proposed, audit_mark):
    web = _web(carol)
    # when
    page = web.get("/models/scoring/").content.decode()
    # then the diff and the buttons
    assert 'id="facts-change"' in page and "Only ranks applications now" in page
    assert "Risk tier" in page and "high" in page and "limited" in page and "EU, US" in page
    assert 'id="facts-approve"' in page and 'id="facts-reject"' in page
    assert 'id="facts-cancel"' not in page  # carol is not on the team
    # when she approves with a reason
    mark = audit_mark()
    response = web.post(
        f"/models/scoring/facts-changes/{proposed.public_id}/approve/", {"reason": "Reassessed in RA-3"}, follow=True
    )
    # then
    assert response.status_code == 200
    assert "approved and applied" in response.content.decode()
    assert 'id="facts-change"' not in response.content.decode()
    proposed.refresh_from_db()
    assert proposed.status == FactsChangeStatus.APPROVED and proposed.model.risk_tier == "limited"
    assert mark.actions() == ["facts_change.approved", "model.updated"]


def test_a_rejection_without_a_reason_is_refused_on_the_page(carol, proposed):
    response = _web(carol).post(f"/models/scoring/facts-changes/{proposed.public_id}/reject/", {}, follow=True)
    assert "Say why" in response.content.decode()
    proposed.refresh_from_db()
    assert proposed.status == FactsChangeStatus.PENDING


def test_the_team_sees_the_change_without_deciding_it_and_may_withdraw_it(cora, proposed, audit_mark):
    web = _web(cora)
    page = web.get("/models/scoring/").content.decode()
    assert 'id="facts-change"' in page and 'id="facts-approve"' not in page and 'id="facts-cancel"' in page
    # approving by posting anyway is a 403 page, audited
    mark = audit_mark()
    forbidden = web.post(f"/models/scoring/facts-changes/{proposed.public_id}/approve/", {"reason": "mine"})
    assert forbidden.status_code == 403
    assert [(e.action, e.outcome) for e in mark.new()] == [("facts_change.approved", "denied")]
    # withdrawing
    web.post(f"/models/scoring/facts-changes/{proposed.public_id}/cancel/", {"reason": ""})
    assert FactsChange.objects.get(pk=proposed.pk).status == FactsChangeStatus.CANCELLED


def test_the_proposer_sees_no_buttons_even_as_a_compliance_officer(make_user, team, system):
    pat = make_user("compliance_officer", username="pat")
    rbac.role_grant(actor=system, subject=pat, role="contributor", team=team)
    RegisteredModelFactory(name="scoring", owner_team=team, risk_tier="high")
    services.model_update(actor=principal_for_user(pat), name="scoring", changes={"risk_tier": "minimal"}, reason="x")
    page = _web(pat).get("/models/scoring/").content.decode()
    assert 'id="facts-change"' in page and 'id="facts-approve"' not in page
    assert "scoring" not in _web(pat).get("/approvals/").content.decode().split('id="facts-change-queue"')[-1]


def test_the_approval_queue_lists_pending_facts_changes_for_those_who_may_decide(carol, cora, make_user, proposed):
    queue = _web(carol).get("/approvals/").content.decode()
    assert 'id="facts-change-queue"' in queue and f'data-facts-change="{proposed.public_id}"' in queue
    assert "risk_tier, jurisdictions" in queue and "Nothing waits for you" not in queue
    for person in (cora, make_user("reviewer"), make_user("auditor")):
        assert 'id="facts-change-queue"' not in _web(person).get("/approvals/").content.decode()


def test_an_unknown_command_or_a_change_out_of_scope_is_404(make_user, other_team, proposed, carol):
    assert _web(carol).post(f"/models/scoring/facts-changes/{proposed.public_id}/apply/", {}).status_code == 404
    stranger = make_user("compliance_officer", team=other_team)
    response = _web(stranger).post(f"/models/scoring/facts-changes/{proposed.public_id}/approve/", {"reason": "x"})
    assert response.status_code == 404
    proposed.refresh_from_db()
    assert proposed.status == FactsChangeStatus.PENDING

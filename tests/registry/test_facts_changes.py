"""Changes that loosen a model's policy facts wait for a compliance officer; tightening applies at once.

PATCH /api/v1/models/{name}/ and /api/v1/facts-changes/: what applies and what waits, four eyes,
the re-check on approval, and the permission triad with an audit assertion after each write.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.principals import principal_for_service_account
from apps.accounts.principals import principal_for_user as principal_for
from apps.audit.choices import Outcome
from apps.audit.models import AuditEvent
from apps.core.errors import Conflict
from apps.rbac import services as rbac
from apps.registry import services
from apps.registry.choices import FactsChangeStatus
from apps.registry.facts import FACT_FIELDS, loosens
from apps.registry.models import FactsChange, RegisteredModel
from tests.factories.accounts import ServiceAccountFactory
from tests.factories.registry import RegisteredModelFactory

pytestmark = pytest.mark.django_db

MODELS = "/api/v1/models/"
CHANGES = "/api/v1/facts-changes/"
DECISIONS = ("facts_change.approved", "facts_change.rejected", "facts_change.cancelled")


@pytest.fixture
def governed(team):
    """A high-risk EU model with personal and health data, automated decisions and every fact documented."""
    return RegisteredModelFactory(
        name="triage",
        owner_team=team,
        risk_tier="high",
        data_categories=["personal", "health"],
        jurisdictions=["EU", "US"],
        automated_decisions=True,
        human_review_path="Ask a clinician at review@example.test",
        dpia_reference="DPIA-2026-3",
        human_oversight="A nurse checks every score",
        intended_use="Orders the emergency queue",
        limitations="Adults only",
        fairness_thresholds={"demographic_parity_difference": 0.05},
    )


@pytest.fixture
def cora(api_client_for, contributor):
    return api_client_for(contributor)


@pytest.fixture
def carol_user(make_user):
    return make_user("compliance_officer", username="carol")


@pytest.fixture
def carol(api_client_for, carol_user):
    return api_client_for(carol_user)


def _propose(client, name="triage", **changes):
    changes.setdefault("reason", "The triage model was reassessed")
    response = client.patch(f"{MODELS}{name}/", changes, format="json")
    assert response.status_code == 202, response.json()
    return response.json()["update"]["facts_change"]


# ---------------------------------------------------------------------------------------------
# What loosens


@pytest.mark.parametrize(
    ("field", "before", "after", "expected"),
    [
        ("risk_tier", "high", "limited", True),
        ("risk_tier", "unacceptable", "minimal", True),
        ("risk_tier", "limited", "high", False),
        ("risk_tier", "high", "unacceptable", False),
        ("data_categories", ["personal", "biometric"], ["personal"], True),
        ("data_categories", ["personal"], [], True),
        ("data_categories", ["personal"], ["health"], True),  # one removed, one added: still one fewer
        ("data_categories", ["personal"], ["personal", "health"], False),
        ("jurisdictions", ["EU", "US"], ["US"], True),
        ("jurisdictions", ["EU"], ["eu"], False),  # the packs read them upper-cased
        ("jurisdictions", ["EU"], ["EU", "UK"], False),
        ("automated_decisions", True, False, True),
        ("automated_decisions", False, True, False),
        ("fairness_thresholds", {"demographic_parity_difference": 0.05}, {"demographic_parity_difference": 0.2}, True),
        ("fairness_thresholds", {"demographic_parity_difference": 0.05}, {}, True),
        ("fairness_thresholds", {"demographic_parity_difference": 0.05}, {"equalized_odds_difference": 0.05}, True),
        ("fairness_thresholds", {}, {"equalized_odds_difference": 0.3}, True),  # above the pack's default 0.1
        ("fairness_thresholds", {"demographic_parity_difference": 0.2}, {"demographic_parity_difference": 0.1}, False),
        ("fairness_thresholds", {}, {"demographic_parity_difference": 0.08}, False),
        (
            "fairness_thresholds",
            {"demographic_parity_difference": 0.1, "equalized_odds_difference": 0.1},
            {"demographic_parity_difference": 0.08},  # the removed one falls back to the same default
            False,
        ),
        ("dpia_reference", "DPIA-1", "", True),
        ("dpia_reference", "DPIA-1", "  ", True),
        ("dpia_reference", "DPIA-1", "n/a", True),
        ("dpia_reference", "", "DPIA-1", False),
        ("human_review_path", "Ask a person", "", True),
        ("human_oversight", "", "A nurse checks", False),
        ("intended_use", "Orders the queue", "", True),
        ("limitations", "Adults only", "", True),
        ("minimisation_justification", "", "Needed to match records", True),  # a waiver (GDPR Art. 5(1)(c))
        ("minimisation_justification", "Needed", "", True),
        ("description", "Old", "", False),  # no pack reads it
        ("default_evidence", ["bias"], [], False),
    ],
)
def test_what_loosens_the_gate(field, before, after, expected):
    assert loosens(field, before, after) is expected


def test_every_model_field_a_pack_reads_is_a_fact():
    # apps/policies/inputs.py puts these in the document's "model" part; name and team never change here
    from apps.policies.inputs import SAMPLE_INPUT

    read = set(SAMPLE_INPUT["model"]) - {"name", "team", "description"}
    assert read == set(FACT_FIELDS)


# ---------------------------------------------------------------------------------------------
# Proposing


def test_a_contributor_lowering_the_risk_tier_proposes_a_change_and_the_model_keeps_its_tier(
    cora, governed, audit_mark
):
    mark = audit_mark()
    # when
    response = cora.patch(
        f"{MODELS}triage/", {"risk_tier": "minimal", "reason": "Only orders, never decides"}, format="json"
    )
    # then
    assert response.status_code == 202, response.json()
    body = response.json()
    change = body["update"]["facts_change"]
    assert body["update"]["applied"] == [] and body["update"]["pending"] == ["risk_tier"]
    assert body["risk_tier"] == "high"
    assert response["Location"] == change["url"] and change["url"].endswith(f"{CHANGES}{change['id']}/")
    assert change["status"] == "pending" and change["changes"] == {"risk_tier": {"before": "high", "after": "minimal"}}
    assert change["proposed_by"] == {"user": "cora", "service_account": None}
    governed.refresh_from_db()
    assert governed.risk_tier == "high"
    (event,) = mark.new()
    assert event.action == "facts_change.proposed" and event.reason == "Only orders, never decides"
    assert event.before == {"risk_tier": "high"} and event.after == {"risk_tier": "minimal"}
    assert (event.related_type, event.related_id) == ("model", str(governed.pk))


def test_a_mixed_patch_applies_the_tightening_part_and_holds_the_loosening_part(cora, governed, audit_mark):
    mark = audit_mark()
    # when: a new category and description (apply), a raised threshold and a cleared DPIA (wait)
    response = cora.patch(
        f"{MODELS}triage/",
        {
            "data_categories": ["personal", "health", "children"],
            "description": "Emergency triage",
            "fairness_thresholds": {"demographic_parity_difference": 0.2},
            "dpia_reference": "",
            "reason": "New DPIA under way",
        },
        format="json",
    )
    # then
    assert response.status_code == 202, response.json()
    update = response.json()["update"]
    assert sorted(update["applied"]) == ["data_categories", "description"]
    assert sorted(update["pending"]) == ["dpia_reference", "fairness_thresholds"]
    governed.refresh_from_db()
    assert governed.data_categories == ["personal", "health", "children"]
    assert governed.description == "Emergency triage"
    assert governed.fairness_thresholds == {"demographic_parity_difference": 0.05}
    assert governed.dpia_reference == "DPIA-2026-3"
    assert mark.actions() == ["facts_change.proposed", "model.updated"]
    assert set(mark.new(action="model.updated")[0].after) == {"data_categories", "description"}


def test_tightening_applies_at_once(cora, governed, audit_mark):
    mark = audit_mark()
    # when the team raises the tier, adds a jurisdiction and a category, and lowers its threshold
    response = cora.patch(
        f"{MODELS}triage/",
        {
            "risk_tier": "unacceptable",
            "jurisdictions": ["EU", "US", "UK"],
            "data_categories": ["personal", "health", "biometric"],
            "fairness_thresholds": {"demographic_parity_difference": 0.03},
            "minimisation_justification": "",  # unchanged
        },
        format="json",
    )
    # then it all applies, without a reason
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["update"]["pending"] == [] and body["update"]["facts_change"] is None
    assert sorted(body["update"]["applied"]) == ["data_categories", "fairness_thresholds", "jurisdictions", "risk_tier"]
    assert body["risk_tier"] == "unacceptable" and body["jurisdictions"] == ["EU", "US", "UK"]
    assert mark.actions() == ["model.updated"]
    assert not FactsChange.objects.exists()


def test_replacing_a_recorded_oversight_note_waits_while_filling_a_blank_one_applies(cora, governed, team):
    # filling a blank documented fact applies at once
    blank = RegisteredModelFactory(name="blank", owner_team=team, risk_tier="high")
    response = cora.patch(f"{MODELS}blank/", {"human_oversight": "A nurse checks every score"}, format="json")
    assert response.status_code == 200 and response.json()["human_oversight"] == "A nurse checks every score"
    blank.refresh_from_db()
    assert blank.human_oversight == "A nurse checks every score"
    # replacing a recorded one waits ("n/a" would empty it in substance)
    response = cora.patch(f"{MODELS}triage/", {"human_oversight": "n/a", "reason": "simplified"}, format="json")
    assert response.status_code == 202 and response.json()["update"]["pending"] == ["human_oversight"]
    governed.refresh_from_db()
    assert governed.human_oversight == "A nurse checks every score"


def test_a_loosening_change_needs_a_reason_and_nothing_of_the_request_applies(cora, governed, audit_mark):
    mark = audit_mark()
    response = cora.patch(f"{MODELS}triage/", {"risk_tier": "limited", "description": "new"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert "reason" in body["errors"] and body["pending_fields"] == ["risk_tier"]
    governed.refresh_from_db()
    assert (governed.risk_tier, governed.description) == ("high", "A model under test")
    assert mark.new() == [] and not FactsChange.objects.exists()


def test_a_second_proposal_while_one_is_pending_is_a_409_naming_it(cora, governed, audit_mark):
    first = _propose(cora, risk_tier="limited")
    mark = audit_mark()
    response = cora.patch(
        f"{MODELS}triage/",
        {"jurisdictions": ["US"], "description": "also this", "reason": "EU market left"},
        format="json",
    )
    assert response.status_code == 409
    assert response.json()["facts_change"] == first["url"].replace("http://testserver", "")
    governed.refresh_from_db()
    assert governed.jurisdictions == ["EU", "US"] and governed.description == "A model under test"
    assert mark.new() == [] and FactsChange.objects.count() == 1


def test_a_later_change_of_the_same_field_supersedes_the_pending_one(cora, carol, governed, audit_mark):
    change = _propose(cora, risk_tier="limited")
    mark = audit_mark()
    # when the team raises the same field instead
    assert cora.patch(f"{MODELS}triage/", {"risk_tier": "unacceptable"}, format="json").status_code == 200
    # then the proposal can no longer apply
    assert mark.actions() == ["model.updated", "facts_change.superseded"]
    assert FactsChange.objects.get(public_id=change["id"]).status == FactsChangeStatus.SUPERSEDED
    response = carol.post(f"{CHANGES}{change['id']}/approve/", {"reason": "ok"}, format="json")
    assert response.status_code == 409
    governed.refresh_from_db()
    assert governed.risk_tier == "unacceptable"


# ---------------------------------------------------------------------------------------------
# Deciding


def test_a_compliance_officer_approves_and_the_change_applies_audited(cora, carol, governed, audit_mark):
    change = _propose(cora, risk_tier="limited", jurisdictions=["US"])
    mark = audit_mark()
    # when
    response = carol.post(f"{CHANGES}{change['id']}/approve/", {"reason": "Reassessment RA-12 accepted"})
    # then
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "approved" and body["decided_by"] == "carol"
    assert body["decision_reason"] == "Reassessment RA-12 accepted" and body["decided_at"]
    governed.refresh_from_db()
    assert (governed.risk_tier, governed.jurisdictions) == ("limited", ["US"])
    approved, updated = mark.new()
    assert (approved.action, approved.actor_name, approved.reason) == (
        "facts_change.approved",
        "carol",
        "Reassessment RA-12 accepted",
    )
    assert updated.action == "model.updated" and updated.target_id == str(governed.pk)
    assert updated.before == {"risk_tier": "high", "jurisdictions": ["EU", "US"]}
    assert updated.after == {"risk_tier": "limited", "jurisdictions": ["US"]}
    # and it takes no more decisions
    again = carol.post(f"{CHANGES}{change['id']}/reject/", {"reason": "changed my mind"}, format="json")
    assert again.status_code == 409


def test_an_approval_needs_a_reason(cora, carol, governed):
    change = _propose(cora, risk_tier="limited")
    response = carol.post(f"{CHANGES}{change['id']}/approve/", {}, format="json")
    assert response.status_code == 400 and "reason" in response.json()["errors"]
    governed.refresh_from_db()
    assert governed.risk_tier == "high"


def test_a_compliance_officer_cannot_approve_their_own_proposal(
    make_user, api_client_for, governed, system, audit_mark
):
    # given a compliance officer who is also a contributor on the team, proposing
    both = make_user("compliance_officer", username="pat")
    rbac.role_grant(actor=system, subject=both, role="contributor", team=governed.owner_team)
    client = api_client_for(both)
    change = _propose(client, risk_tier="limited")
    mark = audit_mark()
    # when they approve it themselves
    response = client.post(f"{CHANGES}{change['id']}/approve/", {"reason": "fine by me"}, format="json")
    # then
    assert response.status_code == 403
    assert "four eyes" in response.json()["detail"]
    governed.refresh_from_db()
    assert governed.risk_tier == "high"
    assert [(e.action, e.outcome) for e in mark.new()] == [("facts_change.approved", Outcome.DENIED)]
    # nor reject it (withdrawing is cancelling)
    assert client.post(f"{CHANGES}{change['id']}/reject/", {"reason": "x"}, format="json").status_code == 403


def test_the_owner_of_the_proposing_service_account_cannot_approve(api_client_for, make_user, governed, system):
    # given a CI account owned by a compliance officer, proposing for the team
    owner = make_user("compliance_officer", username="olive")
    account = ServiceAccountFactory(owner=owner, team=governed.owner_team)
    rbac.role_grant(actor=system, subject=account, role="contributor", team=governed.owner_team)
    result = services.model_update(
        actor=principal_for_service_account(account),
        name="triage",
        changes={"risk_tier": "limited"},
        reason="CI: reclassified",
    )
    assert result.pending == ["risk_tier"]
    change = result.facts_change
    assert (change.proposed_by_id, change.proposed_by_service_account_id) == (owner.pk, account.pk)
    # when the owner approves
    response = api_client_for(owner).post(f"{CHANGES}{change.public_id}/approve/", {"reason": "ok"}, format="json")
    # then
    assert response.status_code == 403
    governed.refresh_from_db()
    assert governed.risk_tier == "high"


def test_an_auditor_never_approves_even_as_a_compliance_officer(cora, make_user, api_client_for, governed, system):
    change = _propose(cora, risk_tier="limited")
    auditor = api_client_for(make_user("auditor"))
    response = auditor.post(f"{CHANGES}{change['id']}/approve/", {"reason": "ok"}, format="json")
    assert response.status_code == 403
    both = make_user("auditor")
    rbac.role_grant(actor=system, subject=both, role="compliance_officer")
    response = api_client_for(both).post(f"{CHANGES}{change['id']}/approve/", {"reason": "ok"}, format="json")
    assert response.status_code == 403 and "Auditors" in response.json()["detail"]
    governed.refresh_from_db()
    assert governed.risk_tier == "high"


def test_a_rejection_keeps_the_facts_and_is_audited_with_its_reason(cora, carol, governed, audit_mark):
    change = _propose(cora, dpia_reference="")
    assert carol.post(f"{CHANGES}{change['id']}/reject/", {"reason": ""}, format="json").status_code == 400
    mark = audit_mark()
    response = carol.post(f"{CHANGES}{change['id']}/reject/", {"reason": "A DPIA is still required"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "rejected"
    governed.refresh_from_db()
    assert governed.dpia_reference == "DPIA-2026-3"
    (event,) = mark.new()
    assert (event.action, event.reason) == ("facts_change.rejected", "A DPIA is still required")
    # the team may propose again now
    _propose(cora, dpia_reference="")


def test_approval_rechecks_that_the_model_still_holds_the_before_values(cora, carol, governed, audit_mark):
    change = _propose(cora, risk_tier="limited")
    # given the stored value moved by another path since the proposal
    RegisteredModel.objects.filter(pk=governed.pk).update(risk_tier="minimal")
    mark = audit_mark()
    response = carol.post(f"{CHANGES}{change['id']}/approve/", {"reason": "ok"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "facts_changed" and response.json()["fields"] == ["risk_tier"]
    governed.refresh_from_db()
    assert governed.risk_tier == "minimal"
    assert FactsChange.objects.get(public_id=change["id"]).status == FactsChangeStatus.PENDING
    assert mark.new() == []


def test_the_team_cancels_its_pending_change(cora, carol, governed, audit_mark):
    change = _propose(cora, risk_tier="limited")
    mark = audit_mark()
    response = cora.post(f"{CHANGES}{change['id']}/cancel/", {"reason": "wrong model"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert [(e.action, e.reason) for e in mark.new()] == [("facts_change.cancelled", "wrong model")]
    assert carol.post(f"{CHANGES}{change['id']}/approve/", {"reason": "ok"}, format="json").status_code == 409
    governed.refresh_from_db()
    assert governed.risk_tier == "high"


# ---------------------------------------------------------------------------------------------
# The permission triad on the new endpoints


def test_listing_and_reading_changes(anon_client, cora, make_user, api_client_for, governed, other_team):
    change = _propose(cora, risk_tier="limited")
    path = f"{CHANGES}{change['id']}/"
    assert anon_client.get(CHANGES).status_code == 401
    assert anon_client.get(path).status_code == 401
    nobody = api_client_for(make_user())
    assert nobody.get(CHANGES).json()["count"] == 0
    assert nobody.get(path).status_code == 404
    outsider = api_client_for(make_user("viewer", team=other_team))
    assert outsider.get(CHANGES).json()["count"] == 0 and outsider.get(path).status_code == 404
    viewer = api_client_for(make_user("viewer", team=governed.owner_team))
    listed = viewer.get(CHANGES, {"status": "pending", "model": "triage"}).json()
    assert [c["id"] for c in listed["results"]] == [change["id"]]
    assert viewer.get(CHANGES, {"status": "approved"}).json()["count"] == 0
    assert viewer.get(path).json()["changes"] == {"risk_tier": {"before": "high", "after": "limited"}}


@pytest.mark.parametrize("command", ["approve", "reject"])
def test_deciding_needs_the_approve_facts_permission(
    command, anon_client, cora, carol, make_user, api_client_for, governed, other_team, audit_mark
):
    change = _propose(cora, risk_tier="limited")
    path = f"{CHANGES}{change['id']}/{command}/"
    action = f"facts_change.{'approved' if command == 'approve' else 'rejected'}"
    body = {"reason": "checked"}
    assert anon_client.post(path, body, format="json").status_code == 401
    mark = audit_mark()
    # no role, or a compliance officer of another team: not found
    assert api_client_for(make_user()).post(path, body, format="json").status_code == 404
    stranger = make_user("compliance_officer", team=other_team)
    assert api_client_for(stranger).post(path, body, format="json").status_code == 404
    # wrong roles on the team: forbidden
    for role in ("viewer", "contributor", "reviewer"):
        assert (
            api_client_for(make_user(role, team=governed.owner_team)).post(path, body, format="json").status_code == 403
        )
    # a compliance officer whose token lacks registry:write: forbidden
    read_only = api_client_for(make_user("compliance_officer"), scopes=["read"])
    assert read_only.post(path, body, format="json").status_code == 403
    assert [e.action for e in mark.new(outcome=Outcome.DENIED)] == [action] * 6
    governed.refresh_from_db()
    assert governed.risk_tier == "high"
    # the right role
    mark = audit_mark()
    response = carol.post(path, body, format="json")
    assert response.status_code == 200
    assert mark.actions()[0] == action


def test_cancelling_needs_the_model_edit_permission(
    anon_client, cora, carol, make_user, api_client_for, governed, audit_mark
):
    change = _propose(cora, risk_tier="limited")
    path = f"{CHANGES}{change['id']}/cancel/"
    assert anon_client.post(path, {}, format="json").status_code == 401
    assert api_client_for(make_user()).post(path, {}, format="json").status_code == 404
    mark = audit_mark()
    assert (
        api_client_for(make_user("viewer", team=governed.owner_team)).post(path, {}, format="json").status_code == 403
    )
    assert carol.post(path, {}, format="json").status_code == 403
    assert [e.action for e in mark.new(outcome=Outcome.DENIED)] == ["facts_change.cancelled"] * 2
    mark = audit_mark()
    assert cora.post(path, {}, format="json").status_code == 200
    assert mark.actions() == ["facts_change.cancelled"]


def test_the_list_query_count_does_not_grow_with_changes(make_user, api_client_for, team, system):
    # given one model with a change in each status but pending, and one pending
    viewer = api_client_for(make_user("viewer", team=team))
    contributor = principal_for(make_user("contributor", team=team))

    def propose(name):
        RegisteredModelFactory(name=name, owner_team=team, risk_tier="high")
        return services.model_update(actor=contributor, name=name, changes={"risk_tier": "limited"}, reason="r")

    propose("one")

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert viewer.get(CHANGES).status_code == 200
        return len(queries)

    count()  # the token's first use writes its last-used time
    few = count()
    for name in ("two", "three", "four"):
        propose(name)
    # then
    assert viewer.get(CHANGES).json()["count"] == 4
    assert count() == few


def _race(calls) -> tuple[list, list[BaseException]]:
    start = threading.Barrier(len(calls))
    done, errors = [], []

    def run(call) -> None:
        try:
            start.wait()
            done.append(call())
        except BaseException as exc:  # surfaced by the assertions
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done, errors


def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip(
            "SQLite lets one writer in at a time, so proposals cannot race there; "
            "this runs on PostgreSQL (DATABASE_URL=postgres://..., as .ci/run does)"
        )


@pytest.mark.django_db(transaction=True)
def test_proposals_racing_leave_one_pending_change(make_user, team):
    _postgresql_only()
    RegisteredModelFactory(name="raced", owner_team=team, risk_tier="unacceptable")
    people = [principal_for(make_user("contributor", team=team)) for _ in range(6)]
    tiers = ["minimal", "limited", "high"] * 2
    # when six contributors propose a lower tier at the same moment
    done, errors = _race(
        [
            lambda p=p, t=t: services.model_update(actor=p, name="raced", changes={"risk_tier": t}, reason="race")
            for p, t in zip(people, tiers, strict=True)
        ]
    )
    # then one proposal waits, the others were refused, and the model kept its tier
    assert len(done) == 1, errors
    assert len(errors) == 5 and all(isinstance(e, Conflict) for e in errors), errors
    assert FactsChange.objects.filter(model__name="raced", status=FactsChangeStatus.PENDING).count() == 1
    assert RegisteredModel.objects.get(name="raced").risk_tier == "unacceptable"


@pytest.mark.django_db(transaction=True)
def test_an_approval_and_a_cancellation_racing_decide_once(make_user, team):
    _postgresql_only()
    RegisteredModelFactory(name="raced", owner_team=team, risk_tier="high")
    proposer = principal_for(make_user("contributor", team=team))
    change = services.model_update(
        actor=proposer, name="raced", changes={"risk_tier": "limited"}, reason="race"
    ).facts_change
    officers = [principal_for(make_user("compliance_officer")) for _ in range(3)]
    calls = [
        lambda o=o: services.facts_change_approve(actor=o, change_id=change.public_id, reason="ok") for o in officers
    ] + [lambda: services.facts_change_cancel(actor=proposer, change_id=change.public_id)]
    # when three approvals and the team's withdrawal arrive at once
    done, errors = _race(calls)
    # then exactly one decided it
    assert len(done) == 1 and len(errors) == 3, errors
    assert all(isinstance(e, Conflict) for e in errors), errors
    change.refresh_from_db()
    decided = AuditEvent.objects.filter(target_id=str(change.public_id), action__in=DECISIONS).count()
    assert decided == 1
    tier = RegisteredModel.objects.get(name="raced").risk_tier
    assert (change.status, tier) in {(FactsChangeStatus.APPROVED, "limited"), (FactsChangeStatus.CANCELLED, "high")}

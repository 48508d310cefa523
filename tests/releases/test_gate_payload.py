"""The gate API answers with ``gate_payload``: exactly what its published shape, ``GateOutput``, renders.

The gate builds its answer without a DRF serializer (copying the serializer's fields on every call
cost a third of its CPU). ``GateOutput`` stays the schema clients generate code from, so these tests
render both for the gate in each state a pipeline meets and require the same JSON, byte for byte,
for the author, a reviewer and an outsider to the approvals.
"""

from __future__ import annotations

import pytest
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from apps.releases import selectors, services
from apps.releases.api.serializers import GateOutput, gate_payload
from tests.factories.registry import ModelVersionFactory
from tests.releases.conftest import who

pytestmark = pytest.mark.django_db


def _both(user, version, environment: str) -> tuple[bytes, bytes, dict]:
    principal = who(user)
    request = Request(APIRequestFactory().get(f"/api/v1/models/{version.model.name}/versions/1/gate/"))
    request.principal = principal
    gate = selectors.gate_decision(
        actor=principal, model_name=version.model.name, number=version.number, environment=environment
    )
    expected = JSONRenderer().render(GateOutput(gate, context={"request": request}).data)
    built = gate_payload(gate, request)
    return JSONRenderer().render(built), expected, built


def _same_for_everyone(users, version, environment: str) -> list[dict]:
    answers = []
    for user in users:
        built, expected, payload = _both(user, version, environment)
        assert built == expected, user.username
        answers.append(payload)
    return answers


def test_the_gate_answer_is_its_schema_s_document_in_every_state(
    request_release, author, requester, reviewer, officer, high_version, version, decided
):
    people = [author, requester, reviewer]

    # evaluating: no stored decision yet
    (evaluating, *_) = _same_for_everyone(people, version, "staging")
    assert evaluating["status"] == "evaluating" and evaluating["evaluated_at"] is None

    # release required: decided, nothing requested
    decided()
    (required, *_) = _same_for_everyone(people, version, "staging")
    assert required["status"] == "release_required" and required["release"] is None
    assert required["request_preview"]["code"] is not None or required["request_preview"]["caller_may"]

    # pending approval, then allowed with the approval received and filling its slot
    release = request_release(requester, version)
    decided()
    (pending, *_) = _same_for_everyone(people, version, "staging")
    assert pending["status"] == "pending_approval" and pending["release"].endswith(f"{release.public_id}/")
    services.approval_decide(actor=who(reviewer), release_id=release.public_id, decision="approve", comment="ok")
    decided()
    (allowed, *_) = _same_for_everyone(people, version, "staging")
    assert allowed["allowed"] is True and allowed["approvals"]["received"][0]["fills"] == "reviewer"

    # production: a change reference, approvals with a revalidation date, a rejection with its comment
    high = request_release(requester, high_version, "production", change_reference="CHG-7")
    decided()
    services.approval_decide(actor=who(reviewer), release_id=high.public_id, decision="approve")
    services.approval_decide(actor=who(officer), release_id=high.public_id, decision="reject", comment="bias too high")
    decided()
    (rejected, *_) = _same_for_everyone([*people, officer], high_version, "production")
    assert rejected["status"] == "rejected"
    assert {a["decision"] for a in rejected["approvals"]["received"]} == {"approve", "reject"}
    # and a high-risk version without its evidence reads as short of it, with the rules it fails
    ModelVersionFactory(model=high_version.model, number=2, created_by=author, sha256="c" * 64)
    decided()
    (short, *_) = _same_for_everyone(people, high_version.model.versions.get(number=2), "production")
    assert short["status"] in {"missing_evidence", "blocked"} and short["reasons"]
    assert short["violations"] or short["missing_evidence"]

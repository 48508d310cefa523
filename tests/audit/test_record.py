"""The one writer: what it stores, whatever a service hands it."""

from __future__ import annotations

import pytest
from django.db import transaction

from apps.audit import context
from apps.audit import services as audit
from apps.audit.models import AuditEvent
from apps.core.principals import Principal

pytestmark = pytest.mark.django_db


def test_an_event_records_who_from_where_did_what_to_which_object():
    # given: a request's context
    token = context.set_context(
        context.AuditContext(source="api", request_id="req-42", client_ip="203.0.113.9", principal=None)
    )
    actor = Principal(kind="service_account", id=3, name="ci-credit", owner_user_id=8, token_id="tok_abc")
    try:
        # when
        with transaction.atomic():
            event = audit.record(
                action="version.created",
                actor=actor,
                target=("version", "12", "churn v3"),
                related=("model", "4", "churn"),
                after={"number": 3},
                artifact_sha256="cd" * 32,
            )
    finally:
        context._current.reset(token)
    # then
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.actor_type, stored.actor_id, stored.actor_name, stored.token_id) == (
        "service_account",
        "3",
        "ci-credit",
        "tok_abc",
    )
    assert (stored.source, stored.request_id, stored.client_ip) == ("api", "req-42", "203.0.113.9")
    assert (stored.target_type, stored.target_id, stored.target_name) == ("version", "12", "churn v3")
    assert (stored.related_type, stored.related_id) == ("model", "4")
    assert stored.after == {"number": 3}
    assert stored.artifact_sha256 == "cd" * 32
    assert stored.seq is None and stored.hash == ""  # sealed after commit, by the sealer


def test_secrets_are_redacted_from_before_and_after():
    with transaction.atomic():
        event = audit.record(
            action="token.created", after={"name": "ci", "secret": "s3cr3t", "nested": {"password": "x", "ok": 1}}
        )
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.after == {"name": "ci", "secret": "[redacted]", "nested": {"password": "[redacted]", "ok": 1}}


def test_values_no_database_can_store_are_made_storable_instead_of_failing_the_change():
    # given: a NUL character (PostgreSQL refuses it) and non-finite numbers (JSON has none)
    with transaction.atomic():
        event = audit.record(
            action="model.updated",
            reason="bad\x00byte",
            after={"auc": float("nan"), "loss": float("inf"), "k\x00": "v\x00"},
        )
    # then
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.reason == "bad\ufffdbyte"
    assert stored.after == {"auc": "nan", "loss": "inf", "k\ufffd": "v\ufffd"}


def test_the_event_rolls_back_with_the_change_it_describes():
    # given
    before = AuditEvent.objects.count()
    # when: the service's transaction fails after recording
    with pytest.raises(RuntimeError), transaction.atomic():
        audit.record(action="model.updated", target=("model", "1", "churn"))
        raise RuntimeError("the change failed")
    # then
    assert AuditEvent.objects.count() == before


def test_the_event_returned_is_the_row_stored_field_by_field():
    # given an event with values of every kind: a UUID, an exact time, JSON and SQL NULL, text
    actor = Principal(kind="user", id=5, name="Zoë", token_id="")
    with transaction.atomic():
        event = audit.record(
            action="model.updated",
            actor=actor,
            target=("model", "9", "churn"),
            before=None,
            after={"tiers": ["high"], "n": 1.5, "nested": {"ok": True}},
            reason="quarterly review",
        )
    # then what record() returned and what the database holds agree on every field but the sealer's
    stored = AuditEvent.objects.get(pk=event.pk)
    for field in AuditEvent._meta.concrete_fields:
        if field.name in ("seq", "prev_hash", "hash", "sealed_at"):
            continue
        assert getattr(stored, field.attname) == getattr(event, field.attname), field.name
    assert stored.before is None and stored.occurred_at.tzinfo is not None

"""Tamper detection: audit_verify names the first bad sequence number for every kind of tampering.

Each test plays an attacker with direct database access (the triggers bypassed
the way only a database owner could) but without the checkpoint signing key.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from apps.audit.models import AuditEvent

from .conftest import head_seq

pytestmark = pytest.mark.django_db


def verify_json(capsys) -> tuple[dict, str]:
    """Run ``audit_verify --json``; return its result and the error message (empty when intact)."""
    try:
        call_command("audit_verify", "--json")
        error = ""
    except CommandError as exc:
        error = str(exc)
    return json.loads(capsys.readouterr().out), error


def test_an_untouched_trail_verifies(write_events, checkpoint, capsys):
    # given
    write_events(6)
    checkpoint()
    write_events(2)
    # when
    call_command("audit_verify")
    # then
    out = capsys.readouterr().out
    assert "The audit trail is intact" in out
    assert f"head #{head_seq()}" in out
    assert "1 matched of 1 found" in out


def test_verify_warns_when_there_is_no_checkpoint(write_events, capsys):
    write_events(2)
    result, error = verify_json(capsys)
    assert error == ""
    assert result["ok"] is True
    assert any("no signed checkpoints" in w for w in result["warnings"])


def test_a_modified_row_is_named(write_events, checkpoint, attacker, capsys):
    # given
    events = write_events(6)
    checkpoint()
    # when
    attacker.modify(events[2].seq)
    result, error = verify_json(capsys)
    # then
    assert result["ok"] is False
    assert result["first_bad_seq"] == events[2].seq
    assert f"first bad sequence number {events[2].seq}" in error
    assert "modified" in error


def test_a_deleted_row_is_named(write_events, attacker, capsys):
    events = write_events(6)
    attacker.delete(events[3].seq)
    result, error = verify_json(capsys)
    assert result["first_bad_seq"] == events[3].seq
    assert "missing" in error


def test_two_reordered_rows_are_named(write_events, attacker, capsys):
    events = write_events(6)
    attacker.swap(events[2].seq, events[3].seq)
    result, error = verify_json(capsys)
    assert result["first_bad_seq"] == events[2].seq
    assert "removed or reordered" in error


def test_a_chain_recomputed_without_the_key_is_caught_by_a_later_checkpoint(write_events, checkpoint, attacker, capsys):
    # given: checkpoints at two points of the chain
    write_events(4)
    first = checkpoint()
    write_events(4)
    second = checkpoint()
    write_events(2)
    # when: a row after the first checkpoint is edited and every hash from there on recomputed
    attacker.modify(first.seq + 2)
    attacker.rehash_from(first.seq + 2)
    result, error = verify_json(capsys)
    # then: the hashes all agree with each other, but not with the second signed checkpoint
    assert result["ok"] is False
    assert result["problems"][0]["kind"] == "checkpoint_mismatch"
    assert result["problems"][0]["seq"] == second.seq
    assert result["first_bad_seq"] == first.seq + 1  # the one after the last checkpoint that matched
    assert f"first bad sequence number {first.seq + 1}" in error


def test_a_tail_cut_off_before_the_last_checkpoint_is_named(write_events, checkpoint, attacker, capsys):
    events = write_events(8)
    checkpoint()
    attacker.delete(*(e.seq for e in events[-3:]))
    result, error = verify_json(capsys)
    assert result["first_bad_seq"] == events[-3].seq
    assert "cut off" in error


def test_a_checkpoint_whose_signature_was_altered_is_refused(write_events, checkpoint, settings, capsys):
    # given
    write_events(3)
    cp = checkpoint()
    path = next(Path(settings.ASSAY_CHECKPOINT_URL.removeprefix("file://")).glob("checkpoint-*.json"))
    # when: one byte of the signature changes
    data = json.loads(path.read_text())
    signature = bytearray(base64.b64decode(data["signature"]))
    signature[0] ^= 1
    data["signature"] = base64.b64encode(bytes(signature)).decode()
    path.write_text(json.dumps(data))
    result, error = verify_json(capsys)
    # then
    assert result["ok"] is False
    assert result["problems"][0]["kind"] == "checkpoint_signature"
    assert result["problems"][0]["seq"] == cp.seq
    assert "does not verify" in error


def test_a_forged_checkpoint_for_a_rewritten_chain_is_refused(write_events, checkpoint, settings, attacker, capsys):
    # given: the attacker rewrites the chain and the checkpoint's hash to match it
    write_events(4)
    cp = checkpoint()
    attacker.modify(2)
    attacker.rehash_from(2)
    path = next(Path(settings.ASSAY_CHECKPOINT_URL.removeprefix("file://")).glob("checkpoint-*.json"))
    data = json.loads(path.read_text())
    data["hash"] = AuditEvent.objects.get(seq=cp.seq).hash
    path.write_text(json.dumps(data))
    # when
    result, error = verify_json(capsys)
    # then
    assert result["ok"] is False
    assert "does not verify" in error


def test_checkpoints_signed_by_a_rotated_key_still_verify(write_events, checkpoint, capsys):
    # given: a checkpoint signed by the first key, then the key rotated and a checkpoint signed by the new one
    write_events(3)
    old = checkpoint()
    call_command("audit_keygen", "--rotate")
    write_events(3)
    new = checkpoint()
    assert old.key_id != new.key_id
    capsys.readouterr()
    # when
    result, error = verify_json(capsys)
    # then
    assert error == ""
    assert result["ok"] is True
    assert result["checkpoints_checked"] == 2


def test_a_checkpoint_from_a_key_that_is_no_longer_trusted_is_refused(write_events, checkpoint, settings, capsys):
    # given: a rotation whose retired public key was then removed from the trusted folder
    write_events(3)
    old = checkpoint()
    call_command("audit_keygen", "--rotate")
    (Path(settings.ASSAY_AUDIT_TRUSTED_KEYS_DIR) / f"{old.key_id}.pem").unlink()
    capsys.readouterr()
    # when
    result, error = verify_json(capsys)
    # then
    assert result["ok"] is False
    assert "neither the current key nor in the trusted-keys folder" in error


def test_the_api_reports_the_same_finding(write_events, attacker, make_user, api_client_for):
    # given
    events = write_events(5)
    attacker.modify(events[1].seq)
    client = api_client_for(make_user("auditor"))
    # when
    response = client.get("/api/v1/audit/verify/")
    # then
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is False
    assert body["first_bad_seq"] == events[1].seq
    assert body["problems"][0]["message"].startswith("event content does not match its hash")


def test_the_api_reports_an_intact_trail(write_events, checkpoint, make_user, api_client_for):
    write_events(3)
    checkpoint()
    client = api_client_for(make_user("compliance_officer"))
    body = client.get("/api/v1/audit/verify/").json()
    assert body["ok"] is True
    assert body["first_bad_seq"] is None
    assert body["checkpoints_checked"] == 1


def test_a_row_modified_to_hold_awkward_text_is_named(write_events, checkpoint, attacker, capsys):
    # given: rows rewritten with text the verifier's fast path cannot join (its separator) or must escape
    events = write_events(6)
    checkpoint()
    # when
    attacker.modify(events[4].seq, reason='sep \x7f, quote " and newline \n')
    attacker.modify(events[1].seq, reason="tab \t and \\")
    result, error = verify_json(capsys)
    # then: the first of them is named
    assert result["ok"] is False
    assert result["first_bad_seq"] == events[1].seq
    assert "modified" in error


def test_identical_json_values_in_many_rows_verify_and_a_change_to_one_is_named(write_events, attacker, capsys):
    # given: rows that share the same before and after values
    events = write_events(5, before={"status": "draft"}, after={"status": "approved"})
    assert verify_json(capsys)[0]["ok"] is True
    # when: one row's after value is changed to another that also occurs
    attacker.execute("UPDATE audit_event SET after = before WHERE id = %s", [events[3].pk])
    result, error = verify_json(capsys)
    # then
    assert result["first_bad_seq"] == events[3].seq
    assert "modified" in error

"""Operator commands: the signing key, checkpoints on demand, and verification's exit status."""

from __future__ import annotations

import base64
import json
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command

from apps.audit import checkpoints

pytestmark = pytest.mark.django_db


def test_keygen_creates_a_private_key_file_only_its_owner_can_read(settings, capsys, audit_mark):
    # given
    mark = audit_mark()
    path = Path(settings.ASSAY_AUDIT_SIGNING_KEY_FILE)
    # when
    call_command("audit_keygen")
    # then
    out = capsys.readouterr().out
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key_id = checkpoints.key_id_for(checkpoints.load_signing_key().public_key())
    assert f"key id: {key_id}" in out
    assert "-----BEGIN PUBLIC KEY-----" in out
    assert "PRIVATE" not in out
    events = mark.new()
    assert [(e.action, e.source, e.actor_type, e.target_id) for e in events] == [
        ("signing_key.created", "cli", "system", key_id)
    ]


def test_keygen_never_overwrites_a_key_unless_asked_to_rotate(settings, capsys):
    call_command("audit_keygen")
    before = Path(settings.ASSAY_AUDIT_SIGNING_KEY_FILE).read_bytes()
    with pytest.raises(CommandError, match="already exists"):
        call_command("audit_keygen")
    assert Path(settings.ASSAY_AUDIT_SIGNING_KEY_FILE).read_bytes() == before


def test_keygen_if_missing_keeps_the_existing_key_and_prints_it(settings, capsys):
    call_command("audit_keygen")
    first = capsys.readouterr().out
    call_command("audit_keygen", "--if-missing")
    second = capsys.readouterr().out
    assert "kept" in second
    assert first.split("key id: ")[1].split()[0] == second.split("key id: ")[1].split()[0]


def test_rotation_keeps_the_old_public_key_trusted(settings, capsys, audit_mark):
    # given
    call_command("audit_keygen")
    old_id = checkpoints.key_id_for(checkpoints.load_signing_key().public_key())
    mark = audit_mark()
    # when
    call_command("audit_keygen", "--rotate")
    # then
    new_id = checkpoints.key_id_for(checkpoints.load_signing_key().public_key())
    assert new_id != old_id
    assert set(checkpoints.trusted_public_keys()) == {old_id, new_id}
    assert stat.S_IMODE(Path(settings.ASSAY_AUDIT_SIGNING_KEY_FILE).stat().st_mode) == 0o600
    rotated = mark.new()[0]
    assert rotated.action == "signing_key.rotated"
    assert (rotated.before, rotated.after["key_id"]) == ({"key_id": old_id}, new_id)


@pytest.mark.parametrize("form", ["seed", "pem"])
def test_a_key_from_the_environment_is_used_and_not_replaced_by_a_file(settings, capsys, form):
    # given: the key in the environment, as a base64 seed or as PEM
    key = Ed25519PrivateKey.generate()
    if form == "seed":
        settings.ASSAY_AUDIT_SIGNING_KEY = base64.b64encode(key.private_bytes_raw()).decode()
    else:
        settings.ASSAY_AUDIT_SIGNING_KEY = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
    # when / then
    with pytest.raises(CommandError, match="comes from ASSAY_AUDIT_SIGNING_KEY"):
        call_command("audit_keygen")
    call_command("audit_keygen", "--if-missing")
    assert f"key id: {checkpoints.key_id_for(key.public_key())}" in capsys.readouterr().out
    assert not Path(settings.ASSAY_AUDIT_SIGNING_KEY_FILE).exists()


def test_checkpoint_command_signs_the_head(write_events, signing_key, settings, capsys):
    # given
    events = write_events(3)
    # when
    call_command("audit_checkpoint")
    # then
    out = capsys.readouterr().out
    assert f"Checkpoint #{events[-1].seq}" in out
    stored = list(Path(settings.ASSAY_CHECKPOINT_URL.removeprefix("file://")).glob("checkpoint-*.json"))
    assert len(stored) == 1
    data = json.loads(stored[0].read_text())
    assert data["seq"] == events[-1].seq
    assert data["hash"] == events[-1].hash


def test_checkpoint_command_without_a_key_says_how_to_make_one(write_events):
    write_events(1)
    with pytest.raises(CommandError, match="audit_keygen"):
        call_command("audit_checkpoint")


def test_checkpoint_command_on_an_empty_trail_writes_nothing(signing_key, settings, capsys):
    call_command("audit_checkpoint")
    assert "empty" in capsys.readouterr().out


@pytest.mark.slow
def test_audit_verify_exits_0_when_intact_and_1_naming_the_seq_otherwise(tmp_path):
    """The real command line, in its own process, against a file database of its own."""
    # given: a fresh database with a few events and a checkpoint
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SECRET_KEY": "test-only",
        "DATABASE_URL": f"sqlite:///{tmp_path}/cli.sqlite3",
        "ASSAY_VAR_DIR": str(tmp_path),
    }
    root = Path(__file__).resolve().parents[2]

    def manage(*args):
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=root, env=env, capture_output=True, text=True, timeout=120
        )

    assert manage("migrate", "-v0").returncode == 0
    assert manage("audit_keygen").returncode == 0
    script = (
        "from django.db import transaction\n"
        "from apps.audit import services\n"
        "for i in range(5):\n"
        "    with transaction.atomic():\n"
        "        services.record(action='model.updated', target=('model', str(i), 'm'))\n"
    )
    assert manage("shell", "-c", script).returncode == 0
    assert manage("audit_checkpoint").returncode == 0
    # when / then: intact
    ok = manage("audit_verify")
    assert ok.returncode == 0, ok.stderr
    assert "intact" in ok.stdout
    # when / then: a modified row
    with sqlite3.connect(tmp_path / "cli.sqlite3") as db:
        db.execute("DROP TRIGGER audit_event_no_update")
        db.execute(
            "UPDATE audit_event SET reason = 'edited' WHERE id = (SELECT event_pk FROM audit_seal WHERE seq = 3)"
        )
    bad = manage("audit_verify")
    assert bad.returncode == 1
    assert "first bad sequence number 3" in bad.stderr
    as_json = manage("audit_verify", "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["first_bad_seq"] == 3

"""An auditor re-verifies a JSON Lines export with the standalone script the manual quotes (docs/audit.md)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import transaction

from apps.audit import services as audit
from apps.audit.chain import seal_pending

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "verify_audit_export.py"


@pytest.fixture
def export_file(tmp_path, make_user, api_client_for, checkpoint) -> Path:
    """A real export, downloaded through the API by an auditor, over events with awkward content."""
    with transaction.atomic():
        audit.record(action="model.created", target=("model", "1", "crédit"), after={"tier": "high", "w": [0.1, 2]})
        audit.record(action="model.updated", before={"b": {"z": 1, "a": None}}, reason='quote " \\ tab\t ü 🔒 \u2028')
        audit.record(action="version.created", target=("version", "1", "v1"), artifact_sha256="ab" * 32)
    seal_pending(blocking=True)
    client = api_client_for(make_user("auditor"))
    response = client.get("/api/v1/audit/export/", {"format": "jsonl"})
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"".join(response.streaming_content))
    return path


def run(*args) -> subprocess.CompletedProcess:
    # -I: isolated mode, so nothing of the project is importable: the script stands on the standard library
    return subprocess.run([sys.executable, "-I", str(SCRIPT), *map(str, args)], capture_output=True, text=True)


def test_the_script_verifies_a_real_export(export_file):
    result = run(export_file)
    assert result.returncode == 0, result.stderr
    lines = export_file.read_text(encoding="utf-8").rstrip("\n").split("\n")
    assert result.stdout.startswith(f"OK: {len(lines)} events verified")


def test_the_script_checks_the_export_against_a_signed_checkpoint(export_file, checkpoint, settings, tmp_path):
    # given: a checkpoint of the head the export ends at
    head = json.loads(export_file.read_text(encoding="utf-8").rstrip("\n").split("\n")[-1])
    cp = tmp_path / "checkpoint.json"
    cp.write_text(json.dumps({"seq": head["seq"], "hash": head["hash"]}))
    assert run(export_file, cp).returncode == 0
    # when: the checkpoint names another hash for that seq (the export came from a rewritten chain)
    cp.write_text(json.dumps({"seq": head["seq"], "hash": "0" * 64}))
    result = run(export_file, cp)
    # then
    assert result.returncode == 1
    assert "signed checkpoint" in result.stderr


def test_the_script_fails_on_a_modified_line(export_file):
    # given: one event's reason changed in the file
    lines = export_file.read_text(encoding="utf-8").rstrip("\n").split("\n")
    row = json.loads(lines[1])
    row["reason"] = "edited"
    lines[1] = json.dumps(row, ensure_ascii=False)
    export_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # when
    result = run(export_file)
    # then
    assert result.returncode == 1
    assert f"FAIL line 2: event {row['seq']} does not match its hash" in result.stderr


def test_the_script_fails_on_a_removed_line(export_file):
    lines = export_file.read_text(encoding="utf-8").rstrip("\n").split("\n")
    del lines[1]
    export_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run(export_file)
    assert result.returncode == 1
    assert "missing or out of order" in result.stderr


def test_the_manual_quotes_the_script_exactly():
    script = SCRIPT.read_text()
    manual = (ROOT / "docs" / "audit.md").read_text()
    assert f"```python\n{script}```" in manual, "docs/audit.md must quote scripts/verify_audit_export.py"


def test_a_checkpoint_signature_verifies_with_openssl_as_the_manual_shows(checkpoint, settings, tmp_path, capsys):
    # given: a checkpoint, and the public key as `audit_keygen --if-missing` prints it
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command line (apt-get install openssl)")
    with transaction.atomic():
        audit.record(action="model.created", target=("model", "1", "churn"))
    cp = checkpoint()
    call_command("audit_keygen", "--if-missing")
    out = capsys.readouterr().out
    public = tmp_path / "audit-public.pem"
    public.write_text(out[out.index("-----BEGIN PUBLIC KEY-----") :])
    stored = Path(settings.ASSAY_CHECKPOINT_URL.removeprefix("file://")) / f"checkpoint-{cp.seq:015d}-{cp.key_id}.json"
    data = json.loads(stored.read_text())
    (tmp_path / "message").write_text(f"assay-audit-checkpoint:v1\n{data['seq']}\n{data['hash']}\n{data['time']}")
    (tmp_path / "signature").write_bytes(base64.b64decode(data["signature"]))

    def openssl_verify() -> subprocess.CompletedProcess:
        return subprocess.run(
            [openssl, "pkeyutl", "-verify", "-pubin", "-inkey", "audit-public.pem", "-rawin"]
            + ["-in", "message", "-sigfile", "signature"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )

    # when / then
    assert openssl_verify().returncode == 0
    (tmp_path / "message").write_text(f"assay-audit-checkpoint:v1\n{data['seq'] + 1}\n{data['hash']}\n{data['time']}")
    assert openssl_verify().returncode != 0

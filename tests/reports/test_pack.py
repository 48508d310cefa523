"""Evidence packs: built over a real trail, checked by the offline verifier, and every kind of tampering named.

The verifier is loaded from its file and run as a command in isolated mode (``python -I``), as an auditor
would run it: it imports nothing of the project. The attacker of these tests can rewrite any file of a pack and
recompute the manifest's digests, but holds neither the audit key nor the report key.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings as django_settings
from django.db import transaction
from django.test import override_settings

from apps.audit import checkpoints, merkle, notes, tree
from apps.audit import services as audit
from apps.audit.filters import EventFilter
from apps.reports.certificate import load_report_signer
from tests.audit import conftest as audit_fixtures
from worker.reports.pack import build_pack
from worker.reports.pdf import render_pdf, sign_pdf

pytestmark = pytest.mark.django_db

SCRIPT = Path(django_settings.BASE_DIR) / "scripts" / "verify_pack.py"
RELEASE = "5d3f7c1e-9b1a-4c57-8f0e-2a6b9c4d8e01"
RELEASE_TARGET = ("release", RELEASE, "credit-scoring v3 to production")
SCOPE = {
    "kind": "release",
    "subject": f"release:{RELEASE}",
    "title": "Release of credit-scoring v3 to production",
    "related": f"release:{RELEASE}",
    "since": None,
    "until": None,
}
IN_SCOPE = EventFilter(target_type="release", target_id=RELEASE)
RECORDS = {
    "records/release.json": b'{"id": "5d3f7c1e", "status": "deployed"}\n',
    "records/evidence/run-17.json": b'{"kind": "bias", "verdict": "pass"}\n',
    "records/policy/decision.json": b'{"allowed": true, "packs": ["baseline"]}\n',
    "records/policy/packs/baseline/gate.rego": b"package assay.gate\n\ndefault allow := false\n",
    "records/approvals.json": b'[{"approver": "erin", "decision": "approved"}]\n',
    "records/deployments.json": b'[{"environment": "production", "status": "succeeded"}]\n',
}
EXPECTED_FILES = sorted(
    [
        "checkpoint.json",
        "events.jsonl",
        "proofs.jsonl",
        "keys/audit-log.pem",
        "keys/audit-log.vkey",
        "keys/report-signing.crt",
        "report.pdf",
        *RECORDS,
    ]
)


def _load_verifier():
    """scripts/verify_pack.py loaded from its file, as an auditor would use it: no project imports."""
    spec = importlib.util.spec_from_file_location("verify_pack", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


verifier = _load_verifier()

# The audit tests' fixtures: a trail of real sealed events, the checkpoint key, checkpoints.
write_events, signing_key, checkpoint = (
    audit_fixtures.write_events,
    audit_fixtures.signing_key,
    audit_fixtures.checkpoint,
)


# -- fixtures -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report_signer(tmp_path_factory):
    """The installation's report key and certificate, as the embedded setup creates them, in a folder of their own."""
    keys = tmp_path_factory.mktemp("report-keys")
    with override_settings(
        ASSAY_REPORT_SIGNING_KEY_FILE=str(keys / "report-signing.pem"),
        ASSAY_REPORT_CERTIFICATE_FILE=str(keys / "report-signing.crt"),
    ):
        return load_report_signer(create=True)


@pytest.fixture(scope="module")
def signed_report(report_signer) -> bytes:
    html = "<h1>Release report</h1><p>credit-scoring v3 to production: approved by erin, deployed.</p>"
    return sign_pdf(render_pdf(html), reason="Assay release report", signer=report_signer)


@pytest.fixture
def certificate_pem(report_signer) -> bytes:
    return report_signer[1].public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def published_key(signing_key) -> bytes:
    """The audit key's public half, as Assay publishes it."""
    return checkpoints.public_pem(signing_key.public_key()).encode()


def _record_release_event(action: str) -> None:
    with transaction.atomic():
        audit.record(action=action, target=RELEASE_TARGET, reason="release flow")


@pytest.fixture
def trail(write_events) -> list[int]:
    """Eighteen events, six about the release scattered among the others (4-5 and 16-17-18 consecutive); the
    last is committed but not sealed yet. Returns the sequence numbers the release's events will have."""
    events = write_events(3)
    events += write_events(2, action="release.requested", target=RELEASE_TARGET)
    events += write_events(4)
    events += write_events(1, action="release.approval_recorded", target=RELEASE_TARGET)
    events += write_events(5)
    events += write_events(2, action="deployment.started", target=RELEASE_TARGET)
    _record_release_event("deployment.succeeded")  # sealed by the pack's own checkpoint
    in_scope = [e.seq for e in events if e.target_type == "release"]
    return [*in_scope, events[-1].seq + 1]


@pytest.fixture
def pack(trail, signing_key, signed_report, certificate_pem) -> bytes:
    return build_pack(
        scope=SCOPE,
        filters=IN_SCOPE,
        files=RECORDS,
        report_pdf=signed_report,
        certificate_pem=certificate_pem,
        generated_by="carol",
    )


# -- helpers ------------------------------------------------------------------------------------------------


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def rezip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


def tamper(data: bytes, change: Callable[[dict[str, bytes]], None], *, update_digests: bool = True) -> bytes:
    """Open the pack, apply ``change`` to its files, recompute the manifest's digests of the files it lists (as an
    attacker without the key can; the signature is left as it was) and zip it again."""
    files = unzip(data)
    change(files)
    if update_digests:
        manifest = json.loads(files["manifest.json"])
        for entry in manifest["files"]:
            if entry["path"] in files:
                entry["sha256"] = hashlib.sha256(files[entry["path"]]).hexdigest()
                entry["size"] = len(files[entry["path"]])
        files["manifest.json"] = (json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()
    return rezip(files)


def lines_of(files: dict[str, bytes], name: str) -> list[dict]:
    return [json.loads(line) for line in files[name].decode().split("\n") if line]


def write_lines(files: dict[str, bytes], name: str, items: list[dict]) -> None:
    files[name] = "".join(json.dumps(i, ensure_ascii=False, separators=(",", ":")) + "\n" for i in items).encode()


def verify(data: bytes, key: bytes, **kwargs):
    return verifier.verify_pack(data, public_key_pem=key, **kwargs)


def run_cli(tmp_path: Path, data: bytes, *args: str) -> subprocess.CompletedProcess:
    # -I: isolated mode, so nothing of the project is importable: the script stands on its own (and its neighbour)
    path = tmp_path / "pack.zip"
    path.write_bytes(data)
    command = [sys.executable, "-I", str(SCRIPT), str(path), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)


def key_file(tmp_path: Path, pem: bytes, name: str = "audit-log.pem") -> str:
    path = tmp_path / name
    path.write_bytes(pem)
    return str(path)


def fail_lines(stdout: str) -> list[str]:
    return [line.removeprefix("FAIL: ") for line in stdout.splitlines() if line.startswith("FAIL: ")]


# -- an untouched pack --------------------------------------------------------------------------------------


def test_an_untouched_pack_verifies_with_the_published_key(pack, trail, published_key, certificate_pem, tmp_path):
    # when the pack is checked with the published audit key and report certificate
    result = verify(pack, published_key, certificate_pem=certificate_pem)

    # then every check passes
    assert result.ok, result.problems
    assert result.warnings == []
    assert f"{len(trail)} inclusion proofs lead to the checkpoint's root (tree size {trail[-1]})" in result.checks
    assert any(check.startswith(f"{len(trail)} events hash and chain (3 links") for check in result.checks)
    assert any(c.startswith("report.pdf is signed by") and "Assay report signing" in c for c in result.checks)

    # and the manifest lists the scope's events (scattered, the unsealed one included) and every file, sorted
    files = unzip(pack)
    manifest = json.loads(files["manifest.json"])
    assert manifest["events"] == {"count": len(trail), "seqs": trail}
    assert [e["seq"] for e in lines_of(files, "events.jsonl")] == trail
    assert [p["seq"] for p in lines_of(files, "proofs.jsonl")] == trail
    assert [f["path"] for f in manifest["files"]] == EXPECTED_FILES
    assert set(files) == {*EXPECTED_FILES, "manifest.json", "manifest.sig.json"}
    assert manifest["scope"] == SCOPE and manifest["generated_by"] == "carol"
    assert manifest["checkpoint"]["tree_size"] == trail[-1]
    assert manifest["checkpoint"]["key_id"] == checkpoints.key_id_for(serialization.load_pem_public_key(published_key))
    assert files["manifest.json"] == (json.dumps(manifest, sort_keys=True, indent=2) + "\n").encode()

    # and the command line says so, with the key given as PEM or as the signed-note verifier key
    by_pem = run_cli(tmp_path, pack, "--key", key_file(tmp_path, published_key))
    assert by_pem.returncode == 0, by_pem.stdout + by_pem.stderr
    assert f"ok: {len(trail)} events hash and chain" in by_pem.stdout
    assert "FAIL" not in by_pem.stdout and "verified: " in by_pem.stdout
    vkey = notes.verifier_key(django_settings.ASSAY_AUDIT_LOG_ORIGIN, serialization.load_pem_public_key(published_key))
    by_vkey = run_cli(tmp_path, pack, "--vkey", vkey, "--certificate", key_file(tmp_path, certificate_pem, "r.crt"))
    assert by_vkey.returncode == 0, by_vkey.stdout + by_vkey.stderr
    assert "warning" not in by_vkey.stdout


def test_without_a_key_the_pack_trusts_its_own_and_says_which(pack, published_key, certificate_pem, tmp_path):
    # when the auditor passes no key and no certificate
    result = run_cli(tmp_path, pack)

    # then it verifies, warning that the keys inside the pack were trusted and naming them for comparison
    assert result.returncode == 0, result.stdout
    key_id = checkpoints.key_id_for(serialization.load_pem_public_key(published_key))
    der = x509.load_pem_x509_certificate(certificate_pem).public_bytes(serialization.Encoding.DER)
    fingerprint = hashlib.sha256(der).hexdigest()
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2
    assert f"key id {key_id}" in warnings[0] and "compare it with the audit key Assay publishes" in warnings[0]
    assert fingerprint in warnings[1] and "--certificate" in warnings[1]


def test_building_seals_and_signs_first_and_reports_progress(trail, signing_key):
    # given: the last release event is committed but not sealed
    assert tree.sealed_size() == trail[-1] - 1
    steps: list[tuple[int, str]] = []

    # when a pack is built without a checkpoint
    data = build_pack(
        scope=SCOPE,
        filters=IN_SCOPE,
        files={},
        report_pdf=None,
        certificate_pem=None,
        generated_by="carol",
        progress=lambda percent, message: steps.append((percent, message)),
    )

    # then the event was sealed, signed over and packed; progress rose to 100
    assert json.loads(unzip(data)["manifest.json"])["events"]["seqs"] == trail
    assert checkpoints.latest_verified().seq == trail[-1]
    percents = [p for p, _ in steps]
    assert percents == sorted(percents) and percents[-1] == 100 and len(steps) >= 4
    assert any("inclusion proofs" in message for _, message in steps)


def test_a_pack_without_a_report(trail, signing_key, published_key, certificate_pem):
    data = build_pack(
        scope=SCOPE, filters=IN_SCOPE, files=RECORDS, report_pdf=None, certificate_pem=None, generated_by="carol"
    )
    manifest = json.loads(unzip(data)["manifest.json"])
    assert manifest["report"] is None and "report.pdf" not in unzip(data)

    result = verify(data, published_key, certificate_pem=certificate_pem)
    assert result.ok, result.problems
    assert result.warnings == ["a report certificate was given, but this pack holds no report"]


def test_what_cannot_be_read_is_named_not_a_traceback(pack, published_key):
    assert verify(b"not a zip", published_key).problems == ["not a zip file (File is not a zip file)"]

    def garble(files):
        files["events.jsonl"] = b'{"seq": 4, "action": "rel\n'

    problems = verify(tamper(pack, garble), published_key).problems
    assert "manifest signature does not verify" in problems
    assert any(p.startswith("events.jsonl: cannot be read (line 1 is not JSON") for p in problems)


# -- tampering ----------------------------------------------------------------------------------------------


def _change_event(files: dict[str, bytes], index: int, *, rehash: bool = False) -> int:
    events = lines_of(files, "events.jsonl")
    events[index]["reason"] = "approved without review"
    if rehash:  # the attacker recomputes the changed event's hash (no key needed for that)
        events[index]["hash"] = verifier.event_hash(events[index])
    write_lines(files, "events.jsonl", events)
    return events[index]["seq"]


def _remove_event(files: dict[str, bytes], index: int) -> int:
    events, proofs = lines_of(files, "events.jsonl"), lines_of(files, "proofs.jsonl")
    seq = events.pop(index)["seq"]
    write_lines(files, "events.jsonl", events)
    write_lines(files, "proofs.jsonl", [p for p in proofs if p["seq"] != seq])
    return seq


def _change_proof(files: dict[str, bytes], index: int) -> int:
    proofs = lines_of(files, "proofs.jsonl")
    first = proofs[index]["proof"][0]
    proofs[index]["proof"][0] = ("0" if first[0] != "0" else "1") + first[1:]
    write_lines(files, "proofs.jsonl", proofs)
    return proofs[index]["seq"]


def _change_note_size(files: dict[str, bytes]) -> None:
    cp = json.loads(files["checkpoint.json"])
    origin, size, rest = cp["note"].split("\n", 2)
    cp["note"] = f"{origin}\n{int(size) + 1}\n{rest}"
    files["checkpoint.json"] = json.dumps(cp).encode()


def _resign_note_with_another_key(files: dict[str, bytes]) -> None:
    """A forged tree head (another root), signed by a key the attacker made under the log's own name."""
    cp = json.loads(files["checkpoint.json"])
    origin, size = cp["note"].split("\n")[:2]
    forged = hashlib.sha256(b"a rewritten log").digest()
    body = notes.checkpoint_body(origin, int(size), forged)
    cp["note"], cp["root"] = notes.sign(body, name=origin, key=Ed25519PrivateKey.generate()), forged.hex()
    files["checkpoint.json"] = json.dumps(cp).encode()


def _change_signed_pdf_bytes(files: dict[str, bytes]) -> None:
    pdf = files["report.pdf"]
    producer = pdf.index(b"WeasyPrint", pdf.index(b"/Producer"))
    assert producer < pdf.rindex(b"/ByteRange")
    files["report.pdf"] = pdf[:producer] + b"X" + pdf[producer + 1 :]


def _change_manifest(files: dict[str, bytes]) -> None:
    manifest = json.loads(files["manifest.json"])
    manifest["generated_by"] = "mallory"
    files["manifest.json"] = (json.dumps(manifest, sort_keys=True, indent=2) + "\n").encode()


# (what the attacker does, whether they recompute the digests, the failure the verifier must name)
TAMPERING = {
    "a record file changed": (
        lambda f: f.update({"records/approvals.json": b'[{"approver": "mallory", "decision": "approved"}]\n'}),
        False,
        lambda f, seqs: ["file records/approvals.json: SHA-256 does not match the manifest"],
    ),
    "an event line changed": (
        lambda f: _change_event(f, 1),
        True,
        lambda f, seqs: [f"event {seqs[1]}: content does not match its hash"],
    ),
    "an event changed and rehashed": (
        lambda f: _change_event(f, 2, rehash=True),
        True,
        lambda f, seqs: [f"event {seqs[2]}: inclusion proof does not lead to the checkpoint's root"],
    ),
    "an event removed from events.jsonl and proofs.jsonl": (
        lambda f: _remove_event(f, 2),
        True,
        lambda f, seqs: [f"event {seqs[2]}: in the signed scope but missing from events.jsonl"],
    ),
    "a proof element changed": (
        lambda f: _change_proof(f, 0),
        True,
        lambda f, seqs: [f"event {seqs[0]}: inclusion proof does not lead to the checkpoint's root"],
    ),
    "the checkpoint's tree size changed": (
        _change_note_size,
        True,
        lambda f, seqs: ["checkpoint: signature does not verify (the signature by"],
    ),
    "the checkpoint re-signed with another key": (
        _resign_note_with_another_key,
        True,
        lambda f, seqs: ["checkpoint: signature does not verify (no signature by the trusted key)"],
    ),
    "the report's signed bytes changed": (
        _change_signed_pdf_bytes,
        True,
        lambda f, seqs: [
            "report.pdf: document digest does not match the signed digest (the signed bytes were changed)"
        ],
    ),
    "an extra file added": (
        lambda f: f.update({"records/waiver.json": b'{"waived": "bias evidence"}\n'}),
        True,
        lambda f, seqs: ["file records/waiver.json: in the pack but not listed in the manifest"],
    ),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_tampering_is_named(case, pack, trail, published_key, certificate_pem, tmp_path):
    change, update_digests, expected = TAMPERING[case]

    # given a pack changed by someone without the keys
    tampered = tamper(pack, change, update_digests=update_digests)

    # when it is verified with the published keys
    result = verify(tampered, published_key, certificate_pem=certificate_pem)

    # then the failure is named (beside the manifest's signature, broken by any change to the digests)
    assert not result.ok
    for message in expected(unzip(tampered), trail):
        assert any(problem.startswith(message) for problem in result.problems), (message, result.problems)
    digests_changed = json.loads(unzip(tampered)["manifest.json"]) != json.loads(unzip(pack)["manifest.json"])
    assert ("manifest signature does not verify" in result.problems) == digests_changed
    if case.startswith("an event"):  # the digest was recomputed: the event check itself caught it
        assert not any(problem.startswith("file events.jsonl") for problem in result.problems)

    # and the command line prints the same failures and exits 1
    cli = run_cli(tmp_path, tampered, "--key", key_file(tmp_path, published_key))
    assert cli.returncode == 1
    assert fail_lines(cli.stdout) == result.problems


def test_a_changed_manifest_that_is_not_re_signed(pack, published_key, certificate_pem):
    # given a manifest edited after signing (nothing else)
    tampered = tamper(pack, _change_manifest, update_digests=False)

    # then only the signature fails
    assert verify(tampered, published_key, certificate_pem=certificate_pem).problems == [
        "manifest signature does not verify"
    ]


def test_an_event_removed_from_the_scope_list_too_breaks_the_signature(pack, trail, published_key, certificate_pem):
    # given an event removed from the files and from the manifest's list of seqs (digests recomputed)
    def remove_everywhere(files):
        seq = _remove_event(files, 3)
        manifest = json.loads(files["manifest.json"])
        manifest["events"] = {"count": len(trail) - 1, "seqs": [s for s in trail if s != seq]}
        files["manifest.json"] = (json.dumps(manifest, sort_keys=True, indent=2) + "\n").encode()

    # then the contents agree with each other, and the signed manifest is what no longer verifies
    assert verify(tamper(pack, remove_everywhere), published_key, certificate_pem=certificate_pem).problems == [
        "manifest signature does not verify"
    ]


def test_an_event_outside_the_scope_added_with_its_proof(pack, trail, published_key, certificate_pem):
    # given the proof of an event outside the scope, taken from a pack of the whole trail at the same tree head
    whole = unzip(
        build_pack(
            scope={"kind": "trail"},
            filters=EventFilter(),
            files={},
            report_pdf=None,
            certificate_pem=None,
            generated_by="mallory",
            checkpoint=checkpoints.latest_verified(),
        )
    )
    outsider = next(s for s in range(1, trail[-1]) if s not in trail)

    def splice(files):
        events = lines_of(files, "events.jsonl") + [e for e in lines_of(whole, "events.jsonl") if e["seq"] == outsider]
        proofs = lines_of(files, "proofs.jsonl") + [p for p in lines_of(whole, "proofs.jsonl") if p["seq"] == outsider]
        write_lines(files, "events.jsonl", sorted(events, key=lambda e: e["seq"]))
        write_lines(files, "proofs.jsonl", sorted(proofs, key=lambda p: p["seq"]))

    # then its hash, chain and proof hold, and the signed scope does not list it
    problems = verify(tamper(pack, splice), published_key, certificate_pem=certificate_pem).problems
    assert problems == [
        "manifest signature does not verify",
        f"event {outsider}: in events.jsonl but not in the signed scope",
    ]


def test_a_pack_signed_by_another_key_fails_against_the_published_one(
    trail, published_key, settings, tmp_path, signed_report, certificate_pem
):
    # given a pack built where the audit key is another one (its own checkpoint and manifest signed by it)
    settings.ASSAY_AUDIT_SIGNING_KEY_FILE = str(tmp_path / "other" / "audit.pem")
    other = checkpoints.load_signing_key(create=True)
    data = build_pack(
        scope=SCOPE,
        filters=IN_SCOPE,
        files=RECORDS,
        report_pdf=signed_report,
        certificate_pem=certificate_pem,
        generated_by="mallory",
    )

    # when the auditor checks it against the published key
    cli = run_cli(tmp_path, data, "--key", key_file(tmp_path, published_key))

    # then both signatures fail and the pack's own key is named as not the trusted one
    assert cli.returncode == 1
    problems = fail_lines(cli.stdout)
    other_id, real_id = (
        checkpoints.key_id_for(other.public_key()),
        checkpoints.key_id_for(serialization.load_pem_public_key(published_key)),
    )
    assert f"file keys/audit-log.pem: key id {other_id} is not the trusted key {real_id}" in problems
    assert f"manifest signature does not verify (it names key {other_id}; the trusted key is {real_id})" in problems
    assert "checkpoint: signature does not verify (no signature by the trusted key)" in problems

    # while without a key it verifies, warning that it trusted the pack's own key, whose id it names
    alone = run_cli(tmp_path, data)
    assert alone.returncode == 0 and f"key id {other_id}" in alone.stdout


def test_a_scope_statement_that_does_not_fit_its_events(trail, signing_key, published_key):
    # given a pack whose statement says its events are of another action and end before they occurred
    data = build_pack(
        scope={**SCOPE, "action": "deployment.*", "until": "2000-01-01"},
        filters=IN_SCOPE,
        files={},
        report_pdf=None,
        certificate_pem=None,
        generated_by="carol",
    )

    # then every event is named as outside it
    problems = verify(data, published_key).problems
    assert len(problems) == len(trail)
    assert all("outside the scope statement" in p for p in problems)


# -- growth and names ---------------------------------------------------------------------------------------


def test_a_packs_proofs_stay_valid_after_the_trail_grows(
    pack,
    trail,
    write_events,
    checkpoint,
    published_key,
    certificate_pem,
):
    # given: the trail grows and a newer tree head is signed
    kept = checkpoints.latest_verified()
    write_events(40)
    _record_release_event("release.reviewed")
    newer = checkpoint()
    assert newer.seq > kept.seq

    # then the pack built before still verifies against its own checkpoint
    assert verify(pack, published_key, certificate_pem=certificate_pem).ok

    # and a pack built now against the kept checkpoint holds the same events and proofs at the old size,
    # while one against the new head holds the new event too, at the new size
    old = build_pack(
        scope=SCOPE,
        filters=IN_SCOPE,
        files={},
        report_pdf=None,
        certificate_pem=None,
        generated_by="c",
        checkpoint=kept,
    )
    new = build_pack(scope=SCOPE, filters=IN_SCOPE, files={}, report_pdf=None, certificate_pem=None, generated_by="c")
    assert verify(old, published_key).ok and verify(new, published_key).ok
    assert unzip(old)["proofs.jsonl"] == unzip(pack)["proofs.jsonl"]
    assert json.loads(unzip(old)["manifest.json"])["events"]["seqs"] == trail
    new_manifest = json.loads(unzip(new)["manifest.json"])
    assert new_manifest["events"]["seqs"] == [*trail, newer.seq]
    assert new_manifest["checkpoint"]["tree_size"] == newer.seq


@pytest.mark.parametrize(
    "name",
    [
        "/etc/passwd",
        "../outside.json",
        "records/../../outside.json",
        "records\\evidence.json",
        "C:/records.json",
        "records//double.json",
        "records/./here.json",
        "",
        "manifest.json",
        "Manifest.JSON",
        "events.jsonl",
        "proofs.jsonl",
        "checkpoint.json",
        "report.pdf",
        "keys/audit-log.pem",
        "keys/extra.pem",
        "records/\x00.json",
    ],
)
def test_unsafe_file_names_are_refused(name, trail, signing_key):
    with pytest.raises(ValueError, match="file name"):
        build_pack(
            scope=SCOPE,
            filters=IN_SCOPE,
            files={name: b"{}"},
            report_pdf=None,
            certificate_pem=None,
            generated_by="carol",
        )


def test_names_that_collide_when_unpacked_are_refused(trail, signing_key):
    for files in ({"records/a.json": b"", "records/A.json": b""}, {"records": b"", "records/a.json": b""}):
        with pytest.raises(ValueError, match="letter case|folder"):
            build_pack(
                scope=SCOPE, filters=IN_SCOPE, files=files, report_pdf=None, certificate_pem=None, generated_by="c"
            )


def test_the_signature_domain_separates_packs_from_checkpoints(pack, signing_key):
    # the manifest's signature is over the pack's domain string, so it cannot pass for any other signed message
    files = unzip(pack)
    signature = base64.b64decode(json.loads(files["manifest.sig.json"])["signature"])
    signing_key.public_key().verify(signature, b"assay-evidence-pack:v1\n" + files["manifest.json"])


def test_the_verifiers_copy_of_rfc9162_agrees_with_the_logs():
    # the offline verifier's inclusion check, against apps.audit.merkle on every leaf of trees of 1 to 40 leaves
    for size in range(1, 41):
        leaves = [merkle.leaf_hash(hashlib.sha256(str(i).encode()).digest()) for i in range(size)]
        root = merkle.root_of(leaves)
        for index in range(size):
            proof = merkle.inclusion_proof(
                index, size, lambda start, n, leaves=leaves: merkle.root_of(leaves[start : start + n])
            )
            assert verifier.root_from_inclusion(index, size, leaves[index], proof) == root
            assert verifier.root_from_inclusion(index, size, leaves[index], [*proof, root]) is None
            if proof:
                assert verifier.root_from_inclusion(index, size, leaves[index], proof[:-1]) is None
                with pytest.raises(merkle.ProofError):
                    merkle.root_from_inclusion(index, size, leaves[index], proof[:-1])

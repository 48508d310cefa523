"""Signed tree heads and proofs over the API: what an auditor who kept an old checkpoint relies on.

The auditor takes the checkpoint's signed note and the published verifier key, and checks the
proofs the API returns with nothing but RFC 9162's algorithms: the server's word is not needed.
"""

from __future__ import annotations

import json
from pathlib import Path

from apps.audit import checkpoints, merkle, notes


def _head(client) -> tuple[notes.TreeHead, dict]:
    body = client.get("/api/v1/audit/checkpoint/").json()
    keys = [notes.parse_verifier_key(k) for k in body["verifier_keys"]]
    return notes.open_checkpoint(body["checkpoint"]["note"], keys), body


def test_the_newest_signed_tree_head_opens_with_the_published_verifier_key(
    write_events, checkpoint, make_user, api_client_for, settings
):
    write_events(20)
    cp = checkpoint()
    client = api_client_for(make_user("auditor"))
    head, body = _head(client)
    assert head.origin == settings.ASSAY_AUDIT_LOG_ORIGIN
    assert (head.size, head.root.hex()) == (cp.seq, body["checkpoint"]["root"])
    assert body["checkpoint"]["tree_size"] == cp.seq
    assert body["public_keys_pem"][0].startswith("-----BEGIN PUBLIC KEY-----")


def test_an_auditor_checks_the_log_only_grew_since_the_checkpoint_they_kept(
    write_events, checkpoint, make_user, api_client_for
):
    client = api_client_for(make_user("auditor"))
    write_events(11)
    checkpoint()
    kept, _ = _head(client)  # the auditor keeps this one
    write_events(29)
    checkpoint()
    latest, _ = _head(client)
    response = client.get(f"/api/v1/audit/proofs/consistency/?from={kept.size}")
    assert response.status_code == 200
    body = response.json()
    assert (body["old_size"], body["new_size"]) == (kept.size, latest.size)
    proof = [bytes.fromhex(h) for h in body["proof"]]
    merkle.verify_consistency(kept.size, latest.size, kept.root, latest.root, proof)


def test_an_inclusion_proof_leads_from_the_event_to_the_signed_root(
    write_events, checkpoint, make_user, api_client_for
):
    events = write_events(37)
    checkpoint()
    client = api_client_for(make_user("compliance_officer"))
    head, _ = _head(client)
    event = events[5]
    body = client.get(f"/api/v1/audit/proofs/inclusion/?seq={event.seq}").json()
    assert (body["tree_size"], body["event_hash"], body["leaf_index"]) == (head.size, event.hash, event.seq - 1)
    leaf = merkle.leaf_hash(bytes.fromhex(event.hash))
    merkle.verify_inclusion(event.seq - 1, head.size, leaf, [bytes.fromhex(h) for h in body["proof"]], head.root)


def test_sizes_that_cannot_be_proved_are_a_400_naming_the_parameter(write_events, make_user, api_client_for):
    write_events(5)
    client = api_client_for(make_user("auditor"))
    for url, name in (
        ("/api/v1/audit/proofs/consistency/", "from"),
        ("/api/v1/audit/proofs/consistency/?from=0", "from"),
        ("/api/v1/audit/proofs/consistency/?from=abc", "from"),
        ("/api/v1/audit/proofs/consistency/?from=3&to=100000", "to"),
        ("/api/v1/audit/proofs/consistency/?from=4&to=3", "from"),
        ("/api/v1/audit/proofs/inclusion/", "seq"),
        ("/api/v1/audit/proofs/inclusion/?seq=4&tree_size=3", "seq"),
        ("/api/v1/audit/proofs/inclusion/?seq=1&tree_size=100000", "tree_size"),
    ):
        response = client.get(url)
        assert response.status_code == 400, url
        assert name in response.json()["errors"], url


def test_a_checkpoint_whose_note_states_another_tree_is_refused(write_events, checkpoint, settings):
    write_events(4)
    cp = checkpoint()
    path = next(Path(settings.ASSAY_CHECKPOINT_URL.removeprefix("file://")).glob("checkpoint-*.json"))
    data = json.loads(path.read_text())
    # the attacker, without the key, claims a bigger tree in the note (the v1 signature is untouched)
    data["note"] = data["note"].replace(f"\n{cp.seq}\n", f"\n{cp.seq + 1}\n", 1)
    path.write_text(json.dumps(data))
    loaded = checkpoints.load_verified()
    assert loaded.valid == []
    assert "does not verify" in loaded.invalid[0]["_error"]
    assert checkpoints.latest_verified() is None

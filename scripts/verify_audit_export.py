#!/usr/bin/env python3
"""Re-verify an Assay audit export (JSON Lines) with nothing but Python's standard library.

usage: verify_audit_export.py EXPORT.jsonl [CHECKPOINT.json ...] [--allow-gaps]
Checks every event's hash, its link to the event before it, and that each given
checkpoint's hash is the chain's hash at that seq. --allow-gaps: a filtered export.
"""

import hashlib
import json
import sys
from pathlib import Path

KEYS = ["seq", "event_id", "occurred_at", "actor_type", "actor_id", "token_id", "source", "client_ip", "request_id"]
KEYS += ["action", "outcome", "target_type", "target_id", "related_type", "related_id", "before", "after", "reason"]
KEYS += ["artifact_sha256"]
files = [Path(a) for a in sys.argv[1:] if a != "--allow-gaps"]
checkpoints = {cp["seq"]: cp["hash"] for cp in (json.loads(f.read_text()) for f in files[1:])}
lines = [line for line in files[0].read_text(encoding="utf-8").split("\n") if line]  # not splitlines(): U+2028
prev, seen = None, {}
for n, line in enumerate(lines, 1):
    e = json.loads(line)
    obj = {**{k: e[k] for k in KEYS}, "v": 1}
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if hashlib.sha256(f"{e['prev_hash']}\n{canonical}".encode()).hexdigest() != e["hash"]:
        sys.exit(f"FAIL line {n}: event {e['seq']} does not match its hash (modified)")
    linked = e["prev_hash"] == (prev["hash"] if prev else "0" * 64)
    if (prev is None and e["seq"] == 1 or prev and e["seq"] == prev["seq"] + 1) and not linked:
        sys.exit(f"FAIL line {n}: event {e['seq']} does not follow the event before it (removed or reordered)")
    if prev and e["seq"] != prev["seq"] + 1 and not (e["seq"] > prev["seq"] and "--allow-gaps" in sys.argv):
        sys.exit(f"FAIL line {n}: event {e['seq']} follows {prev['seq']} (events missing or out of order)")
    prev, seen[e["seq"]] = e, e["hash"]
for seq, digest in checkpoints.items():
    if seq in seen and seen[seq] != digest:
        sys.exit(f"FAIL: event {seq} does not match the signed checkpoint (the chain was rewritten)")
print(f"OK: {len(seen)} events verified" + (f", last #{prev['seq']} {prev['hash']}" if prev else ""))

"""Evidence packs over a large trail: the build, and what proofs cost to make and to check.

    .venv/bin/python benchmarks/pack_bench.py [--events 1000000] [--in-scope 1000] [--rounds 3]

``DATABASE_URL`` picks the database (default: a fresh SQLite file in a temporary folder, as
``benchmarks/audit_bench.py``, whose setup and fill this script reuses). Point it at a throwaway
PostgreSQL database: the script migrates it and appends events that can never be deleted.

The trail is filled through ``audit.record()`` with audit_bench's mix, sealed as it goes (so the
Merkle tree's nodes are stored as in production); one event in every ``events / in-scope`` is
about one release (``related_type`` "release", an id of its own), so the scope is scattered
over the whole trail. It prints:

- fill: events per second (the setup, not a target);
- build: ``build_pack`` for the release's events, a fresh signed checkpoint included (the target
  is under 5 s at a million events), the median of ``--rounds``, and the pack's size;
- its parts: reading the scope's events, their inclusion proofs in one batched ``TreeReader``;
- inclusion, one event at a time: a proof's hashes, time and queries with a fresh reader each;
- verification: one proof checked the way ``scripts/verify_pack.py`` checks it, and the whole
  pack through the offline verifier;
- consistency: proof size and time between tree sizes 1 and N, and N/2 and N, with its check;
- machine: ``benchmarks/machine.py``'s line, before and after.

Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import audit_bench  # noqa: E402
import machine  # noqa: E402

ROOT = audit_bench.ROOT
RELEASE = str(uuid.UUID(int=0x5EED_0000_0000_4000_8000_0000_0000_0001))


def fill(events: int, in_scope: int, batch: int) -> tuple[float, list[int]]:
    """``events`` events, one in every events/in_scope about the release; returns (events/s, their seqs)."""
    from django.db import transaction

    from apps.audit import services as audit
    from apps.audit.chain import seal_pending
    from apps.audit.models import AuditEvent
    from apps.core.principals import Principal

    stride = max(events // max(in_scope, 1), 1)
    actor = Principal(kind="user", id=11, name="erin")
    started = time.perf_counter()
    written, k = 0, 0
    while written < events:
        noise = min(stride - 1, events - written)
        if noise:
            audit_bench.fill(noise, batch)  # audit_bench's mix, sealed
            written += noise
        if written < events and k < in_scope:
            with transaction.atomic():
                audit.record(
                    action="release.approval_recorded",
                    actor=actor,
                    target=("approval", str(k), f"approval {k}"),
                    related=("release", RELEASE, "credit-scoring v3 to production"),
                    after={"decision": "approved", "n": k},
                )
            written, k = written + 1, k + 1
    seal_pending(blocking=True)
    rate = events / (time.perf_counter() - started)
    seqs = list(
        AuditEvent.objects.filter(related_type="release", related_id=RELEASE, seq__isnull=False)
        .order_by("seq")
        .values_list("seq", flat=True)
    )
    return rate, seqs


def scope_filter():
    from apps.audit.filters import EventFilter
    from apps.audit.related import Subject

    # The subject resolved by hand: the benchmark has no release row for the providers to find.
    subject = Subject(text=f"release:{RELEASE}", kind="release", key=RELEASE, parts=(("release", (RELEASE,)),))
    return EventFilter(related=f"release:{RELEASE}", subject=subject)


def offline_verifier():
    path = ROOT / "scripts" / "verify_pack.py"
    spec = importlib.util.spec_from_file_location("verify_pack", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the trail")
    parser.add_argument("--in-scope", type=int, default=1_000, help="events about the release (the pack's scope)")
    parser.add_argument("--batch", type=int, default=1000, help="events per transaction while filling")
    parser.add_argument("--rounds", type=int, default=3, help="builds to take the median of")
    parser.add_argument("--singles", type=int, default=200, help="events proved one at a time")
    args = parser.parse_args()
    tmp = audit_bench.setup_django()

    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.audit import checkpoints, merkle, tree
    from apps.audit.exports import iter_export_rows
    from worker.reports.pack import build_pack

    checkpoints.load_signing_key(create=True)
    print(f"database: {connection.vendor} ({settings.DATABASES['default']['NAME']}); scratch folder {tmp}")
    print(machine.line())

    rate, seqs = fill(args.events, args.in_scope, args.batch)
    size = tree.sealed_size()
    print(f"fill:        {size:>9,} events via record(), {len(seqs):,} about the release: {rate:>9,.0f} events/s")

    filters, records = scope_filter(), {"records/release.json": b'{"status": "deployed"}\n'}
    durations, data = [], b""
    for _ in range(args.rounds):
        data, elapsed = timed(
            build_pack,
            scope={"kind": "release", "subject": f"release:{RELEASE}", "related": f"release:{RELEASE}"},
            filters=filters,
            files=records,
            report_pdf=None,
            certificate_pem=None,
            generated_by="pack_bench",
        )
        durations.append(elapsed)
    print(
        f"build:       {len(seqs):>9,} events of {size:,}, checkpoint included: {statistics.median(durations):.2f} s "
        f"(median of {args.rounds}; best {min(durations):.2f} s; target < 5 s), pack {len(data) / 1e6:.2f} MB"
    )

    cp = checkpoints.latest_verified()
    rows, read_s = timed(lambda: list(iter_export_rows(filters, up_to_seq=cp.seq)))
    proofs, proof_s = timed(lambda: tree.TreeReader(cp.seq).inclusion([r[0] for r in rows]))
    depth = statistics.mean(len(p) for p in proofs.values()) if proofs else 0
    print(f"  events:    {len(rows):>9,} read in {read_s * 1000:.0f} ms")
    print(
        f"  proofs:    {len(proofs):>9,} in one batched TreeReader: {proof_s * 1000:.0f} ms "
        f"({proof_s / max(len(proofs), 1) * 1e6:.0f} us an event, {depth:.1f} hashes a proof)"
    )

    picks = random.Random(7).sample(range(1, cp.seq + 1), min(args.singles, cp.seq))
    times, queries = [], []
    for seq in picks:
        with CaptureQueriesContext(connection) as captured:
            _, elapsed = timed(tree.TreeReader(cp.seq).inclusion, [seq])
        times.append(elapsed)
        queries.append(len(captured.captured_queries))
    print(
        f"inclusion:   one event at a time, fresh reader: {statistics.median(times) * 1000:.2f} ms median, "
        f"{max(times) * 1000:.2f} ms max, {statistics.median(queries):.0f} queries ({len(picks)} events)"
    )

    verifier = offline_verifier()
    root, leaves = bytes.fromhex(cp.root), {r[0]: verifier.leaf_hash(bytes.fromhex(r[-1])) for r in rows}
    started = time.perf_counter()
    for seq, proof in proofs.items():
        assert verifier.root_from_inclusion(seq - 1, cp.seq, leaves[seq], proof) == root
    per_event = (time.perf_counter() - started) / max(len(proofs), 1)
    result, whole = timed(
        verifier.verify_pack,
        data,
        public_key_pem=checkpoints.public_pem(checkpoints.load_signing_key().public_key()).encode(),
    )
    status = "verified" if result.ok else f"NOT verified: {result.problems[:3]}"
    print(
        f"verify:      one inclusion proof {per_event * 1e6:.1f} us; the pack offline {whole * 1000:.0f} ms, {status}"
    )

    for old in (1, cp.seq // 2):
        reader = tree.TreeReader(cp.seq)
        with CaptureQueriesContext(connection) as captured:
            proof, elapsed = timed(reader.consistency, old)
        old_root = tree.TreeReader(old).root()
        _, check = timed(merkle.verify_consistency, old, cp.seq, old_root, root, proof)
        print(
            f"consistency: {old:>9,} -> {cp.seq:,}: {len(proof)} hashes ({len(proof) * 32} bytes), "
            f"{elapsed * 1000:.2f} ms, {len(captured.captured_queries)} queries; checked in {check * 1e6:.0f} us"
        )
    print(machine.line())


if __name__ == "__main__":
    main()

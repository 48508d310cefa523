"""Audit trail throughput: events appended per second and events verified per second.

    .venv/bin/python benchmarks/audit_bench.py [--events 200000] [--writers 32] [--per-writer 100]
    .venv/bin/python benchmarks/audit_bench.py --verify-only [--verify-rounds 5]   # an already filled database

``DATABASE_URL`` picks the database (default: a fresh SQLite file in a temporary
folder). Point it at a throwaway PostgreSQL database: the script migrates it and
appends events that can never be deleted. It prints:

- fill: N events written through ``audit.record()`` in batches of one transaction each,
  then sealed (the bulk path of a busy control plane). The mix is a trail's: 20% edits
  with before and after values, 50% creations with after values, 30% denials without;
- append: events per second with ``--writers`` concurrent threads, one event per
  transaction, each sealed after its commit as in production (PostgreSQL only:
  SQLite has a single writer lock);
- verify: ``verify_database(workers=default_workers())``, what ``manage.py audit_verify``
  runs, over the whole chain against a signed checkpoint, in events per second (the
  median of ``--verify-rounds`` runs); verify_one: the same in one process, as the API
  and the dashboard run it;
- machine: ``benchmarks/machine.py``'s line, before and after: the load average and the
  host speed index (microseconds for ``sum(range(1000))``), so figures taken on a busy
  shared machine can be compared with each other.

Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import machine  # noqa: E402


def setup_django() -> str:
    tmp = tempfile.mkdtemp(prefix="assay-audit-bench-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite3")
    os.environ.setdefault("DJANGO_SECRET_KEY", "audit-bench-not-a-secret")
    os.environ["ASSAY_VAR_DIR"] = tmp
    # The append figure includes sealing after each commit, the most the sealer can be asked to do.
    os.environ.setdefault("ASSAY_AUDIT_SEAL_ON_COMMIT", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return tmp


def fill(n: int, batch: int) -> float:
    from django.db import transaction

    from apps.audit import services as audit
    from apps.audit.chain import seal_pending
    from apps.core.principals import Principal

    actor = Principal(kind="user", id=7, name="bench")
    started = time.perf_counter()
    done = 0
    while done < n:
        size = min(batch, n - done)
        with transaction.atomic():
            for i in range(done, done + size):
                # A trail's mix: 20% edits with before and after, 50% creations with after, 30% without values
                # (denials, sign-ins, deletions described by their reason).
                kind = i % 10
                audit.record(
                    action="model.updated" if kind < 2 else "version.created" if kind < 7 else "model.denied",
                    actor=actor,
                    target=("model", str(i % 500), f"model-{i % 500}"),
                    before={"risk_tier": "limited", "description": "före"} if kind < 2 else None,
                    after={"risk_tier": "high", "description": "after", "n": i} if kind < 7 else None,
                    reason="benchmark" if kind < 7 else "You do not have the 'registry.model_edit' permission here.",
                    outcome="success" if kind < 7 else "denied",
                )
        done += size
    seal_pending(blocking=True)
    return n / (time.perf_counter() - started)


def append_concurrently(writers: int, per_writer: int) -> float:
    from django.db import connection, transaction

    from apps.audit import services as audit
    from apps.audit.chain import seal_pending
    from apps.core.principals import Principal

    barrier = threading.Barrier(writers + 1)
    errors: list[BaseException] = []

    def work(w: int) -> None:
        actor = Principal(kind="service_account", id=w, name=f"ci-{w}")
        try:
            barrier.wait()
            for i in range(per_writer):
                with transaction.atomic():
                    audit.record(action="version.created", actor=actor, target=("version", f"{w}-{i}", f"v{i}"))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    seal_pending(blocking=True)
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return writers * per_writer / elapsed


def verify(name: str, workers: int, rounds: int) -> None:
    from apps.audit.verification import verify_database

    rates, result, elapsed = [], None, []
    for _ in range(rounds):
        started = time.perf_counter()
        result = verify_database(workers=workers)
        elapsed.append(time.perf_counter() - started)
        rates.append(result.events / elapsed[-1])
    status = "intact" if result.ok else f"NOT intact at {result.first_bad_seq}"
    print(
        f"{name + ':':<12} {result.events:>9,} events, {result.checkpoints_checked} checkpoint(s), {status}, "
        f"{workers} worker(s), {rounds} round(s) (best {max(rates):,.0f}/s): "
        f"{statistics.median(rates):>9,.0f} events/s ({statistics.median(elapsed):.2f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="events to fill before verifying")
    parser.add_argument("--batch", type=int, default=1000, help="events per transaction while filling")
    parser.add_argument("--writers", type=int, default=32, help="concurrent writer threads (PostgreSQL)")
    parser.add_argument("--per-writer", type=int, default=100, help="events each writer appends")
    parser.add_argument("--verify-only", action="store_true", help="no fill and append: verify the trail there is")
    parser.add_argument("--verify-rounds", type=int, default=3, help="verifications to take the median of")
    args = parser.parse_args()
    tmp = setup_django()

    from django.conf import settings
    from django.db import connection

    from apps.audit import checkpoints
    from apps.audit.verification import default_workers

    checkpoints.load_signing_key(create=True)
    print(f"database: {connection.vendor} ({settings.DATABASES['default']['NAME']}); scratch folder {tmp}")
    print(machine.line())

    if not args.verify_only:
        rate = fill(args.events, args.batch)
        print(
            f"fill:    {args.events:>9,} events via record(), {args.batch} a transaction, sealed: "
            f"{rate:>9,.0f} events/s"
        )
        if connection.vendor == "postgresql":
            rate = append_concurrently(args.writers, args.per_writer)
            total = args.writers * args.per_writer
            print(f"append:  {total:>9,} events, {args.writers} writers, one per transaction: {rate:>9,.0f} events/s")
        else:
            print("append:  skipped (concurrent writers are measured on PostgreSQL: set DATABASE_URL=postgres://...)")

    checkpoints.checkpoint_write()
    verify("verify", default_workers(), args.verify_rounds)
    verify("verify_one", 1, args.verify_rounds)
    print(machine.line())


if __name__ == "__main__":
    main()

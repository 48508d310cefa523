"""Policy engine benchmark: the cost of compiling a pack, of one query on a compiled pack, and of a
whole decision (every shipped pack on one input document), evaluated in the sandboxed children
(apps/policies/sandbox.py) as the product does.

    .venv/bin/python benchmarks/policy_bench.py [--rounds 200]

No database: the packs are read from apps/policies/packs/ and the input is the sample document
(apps/policies/inputs.py SAMPLE_INPUT). Prints wall-clock and CPU milliseconds (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")

import django  # noqa: E402
import machine  # noqa: E402

django.setup()

from apps.policies import engine, sandbox  # noqa: E402
from apps.policies.catalog import SHIPPED, sha256_text, shipped_source  # noqa: E402
from apps.policies.inputs import SAMPLE_INPUT  # noqa: E402


def timed(fn, rounds: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(rounds):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append((time.perf_counter() - w) * 1000)
        cpus.append((time.process_time() - c) * 1000)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    packs = [(n, shipped_source(n), "assay." + n.replace("-", "_")) for n in SHIPPED]

    def compile_all():
        sandbox.shutdown()  # fresh children: nothing compiled (includes starting a child)
        for _name, source, package in packs:
            engine.compile_check(source, sha256_text(source), package)

    batch = [(source, sha256_text(source), package) for _name, source, package in packs]

    def decide():  # as decisions.decide_with does: the input sent once, the packs answered in turn
        for result in engine.evaluate_each(packs=batch, document=SAMPLE_INPUT):
            assert not isinstance(result, Exception), result

    def decide_cold():
        sandbox.shutdown()
        decide()

    rounds = args.rounds
    print(machine.line())
    print(f"{len(packs)} shipped packs, median of {rounds} rounds (ms: wall / cpu)")
    wall, cpu = timed(compile_all, max(rounds // 10, 5))
    print(f"start a child, compile every pack:          {wall:7.2f} / {cpu:7.2f}")
    wall, cpu = timed(decide_cold, max(rounds // 10, 5))
    print(f"decision, fresh child (compile + evaluate): {wall:7.2f} / {cpu:7.2f}")
    decide()
    wall, cpu = timed(decide, rounds)
    print(f"decision, warm child (compiled packs):      {wall:7.2f} / {cpu:7.2f}")
    for name, source, package in packs:
        sha = sha256_text(source)
        w, c = timed(
            lambda s=source, h=sha, p=package: engine.evaluate(source=s, sha256=h, package=p, document=SAMPLE_INPUT),
            rounds,
        )
        print(f"  {name:<10} one query:                  {w:7.2f} / {c:7.2f}")

    # Threads share the pool (a child per evaluation in progress): check that concurrent decisions succeed.
    results, errors = [], []

    def worker():
        try:
            for _ in range(20):
                decide()
            results.append(True)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    w = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"4 threads x 20 decisions: {(time.perf_counter() - w) * 1000:.0f} ms wall, errors: {len(errors)}")
    print(machine.line())


if __name__ == "__main__":
    main()

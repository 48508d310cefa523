"""What every benchmark prints beside its figures: how loaded this machine is and how fast its CPU is right now.

Figures taken on a shared 2-core machine move with other people's work. The host speed index (microseconds for
``sum(range(1000))``, best of five) and the load average let two runs be compared: a run whose index is 20% higher
ran on a 20% slower CPU, whatever the benchmark measured.
"""

from __future__ import annotations

import os
import platform
import timeit


def speed_index_us() -> float:
    """Microseconds for ``sum(range(1000))``, the best of five repeats: lower is faster."""
    return round(min(timeit.repeat("sum(range(1000))", number=5_000, repeat=5)) / 5_000 * 1e6, 2)


def load_average() -> tuple[float, float, float]:
    return tuple(round(x, 2) for x in os.getloadavg())  # type: ignore[return-value]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> dict:
    """The machine's facts now, as a dict a benchmark stores with its results."""
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "load_average": list(load_average()),
        "speed_index_us": speed_index_us(),
    }


def line(facts: dict | None = None) -> str:
    """One printable line: ``machine: 2 cores (AMD EPYC …), load 1.20 0.90 0.70, sum(range(1000)) 13.9 µs``."""
    facts = facts or describe()
    load = " ".join(f"{x:.2f}" for x in facts["load_average"])
    return (
        f"machine: {facts['cpus']} cores ({facts['cpu_model']}), load {load}, "
        f"host speed index sum(range(1000)) {facts['speed_index_us']} us (lower is faster)"
    )


if __name__ == "__main__":
    print(line())

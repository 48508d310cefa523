"""The registration benchmark's printed report: the table, the audit figures, the verdicts and notes."""

from __future__ import annotations

import machine

TARGET_RATE = 375
TARGET_P99_MS = 150


def _row(name: str, step: dict, ratio: str = "") -> str:
    bad = step["not_ok"] + sum(step["socket_errors"].values())
    cpu = step.get("cpu_cores") or {}
    cores = "/".join(f"{cpu.get(k, 0):.2f}" for k in ("server", "loadgen", "postgres", "others"))
    return (
        f"{name:<28}{step['concurrency']:>8}{step['rate']:>10.1f}{step['p50_ms']:>10.1f}{step['p99_ms']:>10.1f}"
        f"{step['requests']:>10}{bad:>8}{ratio:>10}  {cores}"
    )


def print_report(report: dict) -> None:
    meta = report["meta"]
    print()
    print(
        f"Registrations per second - PostgreSQL {meta['postgresql']}, {meta['duration_s']:.0f} s per step after "
        f"{meta['warmup_s']:.0f} s warm-up; one load generator for every server: {meta['generator']}"
    )
    print(f"at the start: {machine.line(meta['machine'])}")
    if meta.get("machine_at_end"):
        print(f"at the end:   {machine.line(meta['machine_at_end'])}")
    header = (
        f"{'server / load':<28}{'clients':>8}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'requests':>10}{'errors':>8}"
    )
    mlflow = report.get("mlflow", {})
    mlflow_rate = {s["concurrency"]: s["rate"] for s in mlflow.get("json", [])}
    print(header + f"{'vs MLflow':>10}  cores busy: server/loadgen/postgres/others")
    print("-" * (len(header) + 50))
    for config, loads in report["assay"].items():
        for load, steps in loads.items():
            if isinstance(steps, dict):
                print(f"assay {config} {load:<10} skipped: {steps.get('error', '')[:200]}")
                continue
            for step in steps:
                ratio = ""
                if load == "json" and mlflow_rate.get(step["concurrency"]):
                    ratio = f"{step['rate'] / mlflow_rate[step['concurrency']]:.2f}x"
                print(_row(f"assay {config} {load}", step, ratio))
    for step in mlflow.get("json", []):
        print(_row(f"mlflow {mlflow.get('version', '')} json", step))
    for step in mlflow.get("generator_check", []):
        print(_row(f"mlflow json, {step['generator'].split(',')[0]}", step))
    if mlflow.get("skipped"):
        print(f"mlflow: skipped ({mlflow['skipped']})")
    for line in ratio_lines(report):
        print(line)
    audit = report.get("audit_bench") or {}
    if audit.get("events_per_second"):
        rates = ", ".join(f"{k} {v:,.0f} events/s" for k, v in audit["events_per_second"].items())
        print(f"\naudit trail (benchmarks/audit_bench.py): {rates}")
        print("  targets: append >= 1,000 events/s under 32 writers; audit_verify >= 100,000 events/s")
    elif audit:
        why = audit.get("skipped") or f"exit {audit.get('exit_code')}"
        print(f"\naudit trail (benchmarks/audit_bench.py): {why}")
    print()
    for line in report["verdicts"]:
        print(line)
    for note in report["notes"]:
        print(f"note: {note}")


def ratio_lines(report: dict) -> list[str]:
    """Assay/MLflow per number of clients (JSON registrations, one generator), and the generator check."""
    mlflow = report.get("mlflow", {})
    theirs = {s["concurrency"]: s["rate"] for s in mlflow.get("json", [])}
    theirs_steps = {s["concurrency"]: s for s in mlflow.get("json", [])}
    if not theirs:
        return []
    lines = ["", "Assay / MLflow, JSON registrations, same load generator (goal: >= 3x at 8 and 32 clients):"]
    for config, loads in report["assay"].items():
        steps = loads.get("json")
        if not isinstance(steps, list):
            continue
        ratios = [
            f"{s['concurrency']} client(s) {s['rate'] / theirs[s['concurrency']]:.2f}x"
            for s in steps
            if theirs.get(s["concurrency"])
        ]
        lines.append(f"  assay {config}: " + ", ".join(ratios))
        per_core = [
            f"{s['concurrency']} client(s) {_per_core(s) / _per_core(theirs_steps[s['concurrency']]):.2f}x"
            for s in steps
            if _per_core(s) and _per_core(theirs_steps.get(s["concurrency"], {}))
        ]
        if per_core:
            lines.append(f"    per core the server kept busy (less sensitive to other load): {', '.join(per_core)}")
    check = {s["concurrency"]: s for s in mlflow.get("generator_check", [])}
    if check:
        first = mlflow["json"][0]["generator"]
        other = next(iter(check.values()))["generator"]
        lines.append(f"MLflow's rate from the two generators ({first} / {other}):")
        for step in mlflow["json"]:
            alt = check.get(step["concurrency"])
            if alt and alt["rate"]:
                lines.append(
                    f"  {step['concurrency']} client(s): {step['rate']:.1f}/s vs {alt['rate']:.1f}/s "
                    f"({step['rate'] / alt['rate']:.2f}x)"
                )
    return lines


def _per_core(step: dict) -> float:
    """Answers per second per core the server process group kept busy during the step (0 when unknown)."""
    server = (step.get("cpu_cores") or {}).get("server", 0)
    return step.get("rate", 0) / server if server else 0.0


def all_steps(report: dict) -> list[dict]:
    steps = [s for loads in report["assay"].values() for v in loads.values() if isinstance(v, list) for s in v]
    mlflow = report.get("mlflow", {})
    return steps + mlflow.get("json", []) + mlflow.get("generator_check", [])


def verdicts(report: dict) -> list[str]:
    lines = []
    for config, loads in report["assay"].items():
        for load, steps in loads.items():
            if isinstance(steps, dict):
                continue
            at32 = next((s for s in steps if s["concurrency"] == 32), None)
            if at32 is None:
                continue
            met = at32["rate"] >= TARGET_RATE and at32["p99_ms"] < TARGET_P99_MS and at32["not_ok"] == 0
            lines.append(
                f"target (>= {TARGET_RATE}/s at 32 clients, p99 < {TARGET_P99_MS} ms), assay {config} {load}: "
                f"{at32['rate']:.0f}/s, p99 {at32['p99_ms']:.0f} ms -> {'MET' if met else 'NOT MET'}"
            )
    return lines

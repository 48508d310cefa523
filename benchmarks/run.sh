#!/usr/bin/env bash
# Registration benchmark (and the audit benchmark, when present) on PostgreSQL + Redis.
# Usage: benchmarks/run.sh [--duration 10] [--concurrency 1,8,32] [--servers sync:5,gthread:5x4] [--no-mlflow] ...
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and Redis on 127.0.0.1:6379; installs wrk if missing
# (the load comes from benchmarks/loadgen.py's asyncio generator for every server; wrk drives MLflow as a check).
# Figures are printed and written to benchmarks/results/latest.json.
set -euo pipefail
source "$(dirname "$0")/../scripts/_venv.sh" requirements.txt
cd "$ROOT"
if ! command -v wrk >/dev/null 2>&1; then
  echo "==> installing wrk (Debian package)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >/dev/null 2>&1 \
    || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >/dev/null; }
fi
exec "$PY" benchmarks/registry_bench.py "$@"

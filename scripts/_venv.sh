# Sourced by scripts/run and scripts/test: make sure the virtual environment exists and is current.
# ASSAY_VENV picks its location (default .venv in the project); it is rebuilt when the requirements change.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ASSAY_VENV:-$ROOT/.venv}"
REQS="$1"
PY_BIN="${ASSAY_PYTHON:-$(command -v python3.11 || command -v python3)}"
stamp="$(cat "$ROOT/requirements.txt" "$ROOT/$REQS" | sha256sum | cut -c1-16)"
# One installer at a time: a second run (another terminal, a parallel test run) waits for the first.
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating virtual environment in $VENV"
  "$PY_BIN" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
fi
# One stamp per requirements file, so the run command (requirements.txt) and the tests
# (requirements-dev.txt) sharing a venv do not make each other reinstall.
name="$(basename "$REQS" .txt)"
if [ ! -f "$VENV/.assay-$name-$stamp" ]; then
  echo "==> installing $REQS"
  "$VENV/bin/pip" install --quiet -r "$ROOT/$REQS"
  rm -f "$VENV/.assay-$name-"*
  touch "$VENV/.assay-$name-$stamp"
fi
flock -u 9
exec 9>&-
export PATH="$VENV/bin:$PATH"
PY="$VENV/bin/python"

# shellcheck shell=bash
# Sourced by scripts/test and scripts/quickstart: create or reuse .venv and install
# secretkit (with extras "$1": "dev" for scripts/test, "sandbox" for scripts/quickstart)
# when pyproject.toml changed since last time.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SECRETKIT_VENV:-$ROOT/.venv}"
EXTRAS="${1:-}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo ">> creating $VENV" >&2
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
fi
stamp="$VENV/.secretkit-install-$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)-${EXTRAS:-base}"
if [ ! -f "$stamp" ]; then
  echo ">> installing secretkit${EXTRAS:+[$EXTRAS]} into $VENV (first run takes a few minutes)" >&2
  target="$ROOT"
  [ -n "$EXTRAS" ] && target="$ROOT[$EXTRAS]"
  "$VENV/bin/python" -m pip install -q -e "$target" >&2
  touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"

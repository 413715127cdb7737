# Sourced by .ci/test and .ci/demo: create or reuse .venv and install rxconnector into it.
# Usage: install_into_venv EXTRAS   (EXTRAS like "[dev]" or "")
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
install_into_venv() {
  local extras="$1"
  if [ ! -x .venv/bin/python ]; then
    if ! "$PY" -m venv .venv 2>/dev/null; then
      # Debian's python3 may lack ensurepip: install the venv module via apt.
      if command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      fi
      "$PY" -m venv .venv
    fi
  fi
  local stamp=".venv/.rxc-installed${extras}"
  # Reinstall when the metadata or the C extension's source changed (the editable
  # install builds rxconnector/exchanges/_cbook in place).
  if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ setup.py -nt "$stamp" ] \
    || [ rxconnector/exchanges/_cbook.c -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e ".${extras}"
    touch "$stamp"
  fi
}

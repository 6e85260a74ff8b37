#!/usr/bin/env bash
# Set up and run the whole test suite: lint, types, layer contract, pytest.
# Installs Dovecot and PostgreSQL from Debian when they are missing and we are
# root; in CI (CI=true) a skipped server test fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
if ! command -v dovecot >/dev/null 2>&1 && [ ! -x /usr/sbin/dovecot ]; then
  missing+=(dovecot-imapd)
fi
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && ! command -v initdb >/dev/null; then
  missing+=(postgresql)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing ${missing[*]} from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "== ${missing[*]} not installed (not root): their server tests will skip" >&2
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test,postgres]'

if [ "${CI:-}" = "true" ]; then
  export INBOXD_REQUIRE_SERVERS=1
fi

echo "== ruff";   .venv/bin/ruff check inboxd tests bench
echo "== mypy";   .venv/bin/mypy inboxd
echo "== import contracts"; .venv/bin/lint-imports
echo "== pytest"; .venv/bin/python -m pytest -q -p no:cacheprovider "$@"

#!/usr/bin/env bash
# One entry point for a fresh machine: sets up everything, then runs a job.
#
#   bash scripts/run.sh demo [gpviz demo options]   # the tour, HTML pages in ./gpviz-demo
#   bash scripts/run.sh test [pytest options]       # the whole test suite
#
# Creates .venv, installs CPU torch first (torch==2.13.0 is served from this
# disk; an unpinned torch would pull a multi-GB CUDA build), then gpviz with its
# test extras, and (for tests) Debian's chromium for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
job="${1:-test}"; shift || true
PY="${PYTHON:-python3}"
VENV=.venv
TORCH_PIN="torch==2.13.0"

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.gpviz-installed"
want="$(cat pyproject.toml setup.cfg | sha256sum | cut -c1-16)-$job"
if [ ! -f "$stamp" ] || ! grep -qx -- "$want" "$stamp"; then
  "$VENV/bin/python" -m pip install -q --upgrade pip setuptools wheel
  "$VENV/bin/python" -m pip install -q "$TORCH_PIN"
  if [ "$job" = test ]; then
    # the fully-bayesian extra (jax, numpyro) so that the SAAS tests run in CI instead of skipping
    "$VENV/bin/python" -m pip install -q -e ".[test,fully-bayesian]"
  else
    "$VENV/bin/python" -m pip install -q -e .
  fi
  echo "$want" >> "$stamp"
fi

ensure_chromium() {
  if command -v chromium >/dev/null 2>&1; then return 0; fi
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing Debian's chromium for the browser tests..." >&2
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
}

case "$job" in
  demo)
    exec "$VENV/bin/gpviz" demo --out gpviz-demo "$@"
    ;;
  test)
    ensure_chromium
    export GPVIZ_REQUIRE_BROWSER=1
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *)
    echo "usage: bash scripts/run.sh demo|test [options]" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# One entry point for a fresh machine: sets up everything, then runs a job.
#
#   bash scripts/run.sh demo [gpviz demo options]   # the tour, HTML pages in ./gpviz-demo
#   bash scripts/run.sh test [pytest options]       # the whole test suite
#   bash scripts/run.sh test-oldest [pytest opts]   # core tests on the oldest declared dependencies
#
# Creates .venv, installs CPU torch first (torch==2.13.0 is served from this
# disk; an unpinned torch would pull a multi-GB CUDA build), then gpviz with its
# extras (test, fully-bayesian, ax, dask, docs, arviz), and (for tests) Debian's chromium for
# the browser tests. test-oldest uses its own .venv-oldest with exactly the lower
# bounds of pyproject.toml (scripts/oldest-constraints.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
job="${1:-test}"; shift || true
PY="${PYTHON:-python3}"
VENV=.venv
TORCH_PIN="torch==2.13.0"
if [ "$job" = test-oldest ]; then
  VENV=.venv-oldest
fi
step() { echo "run.sh: $*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
  step "creating the virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.gpviz-installed"
want="$(cat pyproject.toml setup.cfg scripts/oldest-constraints.txt | sha256sum | cut -c1-16)-$job"
if [ ! -f "$stamp" ] || ! grep -qx -- "$want" "$stamp"; then
  # one line per step, and pip's own progress (the first run downloads ~1 GB and takes minutes)
  PIP=("$VENV/bin/python" -m pip install --progress-bar on --disable-pip-version-check)
  step "[1/3] upgrading pip, setuptools, wheel"
  "${PIP[@]}" --upgrade pip setuptools wheel
  step "[2/3] installing CPU-only $TORCH_PIN (a plain 'torch' would pull a multi-GB CUDA build)"
  "${PIP[@]}" "$TORCH_PIN"
  if [ "$job" = test ]; then
    # every extra, so that the SAAS, Ax, Dask, docs and ArviZ tests run in CI instead of skipping
    # (tests/test_wheel.py also builds and installs the wheel itself, outside the tree)
    step "[3/3] installing gpviz with its test, fully-bayesian, ax, dask, docs and arviz extras (editable)"
    "${PIP[@]}" -e ".[test,fully-bayesian,ax,dask,docs,arviz]"
  elif [ "$job" = test-oldest ]; then
    step "[3/3] installing gpviz on the oldest declared dependencies (scripts/oldest-constraints.txt)"
    "${PIP[@]}" -c scripts/oldest-constraints.txt -e . pytest pytest-timeout hypothesis threadpoolctl
  else
    step "[3/3] installing gpviz (editable)"
    "${PIP[@]}" -e .
  fi
  echo "$want" >> "$stamp"
  step "installed; next runs skip this until pyproject.toml changes"
fi

ensure_chromium() {
  if command -v chromium >/dev/null 2>&1; then return 0; fi
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  step "installing Debian's chromium for the browser tests (apt-get)"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
}

case "$job" in
  demo)
    step "running: gpviz demo --out gpviz-demo $*"
    exec "$VENV/bin/gpviz" demo --out gpviz-demo "$@"
    ;;
  test)
    ensure_chromium
    export GPVIZ_REQUIRE_BROWSER=1 GPVIZ_REQUIRE_DASK=1 GPVIZ_REQUIRE_AX=1 GPVIZ_REQUIRE_EXTRAS=1
    step "running: pytest $*"
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  test-oldest)
    # the stages that touch BoTorch/GPyTorch/pandas most: walker, values, tracer, hooks (no browser, no extras)
    step "running: pytest on the oldest dependencies $*"
    exec "$VENV/bin/python" -m pytest -m "not browser and not slow" tests/tree tests/walk tests/values \
      tests/trace/test_tracer.py tests/test_hooks.py "$@"
    ;;
  *)
    echo "usage: bash scripts/run.sh demo|test|test-oldest [options]" >&2
    exit 2
    ;;
esac

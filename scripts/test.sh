#!/usr/bin/env bash
# Runs every check: lint, types, the test suite, and the demo's self-check. Installs what it needs
# first (scripts/setup.sh). Stops at the first failure and ends with a summary of each step.
#
#   bash scripts/test.sh [pytest arguments ...]
#
# Arguments go to pytest, e.g. `bash scripts/test.sh tests/unit -x`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SUMMARY=()
SCRATCH="$(mktemp -d -t hall-test-XXXXXX)"

on_exit() {
    local status=$?
    stop_real_peers
    rm -rf "$SCRATCH"
    echo
    echo "==== summary ===="
    local line
    for line in "${SUMMARY[@]}"; do
        echo "  $line"
    done
    if ((status == 0)); then
        echo "all checks passed"
    else
        echo "FAILED (exit $status)"
    fi
    exit "$status"
}
trap on_exit EXIT

# Runs one named step; records its result and time, and stops everything when it fails.
step() {
    local name=$1
    shift
    echo
    echo "==== $name ===="
    local started=$SECONDS status=0
    STEP_NOTE=""
    "$@" || status=$?
    local took=$((SECONDS - started))
    if ((status == 0)); then
        SUMMARY+=("ok      $name (${took}s)")
    else
        SUMMARY+=("FAILED  $name (exit $status${STEP_NOTE:+: $STEP_NOTE}, ${took}s)")
        exit "$status"
    fi
}
# A step may set this to say in the summary why it failed.
STEP_NOTE=""

# ---- real peers --------------------------------------------------------------------------------
# System services the integration tests talk to (pcscd with the virtual reader driver, cupsd with
# the PDF printer) are started here before pytest and stopped on exit. Each start must be
# idempotent: leave a peer that is already running alone and do not stop what this script did not
# start. No test needs one yet.
start_real_peers() {
    :
}

stop_real_peers() {
    :
}

# ---- steps -------------------------------------------------------------------------------------
run_pytest() {
    local args=()
    if [[ ${CI:-} == true ]]; then
        # A clean clone leaves nothing to cache, and nothing should be written into it.
        args+=(-p no:cacheprovider)
    fi
    # The per-test timeout comes from [tool.pytest.ini_options] in pyproject.toml.
    local status=0
    .venv/bin/pytest "${args[@]}" "$@" </dev/null || status=$?
    if ((status == 5)); then
        STEP_NOTE="no tests were collected"
    fi
    return "$status"
}

run_self_check() {
    local out="$SCRATCH/self-check.out" status=0
    mkdir -p "$SCRATCH/data"
    QT_QPA_PLATFORM=offscreen HALL_DATA_DIR="$SCRATCH/data" \
        .venv/bin/python main.py --demo --self-check </dev/null >"$out" || status=$?
    cat "$out"
    if ((status != 0)); then
        return "$status"
    fi
    local last
    last="$(grep -v '^[[:space:]]*$' "$out" | tail -n 1 || true)"
    if [[ $last != *.pdf || ! -f $last ]]; then
        STEP_NOTE="the last line must be the path of the receipt PDF it made; got: ${last:-(nothing)}"
        return 1
    fi
    echo "self-check receipt: $last"
}

step "setup" bash scripts/setup.sh --with-chromium
step "start real peers" start_real_peers
step "ruff" .venv/bin/ruff check .
step "mypy" .venv/bin/mypy
step "pytest" run_pytest "$@"
step "demo self-check" run_self_check

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
# start.
# pcscd with vsmartcard's virtual reader driver (vpcd), for the PC/SC tests. A pcscd that is
# already running on the standard socket is used as it is and left alone; otherwise one is
# started on a private socket (socket activation is pcscd's only way to take a socket other than
# /run/pcscd/pcscd.comm) with a private reader.conf.d naming only vpcd, and PCSCLITE_CSOCK_NAME
# tells the tests' PC/SC client library where it is. Needs root (pcscd writes its pid file).
HALL_PCSCD_PID=""
HALL_PCSCD_DIR=""
VPCD_LISTENING=':8C7B 00000000:0000 0A'  # /proc/net/tcp: port 35963 in state LISTEN

start_pcscd() {
    if [[ -n $HALL_PCSCD_PID ]] && kill -0 "$HALL_PCSCD_PID" 2>/dev/null; then
        return 0  # started earlier by this script
    fi
    if [[ -n ${PCSCLITE_CSOCK_NAME:-} ]]; then
        echo "pcscd: using the one at PCSCLITE_CSOCK_NAME=$PCSCLITE_CSOCK_NAME"
        return 0
    fi
    if pgrep -x pcscd >/dev/null 2>&1 && [[ -S /run/pcscd/pcscd.comm ]]; then
        echo "pcscd: already running on /run/pcscd/pcscd.comm; using it, leaving it alone"
        return 0
    fi
    local driver=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
    if [[ ! -e $driver ]] || ! command -v pcscd >/dev/null 2>&1; then
        echo "pcscd: needs the Debian packages pcscd and vsmartcard-vpcd" >&2
        return 1
    fi
    if grep -q "$VPCD_LISTENING" /proc/net/tcp 2>/dev/null; then
        echo "pcscd: vpcd's port 35963 is taken by a pcscd on a socket we do not know;" \
            "export PCSCLITE_CSOCK_NAME=<its socket> or stop it" >&2
        return 1
    fi
    HALL_PCSCD_DIR="$(mktemp -d -t hall-pcscd-XXXXXX)"
    mkdir "$HALL_PCSCD_DIR/reader.conf.d"
    # Channel 0x8C7B: vpcd listens on 35963 ("Virtual PCD 00 00") and 35964 ("... 00 01").
    printf '%s\n' 'FRIENDLYNAME "Virtual PCD"' 'DEVICENAME   /dev/null:0x8C7B' \
        "LIBPATH      $driver" 'CHANNELID    0x8C7B' >"$HALL_PCSCD_DIR/reader.conf.d/vpcd"
    local sock="$HALL_PCSCD_DIR/pcscd.comm"
    python3 -c '
import os, socket, sys
path, conf = sys.argv[1], sys.argv[2]
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(path)
os.chmod(path, 0o666)
listener.listen(64)
os.dup2(listener.fileno(), 3)
os.set_inheritable(3, True)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
os.execvp("pcscd", ["pcscd", "--foreground", "--config", conf])
' "$sock" "$HALL_PCSCD_DIR/reader.conf.d" </dev/null >"$HALL_PCSCD_DIR/pcscd.log" 2>&1 &
    HALL_PCSCD_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        if grep -q "$VPCD_LISTENING" /proc/net/tcp 2>/dev/null; then
            export PCSCLITE_CSOCK_NAME="$sock"
            echo "pcscd: started (pid $HALL_PCSCD_PID) on $sock with the virtual readers"
            return 0
        fi
        if ! kill -0 "$HALL_PCSCD_PID" 2>/dev/null; then
            break
        fi
        sleep 0.05  # a daemon starting up: polled for at most 5 s
    done
    echo "pcscd: did not come up with the vpcd driver; its log:" >&2
    cat "$HALL_PCSCD_DIR/pcscd.log" >&2
    stop_pcscd
    return 1
}

stop_pcscd() {
    if [[ -z $HALL_PCSCD_PID ]]; then
        return 0  # not ours: leave it alone
    fi
    kill -TERM "$HALL_PCSCD_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$HALL_PCSCD_PID" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$HALL_PCSCD_PID" 2>/dev/null || true
    wait "$HALL_PCSCD_PID" 2>/dev/null || true
    if [[ ${PCSCLITE_CSOCK_NAME:-} == "$HALL_PCSCD_DIR/pcscd.comm" ]]; then
        unset PCSCLITE_CSOCK_NAME
    fi
    rm -rf "$HALL_PCSCD_DIR"
    HALL_PCSCD_PID=""
    HALL_PCSCD_DIR=""
}

# cupsd with one receipt queue, for the CUPS printing tests: always a private one, under a temp
# dir with its own configuration, spool and logs, reachable only through the unix socket
# $HALL_CUPS_DIR/cups.sock (no network port). Its queue "hall-receipts" has the tests' backend
# (tests/fixtures/cups/hallfile), which writes each job to $HALL_CUPS_DIR/jobs or fails it on
# request. CUPS_SERVER tells the tests' CUPS client where it is. Needs root (cupsd runs backends
# as another user and keeps its spool private).
HALL_CUPSD_PID=""
HALL_CUPSD_DIR=""

start_cupsd() {
    if [[ -n $HALL_CUPSD_PID ]] && kill -0 "$HALL_CUPSD_PID" 2>/dev/null; then
        return 0  # started earlier by this script
    fi
    if ! command -v cupsd >/dev/null 2>&1 || ! command -v lpstat >/dev/null 2>&1; then
        echo "cupsd: needs the Debian packages cups-daemon and cups-client" >&2
        return 1
    fi
    HALL_CUPSD_DIR="$(mktemp -d -t hall-cupsd-XXXXXX)"
    local sock="$HALL_CUPSD_DIR/cups.sock"
    "$ROOT/tests/fixtures/cups/private-cupsd" "$HALL_CUPSD_DIR" \
        </dev/null >"$HALL_CUPSD_DIR/cupsd.out" 2>&1 &
    HALL_CUPSD_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        if [[ -S $sock ]] && CUPS_SERVER="$sock" timeout 5 lpstat -a hall-receipts >/dev/null 2>&1
        then
            export CUPS_SERVER="$sock" HALL_CUPS_DIR="$HALL_CUPSD_DIR"
            echo "cupsd: started (pid $HALL_CUPSD_PID) on $sock with the queue hall-receipts"
            return 0
        fi
        if ! kill -0 "$HALL_CUPSD_PID" 2>/dev/null; then
            break
        fi
        sleep 0.05  # a daemon starting up: polled for at most 5 s
    done
    echo "cupsd: did not come up with the queue hall-receipts; its output and log:" >&2
    cat "$HALL_CUPSD_DIR/cupsd.out" "$HALL_CUPSD_DIR/log/error_log" >&2 2>/dev/null || true
    stop_cupsd
    return 1
}

stop_cupsd() {
    if [[ -z $HALL_CUPSD_PID ]]; then
        return 0  # not started here
    fi
    kill -TERM "$HALL_CUPSD_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$HALL_CUPSD_PID" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$HALL_CUPSD_PID" 2>/dev/null || true
    wait "$HALL_CUPSD_PID" 2>/dev/null || true
    if [[ ${HALL_CUPS_DIR:-} == "$HALL_CUPSD_DIR" ]]; then
        unset CUPS_SERVER HALL_CUPS_DIR
    fi
    rm -rf "$HALL_CUPSD_DIR"
    HALL_CUPSD_PID=""
    HALL_CUPSD_DIR=""
}

start_real_peers() {
    start_pcscd
    start_cupsd
}

stop_real_peers() {
    stop_cupsd
    stop_pcscd
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
    # $1: --self-check (the platform must have the application) or --offline-check (it waits)
    local flag="$1" expect="online:"
    [[ $flag == --offline-check ]] && expect="offline:"
    local out="$SCRATCH/self-check${flag}.out" status=0
    rm -rf "$SCRATCH/data${flag}"
    mkdir -p "$SCRATCH/data${flag}"
    QT_QPA_PLATFORM=offscreen HALL_DATA_DIR="$SCRATCH/data${flag}" \
        .venv/bin/python main.py --demo "$flag" </dev/null >"$out" || status=$?
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
    if ! grep -q "^$expect" "$out"; then
        STEP_NOTE="expected a line starting with '$expect'"
        return 1
    fi
    echo "self-check receipt: $last"
}

step "setup" bash scripts/setup.sh --with-chromium
step "start real peers" start_real_peers
step "ruff" .venv/bin/ruff check .
step "mypy" .venv/bin/mypy
step "pytest" run_pytest "$@"
step "demo self-check (online)" run_self_check --self-check
step "demo self-check (offline)" run_self_check --offline-check

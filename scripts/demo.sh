#!/usr/bin/env bash
# Runs the demo: the kiosk against the embedded reference platform, with a simulated card reader
# and a PDF printer. Installs what it needs first (scripts/setup.sh).
#
#   bash scripts/demo.sh [main.py arguments ...]
#   bash scripts/demo.sh --self-check     no screen needed: runs one visit offscreen, checks that
#                                         the platform has it (its tracking page answers), and
#                                         prints the path of the receipt PDF it made
#   bash scripts/demo.sh --offline-check  the same with the platform away: the application waits
#                                         in the outbox
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

self_check=0
for arg in "$@"; do
    [[ $arg == --self-check || $arg == --offline-check ]] && self_check=1
done

if ((self_check)); then
    export QT_QPA_PLATFORM=offscreen
elif [[ -z ${DISPLAY:-} && -z ${WAYLAND_DISPLAY:-} && -z ${QT_QPA_PLATFORM:-} ]]; then
    cat >&2 <<'MSG'
The demo needs a screen, and this session has none (neither DISPLAY nor WAYLAND_DISPLAY is set).
Run it from a desktop session, or over SSH with X forwarding (ssh -X).
Without a screen, run the demo's self-check instead (offscreen; it prints the receipt PDF it made):

    bash scripts/demo.sh --self-check
MSG
    exit 2
fi

bash scripts/setup.sh
exec .venv/bin/python main.py --demo "$@"

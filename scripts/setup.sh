#!/usr/bin/env bash
# Installs what the demo and the tests need on Debian 12: system packages through apt and the
# Python environment in .venv at the repository root. Safe to run again: when everything is in
# place it only checks and returns within a second or two.
#
#   bash scripts/setup.sh                  packages for the demo
#   bash scripts/setup.sh --with-chromium  also chromium, the browser the benchmarks compare against
#
# Sourcing it defines hall_setup (same options); that runs in a subshell, so the caller's shell
# options and working directory are left alone.

hall_setup() (
    set -euo pipefail

    local with_chromium=0
    local arg
    for arg in "$@"; do
        case "$arg" in
            --with-chromium) with_chromium=1 ;;
            *) echo "setup: unknown option: $arg" >&2; return 2 ;;
        esac
    done

    local root
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    cd "$root"

    say() { echo "setup: $*"; }

    # ---- system packages -------------------------------------------------------------------
    local packages=(
        # Python with venv and headers (a fresh Debian's python3 has no venv module)
        python3 python3-venv python3-dev gcc
        # smart-card stack: PC/SC daemon, the virtual reader driver, headers for pyscard
        pcscd vsmartcard-vpcd libpcsclite-dev swig
        # printing: CUPS with a PDF printer
        cups cups-client cups-bsd printer-driver-cups-pdf
        # headers pycups builds against (receipts followed through CUPS's IPP job state)
        libcups2-dev
        # a virtual X server for screenshots and display tests
        xvfb xauth
        # what a screen reader sees: a D-Bus session with the AT-SPI bus, and its Python client
        dbus at-spi2-core python3-pyatspi
        # PDF to text/image, used to check receipts
        poppler-utils
        # Chinese fonts that reportlab can embed
        fonts-wqy-zenhei fonts-wqy-microhei
        # QR/barcode decoding
        libzbar0
        # voice guidance: espeak-ng's Mandarin (latin as pinyin) and English voices through
        # speech-dispatcher, with its audio output plugins
        espeak-ng speech-dispatcher speech-dispatcher-espeak-ng speech-dispatcher-audio-plugins
        # handwriting: the zinnia recognizer and its Simplified Chinese model
        libzinnia0 tegaki-zinnia-simplified-chinese
        # libraries Qt loads for the offscreen and xcb platforms
        libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3
        libglib2.0-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-randr0
        libxcb-render-util0 libxcb-image0 libxcb-xinerama0 libxcb-xkb1
        # the document camera: Qt Multimedia's FFmpeg backend loads VA-API when it starts
        libva2 libva-drm2 libva-x11-2
        # mount and unshare: the disk-full tests run on a small tmpfs of their own
        mount util-linux
        # openssl: the passport tests write EC keys with explicit curve parameters, as some
        # issuers' certificates carry them
        openssl
    )
    if [[ $with_chromium == 1 ]]; then
        packages+=(chromium)
    fi

    local missing=() pkg status
    for pkg in "${packages[@]}"; do
        status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)"
        if [[ $status != "ii "* ]]; then
            missing+=("$pkg")
        fi
    done

    if ((${#missing[@]} > 0)); then
        local as_root=()
        if [[ $(id -u) != 0 ]]; then
            if command -v sudo >/dev/null 2>&1; then
                as_root=(sudo)
            else
                echo "setup: these Debian packages are missing: ${missing[*]}" >&2
                echo "setup: installing them needs root; run this as root or install sudo." >&2
                return 1
            fi
        fi
        say "installing ${#missing[@]} Debian package(s): ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
        "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends "${missing[@]}" </dev/null
    else
        say "Debian packages present (${#packages[@]})"
    fi

    # ---- Python environment ----------------------------------------------------------------
    local python
    python="$(pick_python)" || {
        echo "setup: no Python 3.11-3.13 found (install python3 from Debian 12)" >&2
        return 1
    }

    local venv="$root/.venv"
    if [[ -e $venv ]] && ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
        # Made on another machine, or the interpreter it was made from is gone.
        say "recreating .venv: its Python does not run here"
        rm -rf "$venv"
    fi
    if [[ ! -e $venv ]]; then
        say "creating .venv with $python ($("$python" --version 2>&1))"
        "$python" -m venv "$venv"
    fi

    # Every package comes from the demo and test lock (requirements/demo-test.txt: the terminal,
    # the reference platform and the test tools, each pinned with its hashes), then the project
    # itself on top without dependencies, built with the setuptools the lock pins. The lock is
    # made for Python 3.11 (Debian 12's); another Python installs from pyproject.toml unpinned
    # only when asked to (HALL_UNPINNED=1).
    local lock="requirements/demo-test.txt" locked=1
    if ! "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
        locked=0
    fi
    # The stamp records what was installed: the lock and the dependency file, the interpreter,
    # and the tree the editable install points at (a copy of the tree elsewhere must install
    # again).
    local stamp="$venv/.hall-setup-stamp" want have=""
    want="$( { sha256sum "$lock" pyproject.toml; "$venv/bin/python" --version; echo "$root"; } \
        2>&1 | sha256sum | cut -d' ' -f1)"
    [[ -f $stamp ]] && have="$(cat "$stamp")"
    if [[ $want != "$have" ]]; then
        local log="$venv/pip-install.log"
        local pip=("$venv/bin/python" -m pip install --disable-pip-version-check)
        local status=0
        if ((locked)); then
            say "installing Python packages into .venv ($lock with hashes, then the project)"
            {
                "${pip[@]}" --require-hashes -r "$lock" &&
                    "${pip[@]}" --no-deps --no-build-isolation -e .
            } </dev/null >"$log" 2>&1 || status=$?
        elif [[ ${HALL_UNPINNED:-} == 1 ]]; then
            # Asked for: without the lock's hashes, nothing checks what the index serves.
            say "installing Python packages into .venv UNPINNED (HALL_UNPINNED=1:" \
                "$lock is for Python 3.11, this is $("$venv/bin/python" --version 2>&1))"
            "${pip[@]}" -e '.[platform,test]' </dev/null >"$log" 2>&1 || status=$?
        else
            echo "setup: $lock is for Python 3.11, this is" \
                "$("$venv/bin/python" --version 2>&1); install Python 3.11 (Debian 12's" \
                "python3), or set HALL_UNPINNED=1 to install without the lock's hashes" >&2
            return 1
        fi
        if ((status != 0)); then
            tail -n 40 "$log" >&2
            echo "setup: pip install failed; full output in $log" >&2
            return 1
        fi
        echo "$want" >"$stamp"
    else
        say "Python packages up to date (.venv)"
    fi
)

# Prints the first Python 3.11-3.13 found: python3 on PATH, then Debian's.
pick_python() {
    local candidate
    for candidate in "$(command -v python3 || true)" /usr/bin/python3; do
        [[ -n $candidate && -x $candidate ]] || continue
        if "$candidate" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] < (3, 14)))' \
            >/dev/null 2>&1; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    hall_setup "$@"
fi

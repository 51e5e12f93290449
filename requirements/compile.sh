#!/usr/bin/env bash
# Regenerates the hashed locks in this folder from pyproject.toml, with pip-tools in a throwaway
# virtual environment (nothing is installed into .venv). Run it from anywhere with Python 3.11,
# the Python of Debian 12 that scripts/setup.sh uses; the locks are for CPython 3.11 on Linux.
#
#   bash requirements/compile.sh                      keep every pin that still fits pyproject.toml
#   bash requirements/compile.sh --upgrade            move every pin to the newest release allowed
#   bash requirements/compile.sh --upgrade-package pillow   move one package
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    echo "compile: the locks are made with Python 3.11; set PYTHON=/path/to/python3.11" >&2
    exit 1
fi

tools="$(mktemp -d -t hall-locks-XXXXXX)"
trap 'rm -rf "$tools"' EXIT
"$python" -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install -q --disable-pip-version-check "pip-tools==7.6.2"

# The header of each lock names this script as the command that made it.
export CUSTOM_COMPILE_COMMAND="bash requirements/compile.sh"
common=(
    --quiet --generate-hashes --allow-unsafe --strip-extras
    --all-build-deps  # setuptools too: the project installs with --no-build-isolation
    --no-emit-index-url --no-emit-find-links
)
# The terminal alone: what a terminal pointed at a real platform runs on.
"$tools/venv/bin/pip-compile" "${common[@]}" "$@" \
    --output-file requirements/terminal.txt pyproject.toml
# The demo and the tests: the terminal, the reference platform and the test tools.
"$tools/venv/bin/pip-compile" "${common[@]}" "$@" --extra platform --extra test \
    --output-file requirements/demo-test.txt pyproject.toml
echo "compile: wrote requirements/terminal.txt and requirements/demo-test.txt"

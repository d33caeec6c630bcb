#!/usr/bin/env bash
# README command 1, the main job: install what is missing, build, then load
# the bundled sample corpus with libpkl and with CPython (globals stubbed)
# and print the comparison summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/build.sh build
py=$(grep '^BRINE_REF_PYTHON:' build/CMakeCache.txt | cut -d= -f2-)
[ -n "$py" ] || py=$(command -v python3)
echo "brine: libpkl vs $("$py" -c 'import sys; print("CPython", sys.version.split()[0])') ($py)"
PYTHONPATH=oracle "$py" tests/conformance/compare.py --brine build/brine --python "$py" corpus/sample

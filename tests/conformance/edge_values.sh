#!/bin/sh
# Generates the edge-value pickles with PYTHON, then compares `brine load`
# with the oracle running on the same PYTHON.
# usage: edge_values.sh PYTHON BRINE SRC_DIR WORK_DIR
set -eu
py=$1 brine=$2 src=$3 work=$4
rm -rf "$work" && mkdir -p "$work"
"$py" "$src/generators/edge_values.py" "$work"
exec "$py" "$src/tests/conformance/compare.py" --brine "$brine" --python "$py" "$work"

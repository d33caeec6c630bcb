#!/bin/sh
# The edge values as pickled by EVERY CPython found (each writes its own byte
# forms), loaded by libpkl and by the reference oracle REF_PYTHON.
# usage: edge_values_all.sh REF_PYTHON BRINE SRC_DIR WORK_DIR
set -eu
ref=$1 brine=$2 src=$3 work=$4
pythons=$(sh "$src/tests/conformance/find_pythons.sh")
[ -n "$pythons" ] || { echo "no interpreter found"; exit 1; }
rm -rf "$work" && mkdir -p "$work"
for py in $pythons; do
  v=$("$py" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
  mkdir -p "$work/$v"
  "$py" "$src/generators/edge_values.py" "$work/$v" | sed "s|^|$v: |"
done
# one flat folder, file names prefixed by the writer's version
mkdir -p "$work/all"
for d in "$work"/*/; do
  v=$(basename "$d"); [ "$v" = all ] && continue
  for f in "$d"*.pkl; do cp "$f" "$work/all/$v-$(basename "$f")"; done
done
exec "$ref" "$src/tests/conformance/compare.py" --brine "$brine" --python "$ref" "$work/all"

#!/bin/sh
# Runs `brine load` and `brine dis` under valgrind on every pickle in DIR
# (valid and invalid ones alike): any leak or memory error fails the test.
# usage: valgrind_cli.sh VALGRIND BRINE DIR
set -eu
vg=$1 brine=$2 dir=$3
n=0
for f in "$dir"/*.pkl; do
  for cmd in load dis; do
    rc=0
    "$vg" -q --leak-check=full --errors-for-leak-kinds=all --error-exitcode=99 \
      "$brine" "$cmd" "$f" >/dev/null 2>"${TMPDIR:-/tmp}/brine-vg.$$" || rc=$?
    if [ "$rc" -eq 99 ]; then
      echo "valgrind: errors in brine $cmd $f"; cat "${TMPDIR:-/tmp}/brine-vg.$$"; exit 1
    fi
    n=$((n + 1))
  done
done
rm -f "${TMPDIR:-/tmp}/brine-vg.$$"
[ "$n" -gt 0 ] || { echo "valgrind: no pickles in $dir"; exit 1; }
echo "valgrind: $n runs clean"

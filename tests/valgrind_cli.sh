#!/bin/sh
# Runs the CLI under valgrind: `brine load --batch` over every pickle in DIR
# in one process, and `brine dis` on every 25th one (valid and invalid
# alike). Any leak or memory error (valgrind exit 99), crash, or usage/IO
# error (anything but 0 = ok / 1 = rejected) fails the test.
# usage: valgrind_cli.sh VALGRIND BRINE DIR
set -eu
vg=$1 brine=$2 dir=$3
log=${TMPDIR:-/tmp}/brine-vg.$$
trap 'rm -f "$log"' EXIT
run() {
  rc=0
  "$vg" -q --leak-check=full --errors-for-leak-kinds=all --error-exitcode=99 "$@" >/dev/null 2>"$log" || rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
    echo "valgrind: exit $rc from $*"; grep -v '^brine: ' "$log" | head -50; exit 1
  fi
}
files=$(ls "$dir"/*.pkl 2>/dev/null || true)
n=$(echo "$files" | grep -c . || true)
[ "$n" -gt 0 ] || { echo "valgrind: no pickles in $dir"; exit 1; }
run "$brine" load --batch --quiet $files
i=0 d=0
for f in $files; do
  i=$((i + 1))
  [ $((i % 25)) -eq 0 ] || continue
  run "$brine" dis "$f"
  d=$((d + 1))
done
echo "valgrind: load --batch over $n pickles and dis over $d pickles: clean"

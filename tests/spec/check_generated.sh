#!/bin/sh
# Fails when a file generated from the opcode table is out of date: each is
# regenerated into a temporary directory and compared with the committed one.
# usage: check_generated.sh BRINE SRC_DIR
set -u
if [ $# -ne 2 ]; then
  echo "usage: $0 BRINE SRC_DIR" >&2
  exit 2
fi
brine=$1 src=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/brine-gen.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT HUP INT TERM

failed=0 checked=0
# one line per generated file: <flag> <path relative to SRC_DIR>
while read -r flag file; do
  checked=$((checked + 1))
  if ! "$brine" opcodes "$flag" >"$tmp/out"; then
    echo "FAIL $file: \`brine opcodes $flag\` exited non-zero"
    failed=$((failed + 1))
  elif ! diff -u "$src/$file" "$tmp/out" >"$tmp/diff" 2>&1; then
    echo "FAIL $file is out of date with spec/opcodes.def; regenerate it with:"
    echo "       brine opcodes $flag > $file"
    head -n 40 "$tmp/diff"
    failed=$((failed + 1))
  else
    echo "ok   $file"
  fi
done <<LIST
--markdown docs/opcodes.md
--dict corpus/pickle.dict
LIST

echo "$((checked - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]

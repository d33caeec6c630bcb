#!/bin/sh
# Runs tests/oracle/test_security.py under every CPython 3.6+ on this machine
# (as listed by tests/conformance/find_pythons.sh), every PyPy 3 and every
# CPython 2.7 found (the 2.7 worker, brine_oracle.py27; both optional). At
# least one CPython 3.6+ is required. The last line is "N passed, M failed", counting interpreters.
#
#   sh tests/oracle/run_all_pythons.sh [extra unittest args, e.g. -v]
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
cd "$REPO" || exit 2

pass=0
fail=0
found=0

# Absolute paths of the executables among "$@", deduplicated by real path,
# pyenv's shims (shell scripts that re-dispatch) skipped.
real_interpreters() {
  for p in "$@"; do
    [ -x "$p" ] || continue
    head -c 2 "$p" | grep -q '#!' && continue
    echo "$(readlink -f "$p") $p"
  done | sort -u -k1,1 | cut -d' ' -f2
}

# run_suite PY LABEL ARGV...: the suite under PY (ARGV: how PY runs it),
# one PASS/FAIL line, the log when it fails.
run_suite() {
  py=$1 label=$2
  shift 2
  log=$(mktemp)
  if PYTHONPATH="$REPO/oracle" PYTHONDONTWRITEBYTECODE=1 "$py" "$@" >"$log" 2>&1; then
    pass=$((pass + 1))
    echo "PASS $py ($label): $(grep -E '^Ran ' "$log") $(tail -n 1 "$log")"
  else
    fail=$((fail + 1))
    echo "FAIL $py ($label):"
    sed 's/^/    /' "$log"
  fi
  rm -f "$log"
}

version() { "$1" -c 'import sys; print(sys.version.split()[0])'; }

# one shared discovery: absolute paths, deduplicated, 3.6+, shims skipped
for py in $(sh "$REPO/tests/conformance/find_pythons.sh"); do
  found=$((found + 1))
  run_suite "$py" "$(version "$py")" -m unittest "$@" tests/oracle/test_security.py
done
# PyPy 3 (optional): Python unpickler only, no CPython audit events; the
# suite skips what needs either and says so
for py in $(real_interpreters $(command -v pypy3 2>/dev/null) /usr/bin/pypy3* \
              /usr/local/bin/pypy3* "$HOME"/.pyenv/versions/pypy3*/bin/pypy3); do
  run_suite "$py" "PyPy, Python $(version "$py")" -m unittest "$@" tests/oracle/test_security.py
done
# Python 2.7 (optional; its unittest takes no file paths: run the file itself)
for py in $(real_interpreters /usr/bin/python2.7 /usr/local/bin/python2.7 \
              "$HOME"/.pyenv/versions/2.7*/bin/python2.7); do
  run_suite "$py" "$(version "$py")" tests/oracle/test_security.py "$@"
done

if [ "$found" -eq 0 ]; then
  echo "no CPython 3.6+ found (looked in ~/.pyenv/versions/3.*/bin and /usr/bin/python3)"
  echo "0 passed, 1 failed"
  exit 1
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

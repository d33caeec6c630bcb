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
# one shared discovery: absolute paths, deduplicated, 3.6+, shims skipped
for py in $(sh "$REPO/tests/conformance/find_pythons.sh"); do
  found=$((found + 1))
  ver=$("$py" -c 'import sys; print(sys.version.split()[0])')
  log=$(mktemp)
  if PYTHONPATH="$REPO/oracle" PYTHONDONTWRITEBYTECODE=1 \
     "$py" -m unittest "$@" tests/oracle/test_security.py >"$log" 2>&1; then
    pass=$((pass + 1))
    echo "PASS $py ($ver): $(grep -E '^Ran ' "$log") $(tail -n 1 "$log")"
  else
    fail=$((fail + 1))
    echo "FAIL $py ($ver):"
    sed 's/^/    /' "$log"
  fi
  rm -f "$log"
done
# ---- PyPy 3 (optional): Python unpickler only, no CPython audit events;
# the suite skips what needs either and says so
for py in $( {
  for p in $(command -v pypy3 2>/dev/null) /usr/bin/pypy3* /usr/local/bin/pypy3* \
           "$HOME"/.pyenv/versions/pypy3*/bin/pypy3; do
    [ -x "$p" ] || continue
    head -c 2 "$p" | grep -q '#!' && continue
    echo "$(readlink -f "$p") $p"
  done
} | sort -u -k1,1 | cut -d' ' -f2); do
  ver=$("$py" -c 'import sys; print(sys.version.split()[0])')
  log=$(mktemp)
  if PYTHONPATH="$REPO/oracle" PYTHONDONTWRITEBYTECODE=1 \
     "$py" -m unittest "$@" tests/oracle/test_security.py >"$log" 2>&1; then
    pass=$((pass + 1))
    echo "PASS $py (PyPy, Python $ver): $(grep -E '^Ran ' "$log") $(tail -n 1 "$log")"
  else
    fail=$((fail + 1))
    echo "FAIL $py (PyPy, Python $ver):"
    sed 's/^/    /' "$log"
  fi
  rm -f "$log"
done
# ---- Python 2.7 (its unittest takes no file paths: run the file itself)
for py in $( {
  for p in /usr/bin/python2.7 /usr/local/bin/python2.7 "$HOME"/.pyenv/versions/2.7*/bin/python2.7; do
    [ -x "$p" ] || continue
    head -c 2 "$p" | grep -q '#!' && continue
    echo "$(readlink -f "$p") $p"
  done
} | sort -u -k1,1 | cut -d' ' -f2); do
  ver=$("$py" -c 'import sys; print(sys.version.split()[0])')
  log=$(mktemp)
  if PYTHONPATH="$REPO/oracle" PYTHONDONTWRITEBYTECODE=1 \
     "$py" tests/oracle/test_security.py "$@" >"$log" 2>&1; then
    pass=$((pass + 1))
    echo "PASS $py ($ver): $(grep -E '^Ran ' "$log") $(tail -n 1 "$log")"
  else
    fail=$((fail + 1))
    echo "FAIL $py ($ver):"
    sed 's/^/    /' "$log"
  fi
  rm -f "$log"
done
# ---- end Python 2.7

if [ "$found" -eq 0 ]; then
  echo "no CPython 3.6+ found (looked in ~/.pyenv/versions/3.*/bin and /usr/bin/python3)"
  echo "0 passed, 1 failed"
  exit 1
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

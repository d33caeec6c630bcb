#!/bin/sh
# Generated raw opcode streams (brine gen) through libpkl and the CPython
# oracle, compared byte for byte; and every generated-valid stream must be
# accepted by CPython (a rejection is a generator bug).
#
#   gen_vs_oracle.sh PYTHON BRINE WORKDIR [NVALID] [NINVALID]
#
# PYTHONPATH must reach oracle/ (ctest sets it). Invalid streams whose
# oracle class differs from the generator's intent are listed (the oracle
# is the truth; the intent is only informative) but do not fail the test.
set -eu
PY=$1 BRINE=$2 WORK=$3 NVALID=${4:-300} NINVALID=${5:-345}
HERE=$(cd "$(dirname "$0")" && pwd)
rm -rf "$WORK"
mkdir -p "$WORK/streams"
"$BRINE" gen --seed 7000 --count "$NVALID" --mode valid --out "$WORK/streams"
"$BRINE" gen --seed 9000 --count "$NINVALID" --mode invalid --out "$WORK/streams"
"$BRINE" gen --list-faults > "$WORK/faults.txt"

# 1. every generated-valid stream loads in CPython
"$PY" -m brine_oracle load --batch "$WORK/streams" > "$WORK/oracle.txt" 2> "$WORK/oracle.err" || true
awk -v faults="$WORK/faults.txt" '
    BEGIN { while ((getline l < faults) > 0) { split(l, f, " "); want[f[1]] = f[2] } }
    /^== / { name = substr($0, 4); first = 1; next }
    /^brine-canonical/ { next }
    first {
        first = 0; got = ($1 == "error") ? $2 : "ok"; n++
        if (name ~ /^valid-/) {
            if (got != "ok") { print "GENERATOR BUG: CPython rejects generated-valid " name ": " got; bad++ }
        } else {
            fault = name; sub(/^invalid-p[0-9]-/, "", fault); sub(/-[0-9]+\.pkl$/, "", fault)
            if (want[fault] != got) { print "note: " name ": oracle says " got ", generator intended " want[fault]; notes++ }
        }
    }
    END {
        printf "oracle: %d streams, %d generated-valid rejected, %d intent notes\n", n, bad, notes
        exit (bad > 0 || n == 0)
    }' "$WORK/oracle.txt"

# 2. libpkl vs the oracle, byte for byte
"$PY" "$HERE/compare.py" --brine "$BRINE" --python "$PY" "$WORK/streams"

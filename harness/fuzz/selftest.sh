#!/bin/sh
# Tests the replay driver with a target that misbehaves on purpose
# (fuzz_selftest.c): crashes, hangs and memory overruns are each named,
# counted and survived with --fork; the first crash without --fork is named;
# empty folders count as 0 inputs and never pass alone; notes are skipped.
# usage: selftest.sh path/to/fuzz_selftest_replay WORKDIR
set -u
bin=$1
work=$2
rm -rf "$work" && mkdir -p "$work/in/sub" "$work/empty" "$work/good"
printf 'fine' > "$work/in/ok1"
printf 'also fine' > "$work/in/ok2"
printf 'fine too' > "$work/in/sub/ok3"
printf 'abort now' > "$work/in/abort1"
printf 'segv now' > "$work/in/segv1"
printf 'hang now' > "$work/in/hang1"
printf 'oom now' > "$work/in/oom1"
printf 'abort: a note, skipped' > "$work/in/README.md"
printf 'abort: hidden, skipped' > "$work/in/.hidden"
printf 'fine' > "$work/good/a"

fails=0
check() { # check NAME EXPECTED_STATUS STATUS OUTPUT_FILE PATTERN...
  name=$1 want=$2 got=$3 out=$4
  shift 4
  if [ "$got" != "$want" ]; then
    echo "FAIL $name: exit status $got, expected $want"; cat "$out"; fails=$((fails + 1)); return
  fi
  for pat in "$@"; do
    if ! grep -q -- "$pat" "$out"; then
      echo "FAIL $name: no line matching '$pat' in:"; cat "$out"; fails=$((fails + 1)); return
    fi
  done
  echo "ok   $name"
}

# segv: a signal, or exit status 1 after ASan's report; oom: the address-space
# limit makes malloc fail (plain build) or the watched RSS passes the limit (ASan)
"$bin" --fork --timeout 2 --memory-limit 256 "$work/in" > "$work/o1" 2>&1
check fork-survives-everything 1 $? "$work/o1" \
  "FAIL $work/in/abort1: killed by signal 6" "FAIL $work/in/segv1: " \
  "FAIL $work/in/hang1: timeout" "FAIL $work/in/oom1: " "^$work/in: 7 inputs" "^7 inputs, 4 failed"

"$bin" --fork --timeout 120 --memory-limit 100 "$work/in/oom1" > "$work/o1m" 2>&1
check fork-memory-limit 1 $? "$work/o1m" "memory limit (\|out of memory, as asked" "^1 inputs, 1 failed"

"$bin" "$work/in/ok1" "$work/in/abort1" "$work/in/ok2" > "$work/o2" 2>&1
check first-crash-named 1 $? "$work/o2" "FAIL $work/in/abort1: aborted" \
  "invariant violated: selftest: asked to abort" "^2 inputs, 1 failed (stopped at the first crash"

"$bin" --timeout 1 "$work/in/hang1" > "$work/o3" 2>&1
check timeout-without-fork 1 $? "$work/o3" "FAIL $work/in/hang1: timeout"

"$bin" "$work/empty" > "$work/o4" 2>&1
check empty-is-not-a-pass 1 $? "$work/o4" "^$work/empty: 0 inputs" "^0 inputs, 0 failed" "nothing was run"

"$bin" "$work/empty" "$work/good" > "$work/o5" 2>&1
check empty-next-to-inputs 0 $? "$work/o5" "^$work/empty: 0 inputs" "^$work/good: 1 inputs" "^1 inputs, 0 failed"

"$bin" --smoke 40 --seed 3 > "$work/o6" 2>&1
check smoke 0 $? "$work/o6" "^smoke (seed 3): 40 inputs" "^40 inputs, 0 failed"

"$bin" "$work/no-such-path" > "$work/o7" 2>&1
check missing-path 2 $? "$work/o7" "cannot read"

"$bin" --bogus > "$work/o8" 2>&1
check bad-option 2 $? "$work/o8" "bad option"

[ "$fails" -eq 0 ] && echo "all replay-driver checks passed" && exit 0
echo "$fails replay-driver checks failed"
exit 1

#!/usr/bin/env bash
# What each fuzzing aid adds: coverage reached by a libFuzzer target after a
# fixed number of executions, for several arms of one build, same seeds.
#
#   harness/fuzz/measure.sh [-t TARGET] [-r RUNS] [-s "SEEDS"] [-b LF_BUILD] [-c COV_BUILD] [-o OUT]
#
#   -t  target name (default pkl_load: fuzz_pkl_load, fuzz_pkl_load_structured)
#   -r  executions per arm and seed (default 200000)
#   -s  libFuzzer seeds, space separated (default "1 2 3")
#   -b  libFuzzer build (default build-fuzz-libfuzzer; scripts/build_fuzzers.sh)
#   -c  optional: a replay build with clang source coverage
#       (CC=clang cmake -DCMAKE_C_FLAGS="-fprofile-instr-generate -fcoverage-mapping");
#       each final corpus is replayed there and llvm-cov reports line and
#       branch coverage of pkl/ (libpkl only, not the harness)
#   -o  work directory (default /tmp/brine-measure); corpora and logs stay there
#
# Arms: plain (libFuzzer alone, empty corpus), +dict (corpus/pickle.dict),
# +mutator (the _structured binary: streamgen mixed with libFuzzer's own
# mutations), +both, +both+seeds (corpus/cases as seed corpus), plus two
# controls: plain+seeds, and structured-only (no libFuzzer mutations).
# Runs one fuzzer at a time, under nice. Prints a Markdown table:
# cov/ft are libFuzzer's final counters (edges / features, harness included),
# median over the seeds with min-max; CPU s is user+sys.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
target=pkl_load runs=200000 seeds="1 2 3" lf=$root/build-fuzz-libfuzzer cov= out=/tmp/brine-measure
while getopts t:r:s:b:c:o: opt; do
  case $opt in
    t) target=$OPTARG ;; r) runs=$OPTARG ;; s) seeds=$OPTARG ;; b) lf=$OPTARG ;;
    c) cov=$OPTARG ;; o) out=$OPTARG ;; *) exit 2 ;;
  esac
done
plain=$lf/harness/fuzz/fuzz_$target
structured=$lf/harness/fuzz/fuzz_${target}_structured
for b in "$plain" "$structured"; do
  [ -x "$b" ] || { echo "missing $b: run scripts/build_fuzzers.sh libfuzzer" >&2; exit 2; }
done
dict=$root/corpus/pickle.dict
mkdir -p "$out"

# name|binary|mutator mode|extra libFuzzer args|seed dirs
arms=(
  "plain|$plain|default||"
  "+dict|$plain|default|-dict=$dict|"
  "+mutator|$structured|mixed||"
  "+both|$structured|mixed|-dict=$dict|"
  "+both+seeds|$structured|mixed|-dict=$dict|$root/corpus/cases"
  "plain+seeds (control)|$plain|default||$root/corpus/cases"
  "structured only (control)|$structured|structured|-dict=$dict|"
)

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '| arm | cov (edges) | ft (features) | corpus | exec/s (CPU) |%s\n' "${cov:+ pkl/ lines | pkl/ branches |}"
printf '|---|---|---|---|---|%s\n' "${cov:+---|---|}"
for arm in "${arms[@]}"; do
  IFS='|' read -r name bin mode extra seeddirs <<<"$arm"
  slug=$(printf '%s' "$name" | tr -c 'a-z0-9' _)
  covs=() fts=() corps=() rates=() lines=() branches=()
  for s in $seeds; do
    dir=$out/$slug-$s
    rm -rf "$dir" && mkdir -p "$dir"
    log=$out/$slug-$s.log
    # shellcheck disable=SC2086
    /usr/bin/time -f '%U %S' -o "$out/$slug-$s.time" env BRINE_FUZZ_MUTATOR=$mode \
      nice -n 10 "$bin" -runs="$runs" -seed="$s" -artifact_prefix="$dir-" \
      $extra "$dir" $seeddirs >"$log" 2>&1 || true
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)
    if [ -z "$done_line" ]; then
      echo "arm $name seed $s did not finish (crash?): $log" >&2
      continue
    fi
    covs+=("$(sed -E 's/.*cov: ([0-9]+).*/\1/' <<<"$done_line")")
    fts+=("$(sed -E 's/.*ft: ([0-9]+).*/\1/' <<<"$done_line")")
    corps+=("$(sed -E 's/.*corp: ([0-9]+).*/\1/' <<<"$done_line")")
    cpu=$(awk '{print $1 + $2}' "$out/$slug-$s.time")
    rates+=("$(awk -v r="$runs" -v c="$cpu" 'BEGIN {printf "%d", (c > 0 ? r / c : 0)}')")
    if [ -n "$cov" ]; then
      rm -f "$out"/prof-*.profraw
      # shellcheck disable=SC2086
      LLVM_PROFILE_FILE="$out/prof-%p.profraw" "$cov/harness/fuzz/fuzz_${target}_replay" \
        "$dir" $seeddirs >/dev/null 2>&1 || true
      llvm-profdata merge -o "$out/$slug-$s.profdata" "$out"/prof-*.profraw
      tot=$(llvm-cov report "$cov/harness/fuzz/fuzz_${target}_replay" \
        -instr-profile="$out/$slug-$s.profdata" "$root/pkl" | grep '^TOTAL')
      # TOTAL regions missed cover% functions missed cover% lines missed cover% branches missed cover%
      lines+=("$(awk '{print $10}' <<<"$tot" | tr -d %)")
      branches+=("$(awk '{print $13}' <<<"$tot" | tr -d %)")
    fi
  done
  [ ${#covs[@]} -gt 0 ] || continue
  fmt() { # median (min-max)
    local m lo hi
    m=$(printf '%s\n' "$@" | median)
    lo=$(printf '%s\n' "$@" | sort -n | head -1)
    hi=$(printf '%s\n' "$@" | sort -n | tail -1)
    echo "$m ($lo-$hi)"
  }
  row="| $name | $(fmt "${covs[@]}") | $(fmt "${fts[@]}") | $(fmt "${corps[@]}") | $(fmt "${rates[@]}") |"
  if [ -n "$cov" ]; then
    row="$row $(fmt "${lines[@]}")% | $(fmt "${branches[@]}")% |"
  fi
  echo "$row"
done
echo
echo "runs per arm and seed: $runs; seeds: $seeds; build: $lf"

#!/usr/bin/env bash
# Fuzz-target throughput, a benchmark (nothing asserted).
#
#   bench/fuzz_bench.sh [ROUNDS]
#
# 1. fuzz_pkl_vs_cpython against fuzz_cpython_load (the embedded CPython
#    alone, same stubbing) on the same inputs in one run: corpus/cases and
#    corpus/regress, ten times over, through both replay builds (plain
#    RelWithDebInfo, build/), alternating, ROUNDS rounds (default 5); then the
#    same inputs through both libFuzzer builds (ASan+UBSan on libpkl and the
#    harness, build-fuzz-libfuzzer/) with -runs=0 (every input once). The
#    figure of merit is the ratio of exec/s, differential over CPython-only
#    (issue 5's target: at least 50%).
# 2. fuzz_pkl_load's exec/s under libFuzzer: 200,000 executions from the
#    corpus with the structure-aware mutator and the dictionary, fixed seed.
#
# Pinned to one CPU with taskset when available (BENCH_CPU=n, or none).
set -uo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
replay=build/harness/fuzz
lf=build-fuzz-libfuzzer/harness/fuzz
cpu=${BENCH_CPU:-$(($(nproc) - 1))}
pin=()
if [ "$cpu" != none ] && command -v taskset >/dev/null; then pin=(taskset -c "$cpu"); fi

for b in "$replay/fuzz_pkl_vs_cpython_replay" "$replay/fuzz_cpython_load_replay"; do
    [ -x "$b" ] || { echo "missing $b: bash scripts/build.sh build (with libpython3-dev)"; exit 2; }
done

# CPU seconds (user + sys) of one command, its output discarded; bash's own
# `time`, so no time(1) package is needed
cpu_seconds() {
    local TIMEFORMAT='%3U %3S'
    { time "$@" >/dev/null 2>&1; } 2>&1 | awk '{print $1 + $2}'
}

inputs=()
for _ in 1 2 3 4 5 6 7 8 9 10; do inputs+=(corpus/cases corpus/regress); done
n=$(find corpus/cases corpus/regress -type f -name '*.pkl' | wc -l)
total=$((n * 10))
echo "== replay builds: $total inputs per run ($n files x 10), $rounds rounds, CPU seconds (user+sys)"
declare -a diff_s cpy_s
for ((r = 0; r < rounds; r++)); do
    c=$(cpu_seconds "${pin[@]}" "$replay/fuzz_cpython_load_replay" "${inputs[@]}")
    d=$(cpu_seconds "${pin[@]}" "$replay/fuzz_pkl_vs_cpython_replay" "${inputs[@]}")
    cpy_s+=("$c")
    diff_s+=("$d")
    printf "  round %d: cpython_load %6.2f s   pkl_vs_cpython %6.2f s\n" $((r + 1)) "$c" "$d"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mc=$(median "${cpy_s[@]}")
md=$(median "${diff_s[@]}")
awk -v c="$mc" -v d="$md" -v n="$total" 'BEGIN {
    printf "  median: fuzz_cpython_load %.0f exec/s, fuzz_pkl_vs_cpython %.0f exec/s: differential at %.0f%% of CPython-only\n",
        n / c, n / d, 100 * c / d }'

if [ -x "$lf/fuzz_pkl_vs_cpython" ] && [ -x "$lf/fuzz_cpython_load" ]; then
    echo "== libFuzzer builds (ASan+UBSan): every input once (-runs=0), $rounds rounds"
    seeds=$(mktemp -d)
    find corpus/cases corpus/regress -type f -name '*.pkl' -exec cp {} "$seeds/" \; 2>/dev/null
    m=$(ls "$seeds" | wc -l)
    export ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1
    declare -a lc ld
    for ((r = 0; r < rounds; r++)); do
        c=$(cpu_seconds "${pin[@]}" "$lf/fuzz_cpython_load" -runs=0 "$seeds")
        d=$(cpu_seconds "${pin[@]}" "$lf/fuzz_pkl_vs_cpython" -runs=0 "$seeds")
        lc+=("$c")
        ld+=("$d")
    done
    mc=$(median "${lc[@]}")
    md=$(median "${ld[@]}")
    awk -v c="$mc" -v d="$md" -v n="$m" 'BEGIN {
        printf "  median over %d inputs: fuzz_cpython_load %.2f s, fuzz_pkl_vs_cpython %.2f s (process start and interpreter init included): %.0f%%\n",
            n, c, d, 100 * c / d }'
    rm -rf "$seeds"
else
    echo "== libFuzzer builds missing (bash scripts/build_fuzzers.sh libfuzzer): skipped"
fi

if [ -x "$lf/fuzz_pkl_load_structured" ]; then
    echo "== fuzz_pkl_load under libFuzzer: 200,000 executions, structure-aware mutator + dictionary, seed 1"
    work=$(mktemp -d)
    ASAN_OPTIONS=detect_leaks=1 "${pin[@]}" "$lf/fuzz_pkl_load_structured" -runs=200000 -seed=1 \
        -dict=corpus/pickle.dict -max_len=4096 -print_final_stats=1 "$work" corpus/cases corpus/regress \
        2>&1 | grep -E "stat::number_of_executed_units|stat::average_exec_per_sec|^#[0-9]+ +DONE"
    rm -rf "$work"
fi

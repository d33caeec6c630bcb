#!/usr/bin/env bash
# bench/run.sh [PYTHON] -- libpkl vs CPython decode throughput, in one run.
#
# Builds pkl_bench (Release) in build-bench/, generates the corpus into
# build-bench/corpus/ when missing or stale, then for each corpus file runs
# bench/cpython_bench.py and bench/pkl_bench on the same file, back to back,
# and prints ratio tables. A benchmark, not a test: nothing here asserts
# anything about speed; the exit status only reflects build/decode failures.
#
# PYTHON: the CPython to compare with (default: the newest
# ~/.pyenv/versions/3.13*/bin/python3, else /usr/bin/python3); always run
# by absolute path.
#
# Environment knobs:
#   BENCH_MIN_TIME  seconds per timed round (default 1.0)
#   BENCH_ROUNDS    timed rounds, best reported (default 3)
#   BENCH_CPU       CPU to pin both benchmarks to with taskset (default: the
#                   last CPU; "none" = do not pin)
#   BENCH_CANON     1 (default) also time libpkl load + pkl_canon; 0 = skip
#   BENCH_NO_GC     1 = disable CPython's cyclic GC while timing (default 0)
#   BENCH_FILES     space-separated files to use instead of the corpus
#   BENCH_OUT       where to keep the raw TSV (default build-bench/bench-results.tsv)
#   PKL_BENCH       use this pkl_bench binary instead of building one
#                   (e.g. to compare two libpkl builds)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD="$ROOT/build-bench"
CORPUS="$BUILD/corpus"
MIN_TIME=${BENCH_MIN_TIME:-1.0}
ROUNDS=${BENCH_ROUNDS:-3}
CANON=${BENCH_CANON:-1}
OUT=${BENCH_OUT:-$BUILD/bench-results.tsv}

# ---- the CPython to compare with, by absolute path
if [[ $# -ge 1 ]]; then
  PY=$1
  if [[ $PY != /* ]]; then
    PY=$(command -v -- "$PY") || { echo "run.sh: no such python: $1" >&2; exit 2; }
  fi
else
  shopt -s nullglob
  cands=("$HOME"/.pyenv/versions/3.13*/bin/python3)
  shopt -u nullglob
  PY=/usr/bin/python3
  if ((${#cands[@]})); then
    PY=$(printf '%s\n' "${cands[@]}" | sort -V | tail -n 1)
  fi
fi
[[ -x $PY ]] || { echo "run.sh: $PY is not executable" >&2; exit 2; }
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 8))' ||
  { echo "run.sh: $PY is older than 3.8 (protocol 5 needed)" >&2; exit 2; }
PYVER=$("$PY" -c 'import sys; print(sys.version.split()[0])')

# ---- build
if [[ -n ${PKL_BENCH:-} ]]; then
  BENCH=$PKL_BENCH
  BUILDNOTE="prebuilt $PKL_BENCH"
  mkdir -p "$BUILD"
else
  echo "== building pkl_bench (Release) in $BUILD" >&2
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBRINE_TESTS=OFF >/dev/null
  cmake --build "$BUILD" --target pkl_bench -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
  BENCH="$BUILD/pkl_bench"
  CC_ID=$(awk -F'=' '/^CMAKE_C_COMPILER:/ {print $2}' "$BUILD/CMakeCache.txt" 2>/dev/null || true)
  BUILDNOTE="Release build (CMake, $("${CC_ID:-cc}" --version 2>/dev/null | head -1 || echo "unknown compiler"))"
fi

# ---- corpus (regenerated when the generator or the Python version changes)
if [[ -n ${BENCH_FILES:-} ]]; then
  read -r -a FILES <<<"$BENCH_FILES"
else
  STAMP="$(sha256sum "$ROOT/bench/make_corpus.py" | cut -c1-16) python-$PYVER"
  if [[ ! -f $CORPUS/.stamp || $(cat "$CORPUS/.stamp") != "$STAMP" ]]; then
    echo "== generating corpus in $CORPUS with $PY" >&2
    rm -rf "$CORPUS"
    "$PY" "$ROOT/bench/make_corpus.py" "$CORPUS" >&2
    echo "$STAMP" >"$CORPUS/.stamp"
  fi
  FILES=()
  for p in 0 1 2 3 4 5; do FILES+=("$CORPUS/small-p$p.pkls"); done
  FILES+=("$CORPUS/big-listdict-p4.pickle" "$CORPUS/big-listdict-p5.pickle")
fi

# ---- pinning
PIN=()
PINNOTE="not pinned"
CPU=${BENCH_CPU:-$(($(nproc 2>/dev/null || echo 1) - 1))}
if [[ $CPU != none ]] && command -v taskset >/dev/null 2>&1; then
  if taskset -c "$CPU" true 2>/dev/null; then
    PIN=(taskset -c "$CPU")
    PINNOTE="both benchmarks pinned to CPU $CPU with taskset"
  fi
fi

PYARGS=(--tsv --min-time "$MIN_TIME" --rounds "$ROUNDS")
[[ ${BENCH_NO_GC:-0} == 1 ]] && PYARGS+=(--no-gc)
CARGS=(--tsv --min-time "$MIN_TIME" --rounds "$ROUNDS")

# ---- run: per file, CPython then libpkl, back to back
mkdir -p "$(dirname "$OUT")"
: >"$OUT"
for f in "${FILES[@]}"; do
  [[ -f $f ]] || { echo "run.sh: missing $f" >&2; exit 2; }
  echo "== $(basename "$f"): CPython" >&2
  "${PIN[@]}" "$PY" "$ROOT/bench/cpython_bench.py" "${PYARGS[@]}" "$f" | tee -a "$OUT" >&2
  echo "== $(basename "$f"): libpkl" >&2
  "${PIN[@]}" "$BENCH" "${CARGS[@]}" "$f" | tee -a "$OUT" >&2
  # The plain subset differs from the whole file only when some pickle has
  # globals (CPython's "mixed" row counts them in its last column).
  nstub=$(awk -F'\t' -v f="$(basename "$f")" '$1=="cpython" && $2=="mixed" && $3==f {print $12}' "$OUT")
  if [[ ${nstub:-1} != 0 ]]; then
    "${PIN[@]}" "$BENCH" "${CARGS[@]}" --subset plain "$f" | tee -a "$OUT" >&2
  fi
  if [[ $CANON == 1 ]]; then
    "${PIN[@]}" "$BENCH" "${CARGS[@]}" --canon "$f" | tee -a "$OUT" >&2
  fi
done

# ---- report
CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$ROOT" status --porcelain -- pkl include 2>/dev/null || true) ]]; then
  REV="$REV + uncommitted libpkl changes"
fi

echo
echo "libpkl decode benchmark  $(date -u +%Y-%m-%dT%H:%MZ)  brine $REV"
echo "machine: ${CPU_MODEL:-unknown CPU}, $(nproc) CPUs; $PINNOTE"
echo "libpkl: $BUILDNOTE"
echo "CPython: $PY ($PYVER), C unpickler; gc $([[ ${BENCH_NO_GC:-0} == 1 ]] && echo disabled || echo enabled)"
echo "policy: best of $ROUNDS rounds, each >= $MIN_TIME s of repeated passes over the file; MB = 10^6 bytes"
echo "raw results: $OUT"

awk -F'\t' '
function add(k, v) { val[k] = v }
{
  key = $1 "|" $2 "|" $3
  cnt[key] = $4; byt[key] = $5; pps[key] = $7; mbs[key] = $8; extra[key] = $12; cpu[key] = $13; cpps[key] = $14
  if (!($3 in seen)) { seen[$3] = 1; order[++n] = $3 }
}
function has(k) { return (k in pps) }
function ratio(a, b) { return (has(a) && has(b) && pps[b] > 0) ? sprintf("%6.2fx", pps[a] / pps[b]) : "    n/a" }
function cratio(a, b) { return (has(a) && has(b) && cpps[a] > 0 && cpps[b] > 0) ? sprintf("%6.2fx", cpps[a] / cpps[b]) : "    n/a" }
function fmt_pps(k) { return !has(k) ? sprintf("%12s", "n/a") : (pps[k] < 100 ? sprintf("%12.2f", pps[k]) : sprintf("%12.0f", pps[k])) }
# CPU share of the reported rounds, the lower side: < 90% = other processes ran
function busy(a, b,   x) { x = 1; if (a in cpu && cpu[a] != "" && cpu[a] < x) x = cpu[a]; if (b in cpu && cpu[b] != "" && cpu[b] < x) x = cpu[b]; if (x < 0.9) noisy = 1; return sprintf("%3.0f%%%s", 100 * x, x < 0.9 ? "!" : " ") }
function fmt_mbs(k) { return has(k) ? sprintf("%8.1f", mbs[k]) : sprintf("%8s", "n/a") }
END {
  print ""
  print "== Decode throughput, every pickle in the file"
  print "   CPython = pickle.loads on pickles with no global/persid/buffer opcode (checked with pickletools.genops),"
  print "   CPython C unpickler with stubbed globals (Unpickler subclass: find_class/persistent_load return stubs) on the rest."
  print "   libpkl  = pkl_load + pkl_doc_free, default options (globals become stub nodes)."
  print "   ratio = libpkl/CPython pickles/s by wall clock (the figure); cpu% = CPU share of the reported rounds (lower side);"
  print "   cpu-t = the same ratio by process CPU time (steadier when cpu% is low); stubbed = libpkl vs all-StubUnpickler CPython."
  printf "%-24s %7s %8s | %12s %8s | %12s %8s | %7s | %5s | %7s | %7s | %s\n", "file", "pickles", "MB",
         "CPy pick/s", "CPy MB/s", "libpkl pk/s", "pkl MB/s", "ratio", "cpu%", "cpu-t", "stubbed", "load+canon MB/s"
  bad = 0
  for (i = 1; i <= n; i++) {
    f = order[i]; c = "cpython|mixed|" f; l = "libpkl|load|" f; s = "cpython|stubbed|" f; k = "libpkl|load+canon|" f
    note = ""
    if (has(c) && has(l) && (cnt[c] != cnt[l] || byt[c] != byt[l])) { note = "  MISMATCH: different pickles/bytes"; bad = 1 }
    printf "%-24s %7d %8.2f | %s %s | %s %s | %s | %s | %s | %s | %s%s\n", f, cnt[l] ? cnt[l] : cnt[c], (byt[l] ? byt[l] : byt[c]) / 1e6,
           fmt_pps(c), fmt_mbs(c), fmt_pps(l), fmt_mbs(l), ratio(l, c), busy(c, l),
           cratio(l, c), ratio(l, s), fmt_mbs(k), note
    if (f ~ /^small-/ && has(c) && has(l)) { ns++; lg += log(pps[l] / pps[c]); r = pps[l] / pps[c]; if (ns == 1 || r < rmin) rmin = r; if (r >= 3) nmet++
      if (cpps[l] > 0 && cpps[c] > 0) { nc++; clg += log(cpps[l] / cpps[c]); cr = cpps[l] / cpps[c]; if (nc == 1 || cr < crmin) crmin = cr } }
  }
  print ""
  print "== Same pickles, no stubs involved: only the pickles with no global/persid/buffer opcode"
  print "   CPython = plain pickle.loads; libpkl = pkl_bench --subset plain (same pickles, same bytes)."
  printf "%-24s %7s %8s | %12s %8s | %12s %8s | %7s | %5s | %7s\n", "file", "pickles", "MB", "loads pk/s", "MB/s", "libpkl pk/s", "MB/s", "ratio", "cpu%", "cpu-t"
  for (i = 1; i <= n; i++) {
    f = order[i]; c = "cpython|plain|" f; l = "libpkl|load/plain|" f
    if (!has(l) && extra["cpython|mixed|" f] == 0) l = "libpkl|load|" f   # every pickle is plain
    note = ""
    if (has(c) && has(l) && (cnt[c] != cnt[l] || byt[c] != byt[l])) { note = "  MISMATCH: different subsets"; bad = 1 }
    printf "%-24s %7d %8.2f | %s %s | %s %s | %s | %s | %s%s\n", f, cnt[c], byt[c] / 1e6,
           fmt_pps(c), fmt_mbs(c), fmt_pps(l), fmt_mbs(l), ratio(l, c), busy(c, l), cratio(l, c), note
    if (f ~ /^small-/ && has(c) && has(l)) { ps++; plg += log(pps[l] / pps[c]) }
  }
  print ""
  if (ns > 0) {
    printf "small pickles, all (table 1): geometric-mean ratio %.2fx, lowest %.2fx; >= 3x on %d of %d files\n", exp(lg / ns), rmin, nmet, ns
    if (nc > 0) printf "  same by process CPU time (cpu-t): geometric mean %.2fx, lowest %.2fx\n", exp(clg / nc), crmin
    if (ps > 0) printf "small pickles, plain subset (table 2): geometric-mean ratio %.2fx\n", exp(plg / ps)
    printf "target (issue): >= 3x CPython C unpickler on small pickles -> %s\n", (rmin >= 3) ? "met on every protocol" : "not met on every protocol"
  }
  if (noisy) print "NOTE: rows marked ! ran with < 90% of a CPU (cpu% = process CPU time / wall time of the reported round, the lower of the two sides): other processes competed; rerun on a quiet machine before trusting them"
  if (bad) print "WARNING: some rows compare different sets of pickles; see MISMATCH above"
}' "$OUT"

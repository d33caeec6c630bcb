#!/usr/bin/env bash
# C source coverage of libpkl (pkl/) and the harness (harness/, cli/), from
# what brine's own checks execute, as an HTML report made by gcovr.
#
#   reports/source_coverage.sh [OUTDIR]          (default reports/out/source)
#
# 1. configures and builds a coverage build (-DBRINE_COVERAGE=ON: gcc
#    --coverage -O0) in $BRINE_COV_BUILD (default build-cov);
# 2. forgets earlier counters, then runs: `brine run --impl pkl --coverage`
#    over the corpus, `brine load --batch` over corpus/sample, the unit tests
#    (ctest -L unit), and every fuzz replay binary the build has over
#    corpus/cases and corpus/regress;
# 3. writes OUTDIR/index.html (+ one page per source file), OUTDIR/coverage.json
#    (gcovr's tracefile), OUTDIR/steps.log (what the steps printed) and
#    OUTDIR/summary.json (line and branch percentages
#    per area, which reports/build.py --source-coverage OUTDIR shows), and
#    prints the percentages for pkl/, harness/ and cli/.
#
# A failing step is reported and the report is still made (its coverage is
# then what ran); the exit status is 1 when a step failed. gcovr is installed
# from Debian's apt when missing (root or sudo), as scripts/bootstrap.sh does.
# BRINE_JOBS sets the build parallelism (default 2).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/reports/out/source}
build=${BRINE_COV_BUILD:-$root/build-cov}
jobs=${BRINE_JOBS:-2}
case $out in /*) ;; *) out=$PWD/$out ;; esac
case $build in /*) ;; *) build=$PWD/$build ;; esac

if ! command -v gcovr >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "source_coverage: installing gcovr (apt)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends gcovr >/dev/null
fi

echo "source_coverage: coverage build in $build"
cmake -S "$root" -B "$build" -DBRINE_COVERAGE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$build" -j"$jobs" >/dev/null

find "$build" -name '*.gcda' -delete
mkdir -p "$out"
log=$out/steps.log
: >"$log"
failed=()
# runs one step with its output in steps.log; a failure shows the log's tail
step() {
  local name=$1
  shift
  local t0=$SECONDS rc=0
  echo "== $name: $*" >>"$log"
  "$@" >>"$log" 2>&1 || rc=$?
  if [ "$rc" -eq 0 ]; then
    echo "source_coverage: $name: ok ($((SECONDS - t0)) s)"
  else
    echo "source_coverage: $name: FAILED (exit $rc); end of $log:" >&2
    tail -n 20 "$log" >&2
    failed+=("$name")
  fi
}
brine=$build/brine

step "brine run --impl pkl over the corpus" \
  "$brine" run --impl pkl --coverage --quiet --corpus "$root/corpus"
# exit 1 only says that some pickle was rejected; 2 is a usage or I/O error
load_sample() {
  local rc=0
  "$brine" load --batch "$root/corpus/sample" >/dev/null 2>&1 || rc=$?
  [ "$rc" -le 1 ]
}
step "brine load --batch corpus/sample" load_sample
step "unit tests (ctest -L unit)" \
  ctest --test-dir "$build" -L unit --output-on-failure -j1 -Q
replay_dirs=("$root/corpus/cases")
[ -d "$root/corpus/regress" ] && replay_dirs+=("$root/corpus/regress")
for bin in "$build"/harness/fuzz/fuzz_*_replay; do
  [ -x "$bin" ] || continue
  case $(basename "$bin") in fuzz_selftest_replay) continue ;; esac
  step "$(basename "$bin") over ${replay_dirs[*]#$root/}" "$bin" "${replay_dirs[@]}"
done

rm -f "$out"/index*.html
filters=(--filter "$root/pkl/" --filter "$root/harness/" --filter "$root/cli/")
gcovr --root "$root" "${filters[@]}" --json "$out/coverage.json" "$build" >/dev/null
gcovr --root "$root" --add-tracefile "$out/coverage.json" --html-details "$out/index.html" \
  --html-title "brine: C source coverage (libpkl and harness)" >/dev/null
summaries=()
for area in pkl harness cli; do
  gcovr --root "$root" --add-tracefile "$out/coverage.json" --filter "$root/$area/" \
    --json-summary "$out/summary-$area.json" >/dev/null
  summaries+=("$area/=$out/summary-$area.json")
done
python3 - "$out/summary.json" "${summaries[@]}" <<'EOF'
import json, sys
areas = {}
for arg in sys.argv[2:]:
    area, path = arg.split("=", 1)
    with open(path) as f:
        s = json.load(f)
    areas[area] = {k: s[k] for k in ("line_percent", "line_covered", "line_total", "branch_percent",
                                     "branch_covered", "branch_total", "function_percent")
                   if k in s}
with open(sys.argv[1], "w") as f:
    json.dump({"generated_by": "reports/source_coverage.sh", "areas": areas}, f, indent=1, sort_keys=True)
for area, a in sorted(areas.items()):
    print("source_coverage: %-9s lines %5.1f%% (%d/%d)  branches %5.1f%% (%d/%d)" % (
        area, a["line_percent"], a["line_covered"], a["line_total"],
        a["branch_percent"], a["branch_covered"], a["branch_total"]))
EOF
rm -f "$out"/summary-*.json
echo "source_coverage: report in $out/index.html"
if [ ${#failed[@]} -gt 0 ]; then
  echo "source_coverage: failed steps: ${failed[*]}" >&2
  exit 1
fi

#!/usr/bin/env bash
# README command 1, the main job, on the bundled C implementation (libpkl):
#   1. install what is missing and build (plain build, and the libFuzzer
#      build of the fuzz targets);
#   2. conformance: the whole corpus through libpkl with `brine run`
#      (text and safety trace against the oracles' recorded answers, and the
#      opcode x protocol coverage check), then the sample folder against the
#      live oracle (the newest local CPython);
#   3. 60 seconds of differential fuzzing of libpkl against the local
#      CPython embedded in process (`brine fuzz`), resuming from earlier runs;
#   4. the summary and where the reports are (HTML matrix, coverage and
#      findings pages; JSON and JUnit for CI).
# Exit status: 0 when everything conforms and the fuzzer has no open
# finding, 1 otherwise. BRINE_FUZZ_SECONDS changes the fuzzing budget.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/reports/out
fuzz_seconds=${BRINE_FUZZ_SECONDS:-60}

bash scripts/bootstrap.sh || exit 2
bash scripts/build.sh build || exit 2
mkdir -p "$out"
status=0

echo "== conformance: corpus/ through libpkl (brine run)"
build/brine run --impl pkl --corpus corpus --check-coverage \
    --json "$out/conformance.json" --junit "$out/conformance.xml" --max-report 10 || status=1

echo "== conformance: corpus/sample (plain folder) against the live oracle"
build/brine run --impl pkl --corpus corpus/sample --json "$out/sample.json" \
    --junit "$out/sample.xml" --max-report 10 || status=1

echo "== differential fuzzing: libpkl against the local CPython, ${fuzz_seconds} s"
fuzz_runs=no
if bash scripts/build_fuzzers.sh libfuzzer > "$out/build_fuzzers.log" 2>&1; then
    if [ -x build-fuzz-libfuzzer/harness/fuzz/fuzz_pkl_vs_cpython_structured ]; then
        build/brine fuzz --target pkl_vs_cpython --time "$fuzz_seconds" \
            --work fuzz-work/pkl_vs_cpython
        rc=$?
        fuzz_runs=yes
        [ $rc -eq 0 ] || status=1
    else
        echo "brine: no embeddable CPython found (libpython3-dev): the differential target" \
             "was not built; see $out/build_fuzzers.log"
        status=1
    fi
else
    echo "brine: building the fuzzers failed; see $out/build_fuzzers.log"
    status=1
fi

echo "== reports"
# the matrix is over one corpus; the sample folder's verdicts stay in sample.json / .xml
report_args=(--run "$out/conformance.json" --brine build/brine --out "$out")
[ "$fuzz_runs" = yes ] && report_args+=(--findings fuzz-work/pkl_vs_cpython/findings)
py=$(grep '^BRINE_REF_PYTHON:' build/tests/CMakeCache.txt build/CMakeCache.txt 2>/dev/null \
     | head -1 | cut -d= -f2-)
[ -n "$py" ] || py=$(command -v python3)
"$py" reports/build.py "${report_args[@]}" || status=1

echo
echo "brine main job: $([ $status -eq 0 ] && echo "all conformant, no open fuzz finding" \
                                          || echo "FAILURES (see above)")"
echo "  results matrix:    $out/index.html"
echo "  opcode coverage:   $out/coverage.html"
[ "$fuzz_runs" = yes ] && \
echo "  fuzz findings:     $root/fuzz-work/pkl_vs_cpython/findings/ ($out/findings/index.html)"
echo "  JSON / JUnit:      $out/conformance.json, $out/conformance.xml, $out/sample.json, $out/sample.xml"
exit $status

#!/usr/bin/env bash
# README command 2: install what is missing, build twice (plain, and with
# ASan+UBSan), run the whole test suite on both builds.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
echo "== build (RelWithDebInfo)"
bash scripts/build.sh build
echo "== build (ASan+UBSan)"
bash scripts/build.sh build-asan -DBRINE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
echo "== tests on the ASan+UBSan build"
ctest --test-dir build-asan --output-on-failure -j"$(nproc)"
echo "== tests on the plain build"
ctest --test-dir build --output-on-failure -j"$(nproc)"

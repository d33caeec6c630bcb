#!/usr/bin/env bash
# Builds the fuzzer binaries of every brine fuzz target (harness/fuzz/).
#
#   scripts/build_fuzzers.sh [libfuzzer|afl|all]      (default: all)
#
#   libfuzzer -> build-fuzz-libfuzzer/harness/fuzz/fuzz_<t>, fuzz_<t>_structured
#                clang, -fsanitize=fuzzer,address,undefined
#   afl       -> build-fuzz-afl/harness/fuzz/fuzz_<t>_afl, libbrine_afl_mutator.so
#                afl-clang-fast, persistent mode (AFL_USE_ASAN=1 in the
#                environment adds ASan, as afl-clang-fast reads it)
#
# Installs clang (scripts/bootstrap.sh) and, for afl, Debian's afl++ when
# missing (apt; only then, so normal builds never pay for it). Build
# directories can be moved with BRINE_FUZZ_LIBFUZZER_DIR / BRINE_FUZZ_AFL_DIR;
# BRINE_JOBS sets the build parallelism (default 2).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
what=${1:-all}
jobs=${BRINE_JOBS:-2}
lf_dir=${BRINE_FUZZ_LIBFUZZER_DIR:-$root/build-fuzz-libfuzzer}
afl_dir=${BRINE_FUZZ_AFL_DIR:-$root/build-fuzz-afl}

case $what in
  libfuzzer|afl|all) ;;
  *) echo "usage: $0 [libfuzzer|afl|all]" >&2; exit 2 ;;
esac

bash "$root/scripts/bootstrap.sh"

apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "build_fuzzers: installing $*"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

build_libfuzzer() {
  # libFuzzer and the sanitizer runtimes are only a Recommends of Debian's
  # clang, which bootstrap installs without recommends
  if ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1; then
    apt_install libclang-rt-dev
  fi
  CC=clang cmake -S "$root" -B "$lf_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DBRINE_FUZZ_ENGINE=libfuzzer -DBRINE_SANITIZE=ON -DBRINE_TESTS=OFF >/dev/null
  cmake --build "$lf_dir" -j"$jobs" --target brine_fuzzers
  echo "libFuzzer binaries: $lf_dir/harness/fuzz/"
}

build_afl() {
  if ! command -v afl-clang-fast >/dev/null 2>&1; then
    apt_install afl++
  fi
  CC=afl-clang-fast cmake -S "$root" -B "$afl_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DBRINE_FUZZ_ENGINE=afl -DBRINE_TESTS=OFF >/dev/null
  cmake --build "$afl_dir" -j"$jobs" --target brine_fuzzers
  echo "AFL++ binaries and custom mutator: $afl_dir/harness/fuzz/"
}

case $what in
  libfuzzer) build_libfuzzer ;;
  afl) build_afl ;;
  all) build_libfuzzer; build_afl ;;
esac

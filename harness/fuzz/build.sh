#!/bin/bash -eu
# OSS-Fuzz / ClusterFuzzLite build script for brine's fuzz targets.
#
# The fuzzing infrastructure provides $CC, $CFLAGS (sanitizer + coverage
# flags already in), $LIB_FUZZING_ENGINE (the engine's link flags) and $OUT;
# $SRC/brine (or this script's checkout) is the source. Each fuzzer lands in
# $OUT with <name>_seed_corpus.zip (corpus/cases + corpus/regress),
# <name>.dict (corpus/pickle.dict, generated from the opcode table) and
# <name>.options.
#
# Local dry run:  CC=clang CFLAGS="-fsanitize=address,fuzzer-no-link" \
#   LIB_FUZZING_ENGINE=-fsanitize=fuzzer OUT=/tmp/out bash harness/fuzz/build.sh
src=$(cd "$(dirname "$0")/../.." && pwd)
work=${WORK:-/tmp}/brine-fuzz-build
: "${OUT:?OUT must be set}" "${LIB_FUZZING_ENGINE:?LIB_FUZZING_ENGINE must be set}"

# CFLAGS reach CMake through the environment; instrumentation is in them already.
cmake -S "$src" -B "$work" -DCMAKE_BUILD_TYPE=Release -DBRINE_TESTS=OFF \
  -DBRINE_FUZZ_ENGINE=libfuzzer -DBRINE_FUZZ_INSTRUMENT= \
  -DBRINE_FUZZ_LINK="$LIB_FUZZING_ENGINE" -DBRINE_EMBED_PYTHON=none
cmake --build "$work" -j"$(nproc)" --target brine_fuzzers

# one seed corpus for every target: the conformance cases and every reproducer
seeds=$work/seeds
rm -rf "$seeds" && mkdir -p "$seeds"
find "$src/corpus/cases" "$src/corpus/regress" -type f -name '*.pkl' -print0 |
  while IFS= read -r -d '' f; do
    rel=${f#"$src/corpus/"}
    cp "$f" "$seeds/${rel//\//__}"
  done
(cd "$seeds" && python3 -c 'import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for n in sorted(os.listdir(".")): z.write(n)' "$work/seed_corpus.zip")

for bin in "$work"/harness/fuzz/fuzz_*; do
  [ -x "$bin" ] && [ -f "$bin" ] || continue
  name=$(basename "$bin")
  cp "$bin" "$OUT/$name"
  cp "$work/seed_corpus.zip" "$OUT/${name}_seed_corpus.zip"
  cp "$src/corpus/pickle.dict" "$OUT/$name.dict"
  printf '[libfuzzer]\ndict = %s.dict\nmax_len = 65536\n' "$name" > "$OUT/$name.options"
done

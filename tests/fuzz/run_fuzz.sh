#!/usr/bin/env bash
# Builds the libFuzzer harnesses with clang (-fsanitize=fuzzer,address,undefined) in
# build/fuzz, then runs each one for SECONDS (default 60), starting from its committed
# corpus (tests/fuzz/corpus/NAME). New inputs go to build/fuzz/corpus/NAME, crashes to
# build/fuzz/artifacts/. Exits non-zero if any harness finds a failure.
# Usage: bash tests/fuzz/run_fuzz.sh [SECONDS] [HARNESS...]
set -euo pipefail
cd "$(dirname "$0")/../.."
# Debian 12's clang 14 (with libclang-rt-14-dev, libFuzzer's runtime) by default;
# LOOPBRIDGE_FUZZ_CLANG picks another installed version.
clang_version=${LOOPBRIDGE_FUZZ_CLANG:-14}
source cmake/debian-deps.sh
loopbridge_install_deps "clang-${clang_version}" "libclang-rt-${clang_version}-dev"

seconds=${1:-60}
shift || true
build=build/fuzz

echo "=== fuzz: configure and build (clang ${clang_version}, libFuzzer + ASan + UBSan)"
cmake -S . -B "$build" -G Ninja \
  -DCMAKE_CXX_COMPILER="clang++-${clang_version}" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DLOOPBRIDGE_SANITIZE=fuzzer-no-link,address,undefined \
  -DLOOPBRIDGE_WARNINGS_AS_ERRORS=ON \
  -DLOOPBRIDGE_BUILD_TESTS=OFF -DLOOPBRIDGE_BUILD_EXAMPLES=OFF -DLOOPBRIDGE_BUILD_FUZZERS=ON > /dev/null
cmake --build "$build"

harnesses=("$@")
if ((${#harnesses[@]} == 0)); then
  for corpus in tests/fuzz/corpus/*/; do harnesses+=("$(basename "$corpus")"); done
fi

mkdir -p "$build/artifacts"
status=0
for name in "${harnesses[@]}"; do
  work="$build/corpus/$name"
  mkdir -p "$work"
  echo "=== fuzz: ${name}_fuzzer for ${seconds} s"
  log="$build/${name}.log"
  # Threads make runs of one input differ a little: -timeout is generous, and a leak is
  # only checked at the end of each input (the harness joins every thread it starts).
  # -print_funcs=0: printing newly covered functions starts llvm-symbolizer, whose pipes
  # would count as descriptors the harness left open.
  if ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ASAN_SYMBOLIZER_PATH="/usr/lib/llvm-${clang_version}/bin/llvm-symbolizer" \
    "$build/tests/fuzz/${name}_fuzzer" -max_total_time="$seconds" -timeout=60 -rss_limit_mb=4096 -print_funcs=0 \
    -print_final_stats=1 -artifact_prefix="$build/artifacts/${name}-" "$work" "tests/fuzz/corpus/$name" \
    > "$log" 2>&1; then
    result=passed
    failed=0
  else
    result=FAILED
    failed=1
    status=1
    tail -n 60 "$log"
  fi
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  echo "fuzz: ${name}: ${result}, ${executions:-0} executions in ${seconds} s"
  if [[ -n "${LOOPBRIDGE_RELIABILITY_LOG:-}" ]]; then
    echo "fuzz|${name} executions|${executions:-0}" >> "$LOOPBRIDGE_RELIABILITY_LOG"
    echo "fuzz|${name} seconds|${seconds}" >> "$LOOPBRIDGE_RELIABILITY_LOG"
    echo "fuzz|${name} failures|${failed}" >> "$LOOPBRIDGE_RELIABILITY_LOG"
  fi
done
exit $status

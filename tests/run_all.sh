#!/usr/bin/env bash
# The whole test suite: installs what is missing, then builds and runs every test under the
# dev, asan (AddressSanitizer + UBSan) and tsan (ThreadSanitizer) presets, then runs each
# fuzz harness for 60 s (clang, libFuzzer; tests/fuzz/run_fuzz.sh).
# Usage: bash tests/run_all.sh [preset...]   ("fuzz" names the fuzzing step)
set -euo pipefail
cd "$(dirname "$0")/.."
source cmake/debian-deps.sh
loopbridge_install_deps

presets=("$@")
if ((${#presets[@]} == 0)); then presets=(dev asan tsan fuzz); fi

for preset in "${presets[@]}"; do
  if [[ "$preset" == fuzz ]]; then
    bash tests/fuzz/run_fuzz.sh 60
    continue
  fi
  echo "=== ${preset}: configure and build"
  cmake --preset "${preset}" > /dev/null
  cmake --build --preset "${preset}"
  echo "=== ${preset}: test"
  ctest --preset "${preset}" --timeout 120
done
echo "all presets passed: ${presets[*]}"

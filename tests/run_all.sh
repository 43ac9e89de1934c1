#!/usr/bin/env bash
# The whole test suite: installs what is missing, then builds and runs every test under the
# dev, asan (AddressSanitizer + UBSan) and tsan (ThreadSanitizer) presets.
# Usage: bash tests/run_all.sh [preset...]
set -euo pipefail
cd "$(dirname "$0")/.."
source cmake/debian-deps.sh
loopbridge_install_deps doxygen  # the API reference test builds it

presets=("$@")
if ((${#presets[@]} == 0)); then presets=(dev asan tsan); fi

for preset in "${presets[@]}"; do
  echo "=== ${preset}: configure and build"
  cmake --preset "${preset}" > /dev/null
  cmake --build --preset "${preset}"
  echo "=== ${preset}: test"
  ctest --preset "${preset}" --timeout 120
done
echo "all presets passed: ${presets[*]}"

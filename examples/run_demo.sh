#!/usr/bin/env bash
# Builds and runs the main demo: installs what is missing, builds the release preset and
# runs examples/quickstart.cpp.
set -euo pipefail
cd "$(dirname "$0")/.."
source cmake/debian-deps.sh
loopbridge_install_deps
cmake --preset release > /dev/null
cmake --build --preset release --target example_quickstart
./build/release/examples/example_quickstart

#!/usr/bin/env bash
# Builds and runs the demo: installs what is missing, builds the release preset, then runs
# examples/quickstart.cpp (a first loop) and examples/blocking_calls.cpp (worker threads
# calling async code with deadlines, offloading, and calls back into the worker).
set -euo pipefail
cd "$(dirname "$0")/.."
source cmake/debian-deps.sh
loopbridge_install_deps
cmake --preset release > /dev/null
cmake --build --preset release --target example_quickstart example_blocking_calls
./build/release/examples/example_quickstart
./build/release/examples/example_blocking_calls

#!/usr/bin/env bash
# Builds and runs the demo: installs what is missing, builds the release preset, then runs
# examples/quickstart.cpp (a first loop) and examples/worker_threads.cpp (a pool of worker
# threads calling async code: results, exceptions, deadlines, cancellation at shutdown).
set -euo pipefail
cd "$(dirname "$0")/.."
source cmake/debian-deps.sh
loopbridge_install_deps
cmake --preset release > /dev/null
cmake --build --preset release --target example_quickstart example_worker_threads
./build/release/examples/example_quickstart
./build/release/examples/example_worker_threads

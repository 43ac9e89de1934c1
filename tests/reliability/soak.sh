#!/usr/bin/env bash
# The soak: random scenarios from several host threads, back to back, for MINUTES minutes,
# every invariant checked after each; stops by itself. Built optimised (release preset).
# Exits non-zero on the first violation and prints the seed that replays it.
# Usage: bash tests/reliability/soak.sh MINUTES [SEED]
set -euo pipefail
cd "$(dirname "$0")/../.."
if (($# < 1)); then
  echo "usage: bash tests/reliability/soak.sh MINUTES [SEED]" >&2
  exit 2
fi
minutes=$1
source cmake/debian-deps.sh
loopbridge_install_deps
cmake --preset release > /dev/null
cmake --build --preset release --target reliability_soak
build/release/tests/reliability/reliability_soak "$((minutes * 60))" ${2:+"$2"}

#!/usr/bin/env bash
# The whole test suite: installs what is missing, then builds and runs every test under the
# dev, uring (the dev build on io_uring instead of epoll), asan (AddressSanitizer + UBSan)
# and tsan (ThreadSanitizer) presets, then runs each fuzz harness for 60 s (clang,
# libFuzzer; tests/fuzz/run_fuzz.sh).
# Usage: bash tests/run_all.sh [preset...]   ("fuzz" names the fuzzing step)
set -euo pipefail
cd "$(dirname "$0")/.."
source cmake/debian-deps.sh
loopbridge_install_deps "${loopbridge_example_packages[@]}" doxygen  # doxygen: the API reference test builds it

presets=("$@")
if ((${#presets[@]} == 0)); then presets=(dev uring asan tsan fuzz); fi

# Whether this kernel lets the process set up an io_uring (it may not: old kernels,
# kernel.io_uring_disabled, a container's seccomp policy).
io_uring_allowed() {
  python3 - <<'PY'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
params = ctypes.create_string_buffer(120)   # struct io_uring_params, zeroed
fd = libc.syscall(425, 1, params)           # io_uring_setup (425 on x86-64 and arm64)
if fd >= 0:
    os.close(fd)
sys.exit(0 if fd >= 0 else 1)
PY
}

for preset in "${presets[@]}"; do
  if [[ "$preset" == fuzz ]]; then
    bash tests/fuzz/run_fuzz.sh 60
    continue
  fi
  echo "=== ${preset}: configure and build"
  cmake --preset "${preset}" > /dev/null
  cmake --build --preset "${preset}"
  if [[ ${preset} == uring ]] && ! io_uring_allowed; then
    # Every loop of this build throws BackendUnavailable here: check exactly that.
    echo "=== uring: this kernel refuses io_uring; testing only the refusal (BackendUnavailable)"
    ctest --preset "${preset}" --timeout 120 -R "backend|io_uring"
    continue
  fi
  echo "=== ${preset}: test"
  ctest --preset "${preset}" --timeout 120
done
echo "all presets passed: ${presets[*]}"

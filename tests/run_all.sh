#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run): installs what is missing, then builds and
# tests each job's configuration in its preset's own folder (build/<preset>: ctest --preset
# reads that folder whatever else it is told), then runs each fuzz harness for 30 s.
# Each job differs from the others in more than one way, so that every supported
# configuration is covered once and none is built twice:
#
# | job        | compiler, library   | Boost.Asio                | tasks start through | and                                  |
# |------------|---------------------|---------------------------|---------------------|--------------------------------------|
# | asan       | g++ 12, libstdc++   | 1.26 (Boost 1.81, system) | Asio's internals    | AddressSanitizer + UBSan             |
# | tsan       | g++ 12, libstdc++   | 1.36 (Boost 1.89)         | Asio's internals    | ThreadSanitizer                      |
# | uring      | g++ 12, libstdc++   | 1.26 (Boost 1.81, system) | Asio's internals    | io_uring instead of epoll            |
# | public-api | g++ 12, libstdc++   | 1.36 (Boost 1.89)         | co_spawn            | the consumers (package, .deb, ...)   |
# | portable   | g++ 12, libstdc++   | 1.28 (Boost 1.83)         | Asio's internals    | the portable fallbacks instead of    |
# |            |                     |                           |                     | Linux's own calls                    |
# | libcxx     | clang 16, libc++ 16 | 1.32 (Boost 1.86)         | Asio's internals    | no stop tokens, no boost::future     |
# | fuzz       | clang 14, libstdc++ | 1.26 (Boost 1.81, system) | Asio's internals    | libFuzzer + ASan + UBSan, 30 s each  |
#
# Every job runs the whole test suite: the unit, reliability, doc and package tests. The
# examples (a third of a job's build time) run where they meet something of their own:
# ThreadSanitizer, with its races between real clients and shutdown, and io_uring,
# whose completions only their servers' load exercises; the tests cover what the other jobs
# change. The dev preset's build is asan's without the sanitizers: it is not run again on
# its own.
# asan runs on the system Asio 1.26, the release most users build against, where tasks start
# through the most of Asio's internals (their bodies start above their drivers' frames).
# uring keeps the system Asio 1.26: its liburing.h correction is for that release.
# public-api runs on Asio 1.36, the newest release, on the task-start path a future Asio
# falls back to (LOOPBRIDGE_PUBLIC_API_ASIO names another snapshot).
# The Asio releases other than the system Boost's are header snapshots in ../shared/asio
# (beside this checkout; LOOPBRIDGE_ASIO_SNAPSHOTS names another folder). Where they are
# absent, the jobs that use them say so and run on the system Boost's Asio.
# The tests labelled "consumers" (tests/package: the .deb, add_subdirectory, FetchContent)
# and "compile_checks" (each public header alone, the compile errors that state a rule)
# build the library or its headers again and check nothing an Asio release or a sanitizer
# changes: only public-api (and dev or release, named explicitly) runs them.
# libcxx leaves out boost::future: Debian's Boost.Thread library is compiled against
# libstdc++.
# On 2 cores the whole run takes under 40 minutes (each job prints its build and test times).
#
# Usage: bash tests/run_all.sh [job...]   (default: asan tsan uring public-api portable
#        libcxx fuzz; "dev" and "release" build those presets on the system Boost)
set -euo pipefail
cd "$(dirname "$0")/.."
source cmake/debian-deps.sh
loopbridge_install_deps "${loopbridge_example_packages[@]}" doxygen  # doxygen: the API reference test builds it

jobs=("$@")
if ((${#jobs[@]} == 0)); then jobs=(asan tsan uring public-api portable libcxx fuzz); fi
snapshots=${LOOPBRIDGE_ASIO_SNAPSHOTS:-$(cd .. && pwd)/shared/asio}

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

for job in "${jobs[@]}"; do
  if [[ "$job" == fuzz ]]; then
    bash tests/fuzz/run_fuzz.sh 30
    continue
  fi
  preset=$job
  snapshot=""
  options=()
  consumers=no
  case "$job" in
    asan) options+=(-DLOOPBRIDGE_BUILD_EXAMPLES=OFF) ;;
    tsan) snapshot=boost-1.89.0 ;;
    uring) ;;
    public-api)
      snapshot=${LOOPBRIDGE_PUBLIC_API_ASIO:-boost-1.89.0}
      consumers=yes
      options+=(-DLOOPBRIDGE_BUILD_EXAMPLES=OFF)
      ;;
    portable)
      snapshot=boost-1.83.0
      options+=(-DLOOPBRIDGE_BUILD_EXAMPLES=OFF)
      ;;
    libcxx)
      snapshot=boost-1.86.0
      options+=(-DLOOPBRIDGE_BUILD_EXAMPLES=OFF)
      loopbridge_install_deps clang-16 libc++-16-dev libc++abi-16-dev
      ;;
    dev | release) consumers=yes ;;
    *) echo "unknown job '${job}': asan, tsan, public-api, uring, portable, libcxx, fuzz, dev or release" >&2; exit 2 ;;
  esac
  if [[ -n "$snapshot" ]]; then
    if [[ -d "${snapshots}/${snapshot}/include/boost/asio" ]]; then
      options+=("-DLOOPBRIDGE_ASIO_INCLUDE_DIR=${snapshots}/${snapshot}/include")
    else
      echo "=== ${job}: no Asio snapshot ${snapshots}/${snapshot}: skipping that Asio release; ${job} runs on the system Boost's"
    fi
  fi
  if [[ "$preset" == uring ]] && ! io_uring_allowed; then
    # Every loop of an io_uring build would throw BackendUnavailable here: keep this job's
    # Asio release covered, on epoll.
    echo "=== uring: this kernel refuses io_uring; the job runs on epoll, and the io_uring backend is not tested"
    options+=(-DLOOPBRIDGE_IO_URING=OFF)
  fi
  build="build/${preset}"
  started=$SECONDS
  echo "=== ${job}: configure and build (${build})"
  mkdir -p build
  if ! cmake --preset "$preset" -DLOOPBRIDGE_ASIO_INCLUDE_DIR= "${options[@]}" > "${build}.configure.log" 2>&1; then
    cat "${build}.configure.log"
    exit 1
  fi
  grep "^-- loopbridge:" "${build}.configure.log"
  cmake --build "$build"
  built=$SECONDS
  echo "=== ${job}: test"
  labels=()
  if [[ "$consumers" == no ]]; then labels=(-LE "consumers|compile_checks"); fi
  ctest --preset "$preset" --timeout 120 "${labels[@]}"
  echo "=== ${job}: built in $((built - started)) s, tested in $((SECONDS - built)) s"
done
echo "all jobs passed: ${jobs[*]}"

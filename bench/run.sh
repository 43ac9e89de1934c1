#!/usr/bin/env bash
# The benchmarks in one command: installs what is missing, builds the C++ program and the
# Tokio program (offline, from Debian's Rust packages), runs them with the Python asyncio
# program (bench/run.py), then regenerates docs/benchmarks.md and its chart from every
# result file in docs/benchmarks/ (bench/report.py).
#
# Usage: bash bench/run.sh [--public-path] [--quick] [any bench/run.py option]
#   --public-path            also measure the build on Asio's public API only
#                            (LOOPBRIDGE_ASIO_INTERNALS=OFF), as a run of its own tagged
#                            <machine>-public-asio (quick size, no Tokio or Python)
#   --quick                  a few minutes on a 2-vCPU machine instead of ten or so
#   --threads 1,2,4,8,16     host-thread counts; --pool-loops 1,2,4,8 pool sizes
#   --groups throughput,pool only these measures (latency,throughput,lifecycle,pool,memory)
# A baseline that cannot be built is skipped with a message.
#
# On a machine without network or apt, copy build/bench/bench/loopbridge_bench and
# build/bench/tokio_bench (both static) with the source tree and run bench/run.py directly.
set -euo pipefail
cd "$(dirname "$0")/.."
source cmake/debian-deps.sh

build=build/bench
public_path=0
args=()
for arg in "$@"; do
  if [[ $arg == --public-path ]]; then public_path=1; else args+=("$arg"); fi
done
optional=(cargo librust-tokio-dev python3-uvloop gnuplot-nox)
loopbridge_install_deps || echo "bench/run.sh: could not install the C++ build dependencies" >&2
for package in "${optional[@]}"; do
  loopbridge_install_deps "$package" ||
    echo "bench/run.sh: could not install $package: the parts that need it are skipped" >&2
done

echo "=== building loopbridge_bench (release, static)"
bench_build() {  # bench_build DIR [CMAKE OPTION...]
  local dir=$1
  shift
  cmake --preset release -B "$dir" -DLOOPBRIDGE_BUILD_BENCH=ON -DLOOPBRIDGE_BUILD_TESTS=OFF \
    -DLOOPBRIDGE_BUILD_EXAMPLES=OFF -DBoost_USE_STATIC_LIBS=ON -DCMAKE_EXE_LINKER_FLAGS=-static \
    -DCMAKE_EXPORT_COMPILE_COMMANDS=ON "$@" > /dev/null
  cmake --build "$dir" --target loopbridge_bench loopbridge_compile_samples
}
bench_build "$build"
if ((public_path)); then
  echo "=== building loopbridge_bench on Asio's public API only"
  bench_build "$build-public" -DLOOPBRIDGE_ASIO_INTERNALS=OFF
fi

echo "=== building tokio_bench (offline, Debian's librust-tokio-dev)"
rm -f "$build/tokio_bench" "$build/tokio_bench.version"
if [[ -x /usr/bin/cargo && -d /usr/share/cargo/registry ]] &&
  (cd bench/tokio && RUSTC=/usr/bin/rustc CARGO_TARGET_DIR="$PWD/../../$build/cargo" \
    RUSTFLAGS="-C target-feature=+crt-static" \
    /usr/bin/cargo build --release --offline --quiet --target x86_64-unknown-linux-gnu); then
  cp "$build/cargo/x86_64-unknown-linux-gnu/release/tokio_bench" "$build/tokio_bench"
  echo "tokio $(dpkg-query -W -f='${Version}' librust-tokio-dev), $(/usr/bin/rustc --version)" \
    > "$build/tokio_bench.version"
else
  echo "bench/run.sh: the Tokio program did not build: skipping the Tokio baselines" >&2
fi

echo "=== running"
/usr/bin/python3 bench/run.py --cpp "$build/bench/loopbridge_bench" --tokio "$build/tokio_bench" "${args[@]}"
if ((public_path)); then
  tag=$(/usr/bin/python3 -c 'import sys; sys.path.insert(0, "bench"); import run; print(run.default_tag())')
  /usr/bin/python3 bench/run.py --cpp "$build-public/bench/loopbridge_bench" --tokio none --python none \
    --quick --tag "$tag-public-asio" --groups latency,throughput,lifecycle,memory
fi

echo "=== compile cost"
/usr/bin/python3 bench/compile_cost.py --build "$build"

echo "=== report"
/usr/bin/python3 bench/report.py

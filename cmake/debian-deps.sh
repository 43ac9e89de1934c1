#!/usr/bin/env bash
# Installs, with apt-get, the Debian 12 packages loopbridge builds with, if any is missing.
# Sourced by examples/run_demo.sh and tests/run_all.sh.
set -euo pipefail

loopbridge_packages=(
  cmake ninja-build g++
  libboost1.81-dev libboost-thread1.81-dev libboost-chrono1.81-dev
  catch2
  liburing-dev   # the uring preset (LOOPBRIDGE_IO_URING=ON)
  curl python3   # the clients examples/two_services.cpp runs
)

# The clients that the examples serving real clients are tested and demonstrated with:
# `loopbridge_install_deps "${loopbridge_example_packages[@]}"`.
loopbridge_example_packages=(curl wrk python3)

loopbridge_install_deps() {
  local missing=()
  for package in "${loopbridge_packages[@]}" "$@"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$package")
    fi
  done
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  echo "installing: ${missing[*]}"
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

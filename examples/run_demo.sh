#!/usr/bin/env bash
# The demo: installs what is missing, builds the release preset, then runs the two examples
# that serve real clients, each driven by its client script, which starts the program, sends
# it real requests, prints what happened, stops it with SIGTERM and checks its shutdown report:
#   1. examples/legacy_http_server.cpp: a thread-per-connection HTTP server (Boost.Beast,
#      synchronous) whose handler fans out to three upstream services through a loop under a
#      deadline; driven with curl and wrk.
#   2. examples/embedded_smtp_server.cpp: an SMTP server opened and closed by a loop's hooks
#      inside a plain synchronous program; driven with Python's smtplib.
set -euo pipefail
cd "$(dirname "$0")/.."
source cmake/debian-deps.sh
loopbridge_install_deps "${loopbridge_example_packages[@]}"
cmake --preset release > /dev/null
cmake --build --preset release --target example_legacy_http_server example_embedded_smtp_server
echo
echo "=== 1. A legacy synchronous HTTP server calling async code, with curl and wrk as clients"
/usr/bin/python3 examples/legacy_http_server/client_test.py build/release/examples/example_legacy_http_server
echo
echo "=== 2. An SMTP server on a loop inside a synchronous program, with smtplib as the client"
/usr/bin/python3 examples/embedded_smtp_server/client_test.py build/release/examples/example_embedded_smtp_server

#!/usr/bin/env bash
# Builds polyhead and its tests, then runs the whole suite through ctest. Exits non-zero on
# any failure. Tests run in parallel on every core (ctest -j; tests that need 2 cores say so).
# Extra arguments go to ctest (e.g. tests/run.sh -R kernel).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=launch/deps.sh
source "$root/launch/deps.sh"
polyhead_ensure_packages

build=${POLYHEAD_BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure --timeout 900 -j"$(nproc)" "$@"

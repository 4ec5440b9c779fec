#!/usr/bin/env bash
# Quick start: installs what is missing, builds polyhead (Release) and trains.
#   launch/train.sh                         the default job, configs/tiny.yaml
#   launch/train.sh CONFIG [key=value ...]  another config, with overrides
#   launch/train.sh train.lr=1e-3           the default config with overrides
# POLYHEAD_BUILD_DIR chooses the build directory (default: build/ in the repository).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=launch/deps.sh
source "$root/launch/deps.sh"
polyhead_ensure_packages

build=${POLYHEAD_BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >"$build.configure.log" 2>&1 ||
  { cat "$build.configure.log" >&2; exit 1; }
cmake --build "$build" --target polyhead -j"$(nproc)" >"$build.build.log" 2>&1 ||
  { cat "$build.build.log" >&2; exit 1; }

config="$root/configs/tiny.yaml"
if [ $# -gt 0 ] && [[ "$1" != *=* ]]; then
  config=$1
  shift
fi
exec "$build/polyhead" train "$config" "$@"

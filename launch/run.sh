#!/usr/bin/env bash
# Runs polyhead on one node with N ranks: threads per rank = cores / N, no core binding (the
# ranks' OpenMP threads need their cores), and the Open MPI flags a user needs, as root too.
#   launch/run.sh configs/small.yaml parallel.tp=2            2 ranks (default: POLYHEAD_RANKS=2)
#   POLYHEAD_RANKS=4 launch/run.sh configs/small.yaml parallel.tp=2   dp=2 x tp=2
# Builds first if build/polyhead is missing (as launch/train.sh does). Everything after the
# config is passed through as key.path=value overrides.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${POLYHEAD_BUILD_DIR:-$root/build}
ranks=${POLYHEAD_RANKS:-2}
if [ $# -lt 1 ]; then
  echo "usage: [POLYHEAD_RANKS=N] launch/run.sh CONFIG [key.path=value ...]" >&2
  exit 2
fi
if [ ! -x "$build/polyhead" ]; then
  # shellcheck source=launch/deps.sh
  source "$root/launch/deps.sh"
  polyhead_ensure_packages
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" --target polyhead -j"$(nproc)" >/dev/null
fi
cores=$(nproc)
threads=$(( cores / ranks ))
[ "$threads" -ge 1 ] || threads=1
flags=(-n "$ranks" --bind-to none -x OMP_NUM_THREADS="$threads" -x OMP_WAIT_POLICY=PASSIVE)
[ "$ranks" -le "$cores" ] || flags+=(--oversubscribe)
[ "$(id -u)" -ne 0 ] || flags+=(--allow-run-as-root)
config=$1
shift
exec mpirun "${flags[@]}" "$build/polyhead" train "$config" runtime.threads="$threads" "$@"

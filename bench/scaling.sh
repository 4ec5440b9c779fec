#!/usr/bin/env bash
# Data- and tensor-parallel scaling of the real training loop on one node, side by side in one
# run: the same config and global batch on 1 rank x 1 thread, 2 ranks x 1 thread (dp=2) and
# 2 ranks x 1 thread with parallel.tp=2. Reads tokens/s from each run's metrics.jsonl (steps
# after the first record; evaluation time excluded) and prints the ratios.
#   bench/scaling.sh [CONFIG] [STEPS]       default: configs/small.yaml, 20 steps
# Environment: as the caller's (OPENBLAS_CORETYPE etc. are left as they are); POLYHEAD_BUILD_DIR.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${POLYHEAD_BUILD_DIR:-$root/build}
config=${1:-$root/configs/small.yaml}
steps=${2:-20}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=PASSIVE
common=(train.max_steps="$steps" optim.warmup_steps=1 log.interval=1 train.eval_interval=0
        train.eval_batches=1 sample.count=0 runtime.threads=1 checkpoint.keep_last=1)

# Mean tokens/s over the records after the first (which includes start-up).
rate() { awk -F'"tokens_per_s": ' 'NR>1 { split($2, a, ","); s += a[1]; n++ } END { printf "%.0f", s / n }' "$1"; }

run() {  # name ranks overrides...
  local name=$1 ranks=$2
  shift 2
  if [ "$ranks" -eq 1 ]; then
    OMP_NUM_THREADS=1 "$build/polyhead" train "$config" "${common[@]}" run.dir="$out/$name" "$@" >"$out/$name.log"
  else
    mpirun -n "$ranks" --bind-to none -x OMP_NUM_THREADS=1 "$build/polyhead" train "$config" \
      "${common[@]}" run.dir="$out/$name" "$@" >"$out/$name.log"
  fi
  rate "$out/$name/metrics.jsonl"
}

gb=$(awk '/micro_batch:/ { print 2 * $2; exit }' "$config")  # global batch: 2 micro-batches
one=$(run dp1 1 train.global_batch="$gb")
dp2=$(run dp2 2 train.global_batch="$gb")
tp2=$(run tp2 2 train.global_batch="$gb" parallel.tp=2)
printf '%-28s %12s %8s\n' layout "tokens/s" ratio
printf '%-28s %12s %8s\n' "1 rank x 1 thread" "$one" 1.00
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf '%-28s %12s %8s\n' "dp=2: 2 ranks x 1 thread" "$dp2" "$(ratio "$dp2" "$one")"
printf '%-28s %12s %8s\n' "tp=2: 2 ranks x 1 thread" "$tp2" "$(ratio "$tp2" "$one")"
printf 'tp=2 against dp=2 on the same 2 cores: %s\n' "$(ratio "$tp2" "$dp2")"

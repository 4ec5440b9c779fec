#!/usr/bin/env bash
# polyhead (bench_train) against PyTorch (torch_gpt.py --bench) on the same model shapes, in
# one environment, with the same thread count. Prints one table row per (shape, BLAS
# environment, program): tokens/s, ms/step, peak RSS, MFU (polyhead), the polyhead/torch
# ratios, and how much CPU other processes took while it ran (the machine may be shared).
#
#   bench/compare_torch.sh [BUILD_DIR]     (default BUILD_DIR: build-bench in the source root)
#
# Environment knobs (all optional):
#   THREADS=2           OMP_NUM_THREADS for both programs; torch.set_num_threads for torch
#   STEPS, WARMUP      timed / untimed steps per run; by default 50/5 on tiny, 10/2 on small,
#                       5/1 on gpt2 (about 1-30 s of timed work each)
#   CONFIGS="tiny small gpt2"  shapes; gpt2 = configs/gpt2-124m.yaml at T=256, micro-batch 4
#   TORCH_GPT2=0        1: also run torch on the gpt2 shape (slow)
#   BLAS_ENV="as-is unset"  as-is: the machine's OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE; unset:
#                       both removed — always for every program of the comparison alike
#   QUIET_MAX=900       seconds to wait, before each run, for the other processes to leave the
#                       cores idle (under 10% busy over 3 s); 0: do not wait
#   RETRIES=3           measure again (up to RETRIES times) when other processes took more than
#                       5% of the CPU during a run
#   OUT=file            where the JSON lines go (emptied first; default: a new /tmp file)
#   BASELINE=DIR        also measure DIR/bench/bench_train (another build of polyhead, e.g. of
#                       an earlier commit) on every shape, right after this build's run, and
#                       show this build's tokens/s relative to it
#   REPEAT=1            run polyhead (and the baseline) this many times per shape, alternating;
#                       the table shows the median of each figure (noisy machines: 5 or more)
# Anything else in the environment (e.g. OMP_WAIT_POLICY, which the table then shows) reaches
# both programs unchanged.
# Needs Debian's /usr/bin/python3 with python3-torch, -h5py, -numpy, -yaml (see torch_gpt.py).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
build="${1:-$root/build-bench}"
bench_bin="$build/bench/bench_train"
python=/usr/bin/python3
THREADS="${THREADS:-2}"
CONFIGS="${CONFIGS:-tiny small gpt2}"
TORCH_GPT2="${TORCH_GPT2:-0}"
BLAS_ENV="${BLAS_ENV:-as-is unset}"
QUIET_MAX="${QUIET_MAX:-900}"
RETRIES="${RETRIES:-3}"
OUT="${OUT:-$(mktemp /tmp/compare_torch.XXXXXX.jsonl)}"
BASELINE="${BASELINE:-}"
REPEAT="${REPEAT:-1}"

[[ -x "$bench_bin" ]] || { echo "compare_torch.sh: no $bench_bin (build the bench_train target)" >&2; exit 2; }
[[ -z "$BASELINE" || -x "$BASELINE/bench/bench_train" ]] ||
  { echo "compare_torch.sh: no $BASELINE/bench/bench_train" >&2; exit 2; }
"$python" -c 'import torch, h5py, numpy, yaml' 2>/dev/null ||
  { echo "compare_torch.sh: $python cannot import torch/h5py/numpy/yaml" >&2; exit 2; }

steps_of() {  # timed and untimed steps for a shape name
  case "$1" in
    tiny) echo "${STEPS:-50} ${WARMUP:-5}" ;;
    gpt2) echo "${STEPS:-5} ${WARMUP:-1}" ;;
    *) echo "${STEPS:-10} ${WARMUP:-2}" ;;
  esac
}

config_args() {  # the config path and overrides of a shape name
  case "$1" in
    tiny) echo "$root/configs/tiny.yaml" ;;
    small) echo "$root/configs/small.yaml" ;;
    gpt2) echo "$root/configs/gpt2-124m.yaml model.seq_len=256 train.micro_batch=4 train.global_batch=0 data.train=[] data.val=[]" ;;
    *) echo "compare_torch.sh: unknown shape '$1'" >&2; exit 2 ;;
  esac
}

run_one() {  # shape envname label command... (label: "" keeps the program's own name)
  local shape="$1" envname="$2" label="$3"
  shift 3
  local -a envcmd=(env "OMP_NUM_THREADS=$THREADS")
  [[ "$envname" == unset ]] && envcmd=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "OMP_NUM_THREADS=$THREADS")
  # waits for idle cores, measures again when disturbed; one JSON line (see quiet_measure.py)
  "$python" "$here/quiet_measure.py" "$shape" "$envname" "$label" "$QUIET_MAX" "$RETRIES" -- \
    "${envcmd[@]}" "$@" >>"$OUT"
}

: >"$OUT"
echo "# $(date -u +%FT%TZ) $(uname -n): $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "# OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-<unset>} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-<unset>}" \
  "OMP_WAIT_POLICY=${OMP_WAIT_POLICY-<unset>} threads=$THREADS" >&2
for envname in $BLAS_ENV; do
  for shape in $CONFIGS; do
    read -r -a cargs <<<"$(config_args "$shape")"
    read -r steps warmup <<<"$(steps_of "$shape")"
    echo "== $shape ($envname BLAS environment)" >&2
    for ((rep = 0; rep < REPEAT; ++rep)); do
      run_one "$shape" "$envname" "" "$bench_bin" "${cargs[@]}" --steps "$steps" --warmup "$warmup"
      if [[ -n "$BASELINE" ]]; then
        run_one "$shape" "$envname" baseline "$BASELINE/bench/bench_train" "${cargs[@]}" \
          --steps "$steps" --warmup "$warmup"
      fi
    done
    if [[ "$shape" != gpt2 || "$TORCH_GPT2" == 1 ]]; then
      run_one "$shape" "$envname" "" "$python" "$here/torch_gpt.py" --bench --config "${cargs[0]}" \
        "${cargs[@]:1}" --steps "$steps" --warmup "$warmup" --threads "$THREADS"
    fi
  done
done
echo "# JSON lines in $OUT" >&2

"$python" "$here/compare_table.py" "$OUT"

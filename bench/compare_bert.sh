#!/usr/bin/env bash
# polyhead against HF transformers on BERT, on one shape, in one environment, with the same
# thread count: training throughput of bench_train (model.type bert) against
# hf_bert.py --bench (BertForMaskedLM trained with torch.optim.AdamW). Prints the table of
# compare_table.py: tokens/s (B x T per step), ms/step, peak RSS, MFU (polyhead), and
# polyhead's ratio to HF (the row labelled "torch": HF transformers on PyTorch).
#
#   bench/compare_bert.sh [BUILD_DIR]     (default BUILD_DIR: build-bench in the source root)
#
# The shape is the BERT issue's: configs/bert-tiny.yaml (post-LN, exact GELU, LayerNorm eps
# 1e-12, its 260-token vocabulary, no sentence head) with 6 layers, d 384, 6 heads, FFN 1536,
# T = 128, 32 sequences per step, 15% of the positions predicted (P = 20), dropout 0.1 on the
# embeddings, attention probabilities and residual branches (HF's hidden and attention dropout),
# both programs on random tokens in two segments with no padding.
#
# Environment knobs (all optional):
#   THREADS=2            OMP_NUM_THREADS for both programs; torch.set_num_threads for HF
#   STEPS=10, WARMUP=2   timed / untimed training steps per run
#   VOCAB=260            model.vocab_size (e.g. 30522 for BERT's WordPiece vocabulary)
#   BLAS_ENV="as-is unset"   as compare_encdec.sh
#   REPEAT=1             runs per program and BLAS environment (the table shows medians)
#   QUIET_MAX=900, RETRIES=3, OUT=file   as compare_torch.sh
# Anything else in the environment (e.g. OMP_WAIT_POLICY, which the table then shows) reaches
# both programs unchanged.
# Needs Debian's /usr/bin/python3 with python3-torch, -h5py, -numpy, -yaml and transformers in
# .venv/hf (launch/pyenv.sh installs it; HF_PATH=DIR overrides it): see hf_bert.py.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
build="${1:-$root/build-bench}"
python=/usr/bin/python3
HF_PATH="${HF_PATH:-$root/.venv/hf}"
THREADS="${THREADS:-2}"
STEPS="${STEPS:-10}"
WARMUP="${WARMUP:-2}"
VOCAB="${VOCAB:-260}"
BLAS_ENV="${BLAS_ENV:-as-is unset}"
REPEAT="${REPEAT:-1}"
QUIET_MAX="${QUIET_MAX:-900}"
RETRIES="${RETRIES:-3}"
OUT="${OUT:-$(mktemp /tmp/compare_bert.XXXXXX.jsonl)}"

[[ -x "$build/bench/bench_train" ]] ||
  { echo "compare_bert.sh: no $build/bench/bench_train (build the bench_train target)" >&2; exit 2; }
PYTHONPATH="$HF_PATH" "$python" -c 'import torch, h5py, numpy, yaml, transformers' 2>/dev/null ||
  { echo "compare_bert.sh: $python cannot import torch/h5py/numpy/yaml/transformers" \
      "with PYTHONPATH=$HF_PATH (run launch/pyenv.sh)" >&2; exit 2; }

config="$root/configs/bert-tiny.yaml"
shape=(model.n_layers=6 model.d_model=384 model.n_heads=6 model.d_ff=1536 model.seq_len=128
  model.vocab_size="$VOCAB" model.sentence_head=none model.dropout.embed=0.1
  model.dropout.attn=0.1 model.dropout.resid=0.1 train.micro_batch=32 data.mlm.prob=0.15
  data.mlm.max_predictions=0)
shape_name="bert L6 d384 T128 B32 V$VOCAB"

envcmd_of() {  # the env command of a BLAS environment name
  if [[ "$1" == unset ]]; then
    echo env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "OMP_NUM_THREADS=$THREADS"
  else
    echo env "OMP_NUM_THREADS=$THREADS"
  fi
}

measure() {  # shape envname label -- command...: one JSON line on stdout
  local s="$1" e="$2" l="$3"
  shift 3
  "$python" "$here/quiet_measure.py" "$s" "$e" "$l" "$QUIET_MAX" "$RETRIES" "$@"
}

: >"$OUT"
echo "# $(date -u +%FT%TZ) $(uname -n): $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "# OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-<unset>} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-<unset>}" \
  "OMP_WAIT_POLICY=${OMP_WAIT_POLICY-<unset>} threads=$THREADS" >&2
for envname in $BLAS_ENV; do
  read -r -a envcmd <<<"$(envcmd_of "$envname")"
  echo "== training, $shape_name ($envname BLAS environment)" >&2
  for ((rep = 0; rep < REPEAT; ++rep)); do
    measure "$shape_name" "$envname" "" -- "${envcmd[@]}" "$build/bench/bench_train" \
      "$config" "${shape[@]}" --steps "$STEPS" --warmup "$WARMUP" >>"$OUT"
    measure "$shape_name" "$envname" torch -- "${envcmd[@]}" "PYTHONPATH=$HF_PATH" "$python" \
      "$here/hf_bert.py" --bench --config "$config" "${shape[@]}" --steps "$STEPS" \
      --warmup "$WARMUP" --threads "$THREADS" >>"$OUT"
  done
done
echo "# JSON lines in $OUT" >&2

"$python" "$here/compare_table.py" "$OUT"

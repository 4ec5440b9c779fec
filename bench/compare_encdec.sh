#!/usr/bin/env bash
# polyhead against PyTorch on the encoder-decoder, on one shape, in one environment, with the
# same thread count: training throughput (bench_train against torch_encdec.py --bench) and beam
# search (polyhead translate against torch_encdec.py --bench-translate, a PyTorch beam search
# with a key/value cache) on the same checkpoint and sentences. Prints two tables (see
# compare_table.py): non-pad target tokens/s per training step, and sentences/s of translation
# with the share of sentences both translate alike.
#
#   bench/compare_encdec.sh [BUILD_DIR]     (default BUILD_DIR: build-bench in the source root)
#
# The shape is the encoder-decoder issue's: configs/encdec-tiny.yaml (the synthetic task's
# 384-token vocabulary) with 3 + 3 layers, d 384, 6 heads, FFN 1536, S = T = 128, 16 pairs per
# step, and the paper's defaults for the rest (post-LN, sinusoidal positions, ReLU, shared
# embeddings, dropout 0.1 on the embeddings and residual branches, label smoothing 0.1).
#
# Translation needs a trained checkpoint of that shape (an untrained model never ends a
# sentence, so its search runs to the maximum length): unless CKPT is given, the synthetic task
# is trained at the shape once into RUN (reused on later calls, TRAIN_STEPS steps, both cores;
# 24 minutes on the shared 2-core machine), and LINES of its held-out sources are
# translated. polyhead's decoding time is the wall time of `polyhead translate` on the
# sentences minus that on an empty input (start-up and loading the checkpoint); torch's is
# timed inside the script around the search (tokenizing, searching, detokenizing).
#
# Environment knobs (all optional):
#   THREADS=2            OMP_NUM_THREADS for every program; torch.set_num_threads for torch
#   PARTS="train translate"  what to measure
#   STEPS=10, WARMUP=2   timed / untimed training steps per run
#   BLAS_ENV="as-is unset"   as-is: the machine's OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE; unset:
#                        both removed, for every program alike
#   CKPT=FILE            the encdec checkpoint to translate with (its shape is then the one
#                        measured; LINES then come from SOURCES=FILE, REFERENCES=FILE optional)
#   RUN=DIR              where the checkpoint is trained (default /tmp/polyhead-encdec-bench)
#   TRAIN_STEPS=600      its training steps
#   LINES=512            sentences translated; BEAM=4; BATCH=32 (sentences decoded at once)
#   REPEAT=1             runs per program and BLAS environment (the table shows medians)
#   QUIET_MAX=900, RETRIES=3, OUT=file   as compare_torch.sh
# Anything else in the environment (e.g. OMP_WAIT_POLICY, which the tables then show) reaches
# every program unchanged.
# Needs Debian's /usr/bin/python3 with python3-torch, -h5py, -numpy, -yaml (see torch_encdec.py).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
build="${1:-$root/build-bench}"
python=/usr/bin/python3
THREADS="${THREADS:-2}"
PARTS="${PARTS:-train translate}"
STEPS="${STEPS:-10}"
WARMUP="${WARMUP:-2}"
BLAS_ENV="${BLAS_ENV:-as-is unset}"
CKPT="${CKPT:-}"
RUN="${RUN:-/tmp/polyhead-encdec-bench}"
TRAIN_STEPS="${TRAIN_STEPS:-600}"
LINES="${LINES:-512}"
BEAM="${BEAM:-4}"
BATCH="${BATCH:-32}"
REPEAT="${REPEAT:-1}"
QUIET_MAX="${QUIET_MAX:-900}"
RETRIES="${RETRIES:-3}"
OUT="${OUT:-$(mktemp /tmp/compare_encdec.XXXXXX.jsonl)}"

for bin in "$build/bench/bench_train" "$build/polyhead"; do
  [[ -x "$bin" ]] || { echo "compare_encdec.sh: no $bin (build polyhead and bench_train)" >&2; exit 2; }
done
"$python" -c 'import torch, h5py, numpy, yaml' 2>/dev/null ||
  { echo "compare_encdec.sh: $python cannot import torch/h5py/numpy/yaml" >&2; exit 2; }

config="$root/configs/encdec-tiny.yaml"
shape=(model.encoder_layers=3 model.decoder_layers=3 model.d_model=384 model.n_heads=6
  model.d_ff=1536 model.src_seq_len=128 model.seq_len=128 model.dropout.embed=0.1
  model.dropout.resid=0.1 model.dropout.attn=0.0 train.micro_batch=16 train.label_smoothing=0.1)
shape_name="3+3 d384 S=T=128"

envcmd_of() {  # the env command of a BLAS environment name
  if [[ "$1" == unset ]]; then
    echo env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "OMP_NUM_THREADS=$THREADS"
  else
    echo env "OMP_NUM_THREADS=$THREADS"
  fi
}

measure() {  # shape envname label [--stdout FILE] -- command...: one JSON line on stdout
  local s="$1" e="$2" l="$3"
  shift 3
  "$python" "$here/quiet_measure.py" "$s" "$e" "$l" "$QUIET_MAX" "$RETRIES" "$@"
}

tmp="$(mktemp -d /tmp/compare_encdec.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
: >"$OUT"
echo "# $(date -u +%FT%TZ) $(uname -n): $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "# OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-<unset>} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-<unset>}" \
  "OMP_WAIT_POLICY=${OMP_WAIT_POLICY-<unset>} threads=$THREADS" >&2

if [[ " $PARTS " == *" train "* ]]; then
  for envname in $BLAS_ENV; do
    read -r -a envcmd <<<"$(envcmd_of "$envname")"
    echo "== training, $shape_name ($envname BLAS environment)" >&2
    for ((rep = 0; rep < REPEAT; ++rep)); do
      measure "$shape_name" "$envname" "" -- "${envcmd[@]}" "$build/bench/bench_train" \
        "$config" "${shape[@]}" --steps "$STEPS" --warmup "$WARMUP" >>"$OUT"
      measure "$shape_name" "$envname" torch -- "${envcmd[@]}" "$python" "$here/torch_encdec.py" \
        --bench --config "$config" "${shape[@]}" --steps "$STEPS" --warmup "$WARMUP" \
        --threads "$THREADS" >>"$OUT"
    done
  done
fi

if [[ " $PARTS " == *" translate "* ]]; then
  if [[ -z "$CKPT" ]]; then
    CKPT="$RUN/checkpoints/step_$(printf %08d "$TRAIN_STEPS").h5"
    if [[ ! -f "$CKPT" ]]; then
      echo "== training the checkpoint: $TRAIN_STEPS steps into $RUN (log: $RUN.log)" >&2
      OMP_NUM_THREADS="$THREADS" "$build/polyhead" train "$config" "${shape[@]}" \
        train.max_steps="$TRAIN_STEPS" optim.lr=5.0e-4 train.eval_interval=0 \
        checkpoint.interval=0 run.dir="$RUN" >"$RUN.log" 2>&1 ||
        { echo "compare_encdec.sh: training failed, see $RUN.log" >&2; exit 1; }
      grep -E "^eval|exact match" "$RUN.log" | tail -2 >&2 || true
    fi
    SOURCES="${SOURCES:-$RUN/data/val.src}"
    REFERENCES="${REFERENCES:-$RUN/data/val.tgt}"
  fi
  [[ -n "${SOURCES:-}" && -f "$SOURCES" ]] ||
    { echo "compare_encdec.sh: give SOURCES=FILE with CKPT" >&2; exit 2; }
  head -n "$LINES" "$SOURCES" >"$tmp/src.txt"
  : >"$tmp/empty.txt"
  refs=""
  if [[ -n "${REFERENCES:-}" && -f "$REFERENCES" ]]; then
    head -n "$LINES" "$REFERENCES" >"$tmp/ref.txt"
    refs="$tmp/ref.txt"
  fi
  name="translate: $(basename "$CKPT")"
  for envname in $BLAS_ENV; do
    read -r -a envcmd <<<"$(envcmd_of "$envname")"
    echo "== $name, beam $BEAM, $(wc -l <"$tmp/src.txt") sentences ($envname BLAS environment)" >&2
    ph=("${envcmd[@]}" "$build/polyhead" translate --checkpoint "$CKPT" --beam "$BEAM" --batch "$BATCH")
    for ((rep = 0; rep < REPEAT; ++rep)); do
      measure "$name" "$envname" polyhead --stdout "$tmp/ph.txt" -- "${ph[@]}" \
        --input "$tmp/src.txt" >"$tmp/ph.json"
      measure "$name" "$envname" polyhead --stdout "$tmp/ph0.txt" -- "${ph[@]}" \
        --input "$tmp/empty.txt" >"$tmp/ph0.json"
      measure "$name" "$envname" torch -- "${envcmd[@]}" "$python" "$here/torch_encdec.py" \
        --bench-translate --checkpoint "$CKPT" --input "$tmp/src.txt" --beam "$BEAM" \
        --batch "$BATCH" --threads "$THREADS" --output "$tmp/pt.txt" >"$tmp/pt.json"
      # One record each: polyhead's decoding time = its wall time less the empty input's.
      "$python" - "$tmp" "$BEAM" "$BATCH" "$refs" >>"$OUT" <<'EOF'
import json, sys
tmp, beam, batch, refs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
lines = lambda p: open(p, encoding="utf-8").read().splitlines()
ph, ph0, pt = (json.load(open(f"{tmp}/{n}.json")) for n in ("ph", "ph0", "pt"))
ph_out, pt_out = lines(f"{tmp}/ph.txt"), lines(f"{tmp}/pt.txt")
n = len(lines(f"{tmp}/src.txt"))
assert len(ph_out) == n and len(pt_out) == n, "a program did not translate every line"
ph.update(startup_s=ph0["wall_s"], decode_s=round(ph["wall_s"] - ph0["wall_s"], 4),
          other_cpu_frac=max(ph["other_cpu_frac"], ph0["other_cpu_frac"]), sentences=n)
ph["sentences_per_s"] = round(n / ph["decode_s"], 2)
ph["agreement"] = sum(a == b for a, b in zip(ph_out, pt_out)) / n
for rec, out in ((ph, ph_out), (pt, pt_out)):
    rec.update(kind="translate", beam=beam, batch=batch)
    if refs:
        rec["exact_match"] = sum(a == b for a, b in zip(out, lines(refs))) / n
    print(json.dumps(rec))
print(f"    polyhead {ph['sentences_per_s']} sentences/s, torch {pt['sentences_per_s']}; "
      f"{100 * ph['agreement']:.1f}% of the sentences alike", file=sys.stderr)
EOF
    done
  done
fi
echo "# JSON lines in $OUT" >&2

"$python" "$here/compare_table.py" "$OUT"

#!/usr/bin/env bash
# tools/plot.py on real runs: trains configs/tiny.yaml (shrunk to seconds) on one rank and on two
# (mpiexec, dp=2, the same global batch), plots both into one PNG and checks the file: the PNG
# signature, IHDR's width and height as asked with --size (and the default width without it),
# a size that only a drawn figure reaches; the MFU panel is left out with a note when no run logs
# mfu and drawn when one does; bad input (a directory without metrics.jsonl, an empty file, a
# malformed line, an --out that cannot be written) gets its one-line message, exit status 1,
# no traceback, and leaves an existing --out file as it was.
# Skips (exit 77) when /usr/bin/python3 lacks matplotlib, yaml or PIL (python3-matplotlib).
# usage: tests/plot_e2e.sh POLYHEAD_BINARY MPIEXEC        (a ctest: plot_e2e)
set -uo pipefail
bin=$(readlink -f "$1")
mpiexec=$2
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
plot="$root/tools/plot.py"
fail() {
  echo "plot_e2e: FAILED: $*" >&2
  exit 1
}
if ! missing=$(/usr/bin/python3 -c "import matplotlib, yaml, PIL" 2>&1 | tail -1); then
  echo "plot_e2e: SKIPPED: /usr/bin/python3 cannot import matplotlib/yaml/PIL (install" \
    "python3-matplotlib python3-yaml): $missing"
  exit 77
fi
work=$(mktemp -d /tmp/polyhead-plot-XXXXXX)
trap 'rm -rf "$work"' EXIT
# The nested mpiexec must not inherit an enclosing MPI job's variables.
for v in $(env | grep -o '^\(OMPI\|PMIX\|OPAL\)[A-Za-z0-9_]*'); do unset "$v"; done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1

overrides="model.d_model=64 model.seq_len=26 data.task_train_problems=4000
  data.task_val_problems=64 train.max_steps=30 train.global_batch=16 train.micro_batch=8
  train.eval_interval=10 train.eval_batches=2 optim.warmup_steps=5 log.interval=2
  checkpoint.interval=0 sample.count=0 runtime.threads=1"
# shellcheck disable=SC2086
"$bin" train "$root/configs/tiny.yaml" $overrides run.dir="$work/dp1" >"$work/dp1.log" 2>&1 ||
  { tail -20 "$work/dp1.log"; fail "training on one rank"; }
# shellcheck disable=SC2086
"$mpiexec" -n 2 --oversubscribe --bind-to none "$bin" train "$root/configs/tiny.yaml" $overrides \
  run.dir="$work/dp2" >"$work/dp2.log" 2>&1 || { tail -20 "$work/dp2.log"; fail "training on two ranks"; }
for d in dp1 dp2; do
  [ "$(grep -c '"val_loss"' "$work/$d/metrics.jsonl")" -ge 3 ] || fail "$d: fewer than 3 evaluations"
done

# png_field FILE OFFSET: the big-endian 32-bit number at OFFSET.
png_field() { od -An -tu1 -j"$2" -N4 "$1" | awk '{print (($1*256+$2)*256+$3)*256+$4}'; }
check_png() {  # FILE WIDTH HEIGHT
  [ "$(od -An -tx1 -N8 "$1" | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "$1: no PNG signature"
  [ "$(dd if="$1" bs=1 skip=12 count=4 2>/dev/null)" = "IHDR" ] || fail "$1: no IHDR first"
  [ "$(png_field "$1" 16)" = "$2" ] || fail "$1: width $(png_field "$1" 16), asked $2"
  [ -z "$3" ] || [ "$(png_field "$1" 20)" = "$3" ] || fail "$1: height $(png_field "$1" 20), asked $3"
  # Blank figures of this size compress to a few KB; eight panels of curves and text do not.
  [ "$(stat -c %s "$1")" -gt 20000 ] || fail "$1: only $(stat -c %s "$1") bytes"
}

out="$work/runs.png"
"$plot" "$work/dp1" "$work/dp2" --labels "dp=1" "dp=2" --size 900x700 --out "$out" \
  >"$work/plot.log" 2>&1 || { cat "$work/plot.log"; fail "plot of both runs"; }
check_png "$out" 900 700
grep -q "wrote $out" "$work/plot.log" || fail "no 'wrote' line: $(cat "$work/plot.log")"
grep -q "no run logs bleu" "$work/plot.log" || fail "a GPT run has no BLEU, yet no note says so"

# MFU: a copy without the key gets the note, a copy with it gets the panel instead.
cp -r "$work/dp1" "$work/no_mfu" && cp -r "$work/dp1" "$work/with_mfu"
sed -i 's/, "mfu": [^,}]*//' "$work/no_mfu/metrics.jsonl"
sed -i 's/, "mfu": [^,}]*//; s/}$/, "mfu": 0.25}/' "$work/with_mfu/metrics.jsonl"
"$plot" "$work/no_mfu" --out "$work/no_mfu.png" >"$work/no_mfu.log" 2>&1 || fail "plot without mfu"
grep -q "no run logs mfu: the MFU panel is left out" "$work/no_mfu.log" ||
  fail "no MFU note: $(cat "$work/no_mfu.log")"
check_png "$work/no_mfu.png" 1200 ""
"$plot" "$work/with_mfu" "$work/no_mfu" --out "$work/mfu.png" >"$work/mfu.log" 2>&1 ||
  fail "plot with mfu: $(cat "$work/mfu.log")"
grep -q "no run logs mfu" "$work/mfu.log" && fail "a run logs mfu, yet: $(cat "$work/mfu.log")"
check_png "$work/mfu.png" 1200 ""

# Bad input: EXPECTED_MESSAGE then the arguments; --out is the good PNG, which must survive.
cp "$out" "$work/good.png"
expect_error() {
  local want=$1 got
  shift
  got=$("$plot" "$@" 2>&1) && fail "plot $* succeeded; expected: $want"
  [ "$(printf '%s\n' "$got" | grep -c .)" = 1 ] || fail "plot $*: more than one line: $got"
  [[ "$got" == *"$want"* ]] || fail "plot $*: expected '$want', got: $got"
  cmp -s "$out" "$work/good.png" || fail "plot $*: changed $out"
}
mkdir -p "$work/no_metrics" "$work/empty" "$work/broken"
: >"$work/empty/metrics.jsonl"
cp "$work/dp1/config.yaml" "$work/broken/"
{ head -2 "$work/dp1/metrics.jsonl"; head -c 40 "$work/dp1/metrics.jsonl" | tr -d '\n'; echo; } \
  >"$work/broken/metrics.jsonl"
expect_error "plot: $work/no_metrics/metrics.jsonl: no such file" "$work/dp1" "$work/no_metrics" --out "$out"
expect_error "plot: $work/empty/metrics.jsonl: empty" "$work/empty" --out "$out"
expect_error "plot: $work/broken/metrics.jsonl:3: not valid JSON" "$work/broken" --out "$out"
expect_error "plot: $work/none/x.png: cannot write" "$work/dp1" --out "$work/none/x.png"
expect_error "plot: $work/dp1: cannot write: it is a directory" "$work/dp1" --out "$work/dp1"
echo "plot_e2e: OK (two runs plotted into $(stat -c %s "$out") bytes of 900x700 PNG; bad input refused)"

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

# Runs a command and reports on stderr its output; prints its last line (the JSON record)
# extended with shape, env, and the CPU other processes used meanwhile (other_cpu_frac: their
# CPU-seconds over wall x cores; /proc/stat before and after, minus the child's rusage).
# Waits first (up to QUIET_MAX s) until the machine is idle; measures again when disturbed.
measure() {
  "$python" - "$@" <<'EOF'
import json, os, subprocess, sys, time
shape, envname, label = sys.argv[1], sys.argv[2], sys.argv[3]
quiet_max, retries = float(sys.argv[4]), int(sys.argv[5])
cmd = sys.argv[6:]
hz, ncpu = os.sysconf("SC_CLK_TCK"), os.cpu_count()
def stat():
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return sum(f[:8]), f[3] + f[4]  # total, idle + iowait (jiffies)
def busy_over(seconds):
    t0, i0 = stat(); time.sleep(seconds); t1, i1 = stat()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)
def wait_quiet():
    deadline, waited = time.time() + quiet_max, 0.0
    while quiet_max > 0 and busy_over(3.0) > 0.10 and time.time() < deadline:
        waited += 3.0
    if waited:
        print(f"    (waited {waited:.0f} s for idle cores)", file=sys.stderr)
def run():
    wait_quiet()
    t0, i0 = stat(); w0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.time() - w0; t1, i1 = stat()
    for line in out.splitlines():
        print("    " + line, file=sys.stderr)
    if status != 0:
        sys.exit(f"compare_torch.sh: failed ({status}): {' '.join(cmd)}")
    rec = json.loads(out.strip().splitlines()[-1])
    own = ru.ru_utime + ru.ru_stime
    busy = ((t1 - t0) - (i1 - i0)) / hz
    rec.update(wall_s=round(wall, 2), cpu_s=round(own, 2),
               other_cpu_frac=round(max(0.0, busy - own) / (wall * ncpu), 3))
    return rec
for attempt in range(1 + retries):
    rec = run()
    if rec["other_cpu_frac"] <= 0.05:
        break
    print(f"    (other processes took {100 * rec['other_cpu_frac']:.0f}% of the CPU: "
          f"{'measuring again' if attempt < retries else 'kept, see the other load column'})",
          file=sys.stderr)
if os.environ.get("OMP_WAIT_POLICY"):
    envname += ", OMP_WAIT_POLICY=" + os.environ["OMP_WAIT_POLICY"]
rec.update(shape=shape, env=envname)
if label:
    rec["bench"] = label
print(json.dumps(rec))
EOF
}

run_one() {  # shape envname label command... (label: "" keeps the program's own name)
  local shape="$1" envname="$2" label="$3"
  shift 3
  local -a envcmd=(env "OMP_NUM_THREADS=$THREADS")
  [[ "$envname" == unset ]] && envcmd=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "OMP_NUM_THREADS=$THREADS")
  measure "$shape" "$envname" "$label" "$QUIET_MAX" "$RETRIES" "${envcmd[@]}" "$@" >>"$OUT"
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

"$python" - "$OUT" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
# One row per (shape, environment, program): the median of each figure over its runs.
rows = []
for r in runs:
    key = (r["shape"], r["env"], r["bench"])
    if any((x["shape"], x["env"], x["bench"]) == key for x in rows):
        continue
    same = [x for x in runs if (x["shape"], x["env"], x["bench"]) == key]
    row = dict(r, runs=len(same))
    for f in ("tokens_per_s", "ms_per_step", "peak_rss_mb", "mfu", "other_cpu_frac"):
        if f in r:
            row[f] = statistics.median(x[f] for x in same)
    rows.append(row)
print("| shape | BLAS env | program | B x T | steps x runs | tokens/s | ms/step | peak RSS MiB "
      "| MFU | polyhead/torch tok/s | RSS polyhead/torch | polyhead/baseline tok/s | other load |")
print("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
def peer_of(r, bench):
    return next((p for p in rows if p["shape"] == r["shape"] and p["env"] == r["env"]
                 and p["bench"] == bench), None)
for r in rows:
    torch, base = peer_of(r, "torch"), peer_of(r, "baseline")
    ratio = rss = vs_base = ""
    if r["bench"] == "polyhead" and torch:
        ratio = f"{r['tokens_per_s'] / torch['tokens_per_s']:.2f}x"
        rss = f"{r['peak_rss_mb'] / torch['peak_rss_mb']:.2f}"
    if r["bench"] == "polyhead" and base:
        vs_base = f"{r['tokens_per_s'] / base['tokens_per_s']:.3f}x"
    mfu = f"{100 * r['mfu']:.1f}%" if "mfu" in r else ""
    print(f"| {r['shape']} | {r['env']} | {r['bench']} | {r['B']}x{r['T']} | {r['steps']} x {r['runs']} "
          f"| {r['tokens_per_s']:.0f} | {r['ms_per_step']:.1f} | {r['peak_rss_mb']:.0f} | {mfu} "
          f"| {ratio} | {rss} | {vs_base} | {100 * r['other_cpu_frac']:.0f}% |")
EOF

#!/usr/bin/env bash
# polyhead-bundle/run.sh [COMMAND [ARGS...]] — sets up the bundle's environment (env.sh),
# checks the node, then runs COMMAND inside that environment, e.g.
#   polyhead-bundle/run.sh polyhead train polyhead-bundle/configs/tiny.yaml runtime.device=cuda
#   polyhead-bundle/run.sh mpirun -n 4 --bind-to none polyhead train ... runtime.device=cuda
# Without a command it runs a smoke test: the gpu-labelled test programs where a GPU is
# present, then a short run of configs/tiny.yaml on the best device (cuda, else cpu) in a
# temporary folder (POLYHEAD_SMOKE_STEPS steps, default 100).
# The node check: the dynamic loader resolves every library of every carried program (the
# missing one is named, with whether the node or the bundle should provide it), then the GPU,
# the driver and the NCCL library found are reported. Exit status: 3 when the node check
# fails, else the command's (the smoke test: 1 when a part failed).
set -uo pipefail
here=${BASH_SOURCE[0]%/*}
[ "$here" = "${BASH_SOURCE[0]}" ] && here=.
# shellcheck source=bundle/env.sh
source "$here/env.sh" || exit 3
root=$POLYHEAD_BUNDLE
loader=/lib64/ld-linux-x86-64.so.2
[ -x "$loader" ] || {
  echo "run.sh: no dynamic loader at $loader: this node is not an x86-64 glibc system" >&2
  exit 3
}

# --- the node check ---------------------------------------------------------------------
# trace FILE: the loader's list of FILE's libraries, a missing one as "NAME => not found"
# (ldd's way; `ld.so --list` would stop at the first missing library instead).
trace() { LD_TRACE_LOADED_OBJECTS=1 "$loader" "$1" 2>&1; }
node_re='^lib(cuda|cudart|cublas|cublasLt|nccl|nvidia-ml)\.so'
programs=("$root"/bin/polyhead "$root"/bin/bench_train "$root"/bin/orterun "$root"/bin/orted)
for t in "$root"/tests/test_*; do [ -x "$t" ] && programs+=("$t"); done
failed=0
for p in "${programs[@]}"; do
  [ -e "$p" ] || continue
  list=$(trace "$p")
  while read -r name _; do
    if [[ $name =~ $node_re ]]; then
      echo "run.sh: ${p#"$root"/} needs $name, which the node provides (CUDA toolkit / NCCL) and" \
        "the loader does not find: load the CUDA module or add its lib64 and NCCL's lib folder" \
        "(pip: site-packages/nvidia/nccl/lib) to LD_LIBRARY_PATH" >&2
    else
      echo "run.sh: ${p#"$root"/} needs $name, which is not in the bundle: a bundle defect" \
        "(remake it with launch/bundle.sh)" >&2
    fi
    failed=1
  done < <(grep ' => not found' <<<"$list" | sort -u)
  if grep -q 'version `GLIBC_' <<<"$list"; then
    echo "run.sh: the node's glibc is too old for ${p#"$root"/} (needs 2.36 or newer):" \
      "$(grep -o 'version `GLIBC_[0-9.]*' <<<"$list" | sort -uV | tail -1 | tr -d '`')" >&2
    failed=1
  elif grep -q ': version `' <<<"$list"; then
    echo "run.sh: ${p#"$root"/}: $(grep -m1 ': version `' <<<"$list" | sed 's/^[[:space:]]*//')" >&2
    failed=1
  fi
done
[ $failed -eq 0 ] || exit 3
polyhead_list=$(trace "$root/bin/polyhead")
echo "bundle: $root ($("$root/bin/polyhead" --version))"
case ":$LD_LIBRARY_PATH:" in
  *":$root/lib/fallback:"*) echo "libstdc++: the bundle's (the node's is missing or too old)" ;;
  *) echo "libstdc++: the node's ($(awk '$1 == "libstdc++.so.6" {print $3}' <<<"$polyhead_list"))" ;;
esac

gpus=0
if command -v nvidia-smi >/dev/null 2>&1; then
  gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ')
  nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader 2>/dev/null |
    sed 's/^/gpu: /'
  [ "$gpus" -gt 0 ] || echo "gpu: nvidia-smi finds no GPU"
else
  echo "gpu: none (no nvidia-smi on PATH)"
fi
if [ -r /proc/driver/nvidia/version ]; then
  echo "driver: $(head -1 /proc/driver/nvidia/version)"
else
  echo "driver: no NVIDIA kernel driver loaded (/proc/driver/nvidia/version missing)"
fi
nccl=$(awk '$1 ~ /^libnccl\.so/ {print $3}' <<<"$polyhead_list")
if [ -n "$nccl" ]; then
  real=$(readlink -f "$nccl")
  version=$(grep -aoEm1 'NCCL version [0-9]+\.[0-9]+\.[0-9]+(\+cuda[0-9.]+)?' "$real" 2>/dev/null | head -1)
  echo "nccl: $nccl -> $real${version:+ ($version)}"
  echo "cuda runtime: $(awk '$1 ~ /^libcudart\.so/ {print $3}' <<<"$polyhead_list")"
else
  echo "nccl: not used (a CPU-only build: polyhead links no CUDA/NCCL library)"
fi

# --- the command, or the smoke test -----------------------------------------------------
[ $# -gt 0 ] && exec "$@"

status=0
cuda_build=0
[ -n "$nccl" ] && cuda_build=1
if [ "$gpus" -gt 0 ] && [ -d "$root/tests" ]; then
  for t in "$root"/tests/test_*; do
    echo "== ${t#"$root"/}"
    "$t"
    rc=$?
    case $rc in 0) ;; 77) echo "(skipped: see above)" ;; *) echo "FAILED: ${t#"$root"/} (exit $rc)" && status=1 ;; esac
  done
else
  echo "== gpu tests: not run (no GPU on this node or no test programs in this bundle)"
fi
device=cpu
[ "$gpus" -gt 0 ] && [ $cuda_build -eq 1 ] && device=cuda
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
steps=${POLYHEAD_SMOKE_STEPS:-100}
echo "== tiny on $device: $steps steps in $tmp"
if polyhead train "$root/configs/tiny.yaml" train.max_steps="$steps" optim.warmup_steps=$((steps / 10)) \
  train.eval_interval=0 log.interval=20 sample.count=1 runtime.device=$device run.dir="$tmp/tiny"; then
  echo "smoke test: tiny trained on $device"
else
  echo "FAILED: tiny on $device" && status=1
fi
[ $status -eq 0 ] && echo "smoke test: passed" || echo "smoke test: FAILED"
exit $status

#!/usr/bin/env bash
# tests/bundle_chroot.sh SOURCE_DIR BUILD_DIR — the bundle (launch/bundle.sh) on a machine
# without the Debian packages: checks bundle.sh's messages for bad input, makes a bundle of
# BUILD_DIR (under 20 MiB), unpacks it into a chroot that holds glibc, bash and the few tools
# the scripts use and nothing of Open MPI, HDF5, yaml-cpp, OpenBLAS or libstdc++, and runs
# there: run.sh's node check and its messages for a missing library, `polyhead --version`, a
# 20-step CPU run whose HDF5 checkpoint `polyhead eval` reads, and a 2-rank run with the
# bundle's mpirun. A CUDA build's CUDA/NCCL libraries are bind-mounted read-only where a GPU
# node has them (/usr/local/cuda/lib64, on LD_LIBRARY_PATH). Mounts live in a private mount
# namespace (unshare), so they vanish with it on every exit path. Exits 77 (skipped) where
# chroot or namespaces are refused.
set -euo pipefail
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
bundle_sh=$src/launch/bundle.sh
t0=$(date +%s)
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
tmp=$(mktemp -d /tmp/ph-bundle-test.XXXXXX)
# --one-file-system: never descend into a mount, should one have leaked. PH_BUNDLE_TEST_KEEP=1
# keeps the folder (the chroot) to look into.
trap 'exit 143' TERM INT HUP
trap '[ -n "${PH_BUNDLE_TEST_KEEP:-}" ] && echo "kept $tmp" || rm -rf --one-file-system "$tmp"' EXIT

# Bad input: one message, exit status 2.
expect_refusal() {  # expect_refusal MESSAGE_PART ARGS...
  local want=$1 out rc=0
  shift
  out=$("$bundle_sh" "$@" 2>&1) || rc=$?
  [ $rc -eq 2 ] || fail "bundle.sh $* exited $rc, expected 2: $out"
  [[ $out == *"$want"* ]] || fail "bundle.sh $*: expected '$want' in: $out"
  [ "$(wc -l <<<"$out")" -eq 1 ] || fail "bundle.sh $*: expected one line: $out"
}
mkdir "$tmp/empty"
expect_refusal "does not exist" "$tmp/nothing" "$tmp/b.tar.xz"
expect_refusal "has no polyhead executable" "$tmp/empty" "$tmp/b.tar.xz"
expect_refusal "is not a writable directory" "$build" "$tmp/missing/b.tar.xz"
expect_refusal "must end in .tar.xz" "$build" "$tmp/b.tar"
echo "bundle.sh refuses bad input with one message"

skip() {
  echo "SKIPPED: $*"
  exit 77
}
[ "$(id -u)" -eq 0 ] || skip "needs root for chroot and mount namespaces"
for tool in chroot unshare; do command -v $tool >/dev/null || skip "$tool is not installed"; done
unshare --mount --propagation private true 2>/dev/null || skip "mount namespaces are refused here"
command -v dpkg >/dev/null || skip "dpkg is needed to find glibc's files"

# The size users get: bundle.sh's default compression, whatever XZ_OPT says here.
env -u XZ_OPT "$bundle_sh" "$build" "$tmp/polyhead-bundle.tar.xz"
size=$(stat -c %s "$tmp/polyhead-bundle.tar.xz")
[ "$size" -lt $((20 * 1024 * 1024)) ] || fail "the bundle is $size bytes, over 20 MiB"
t1=$(date +%s)

# The node: glibc (libc6's libraries and loader), bash and the tools the scripts use, with
# their libraries; /etc files a node has.
root=$tmp/root
mkdir -p "$root"/usr/{bin,sbin,lib,lib64} "$root"/{etc,proc,sys,dev,tmp,opt,root}
for d in bin sbin lib lib64; do ln -s usr/$d "$root/$d"; done
copy() { cp -L --parents "$1" "$root"; }
while read -r f; do
  [ -f "$f" ] && copy "$f"
done < <(dpkg -L libc6 | grep -E '/(ld-linux[^/]*|lib[^/]*\.so[.0-9]*)$')
for tool in bash sh env cat ls mkdir rm mv cp mktemp head tail grep sed awk sort tr cut wc \
  readlink dirname basename id uname sleep stat timeout; do
  p=$(command -v "$tool") || fail "$tool not found on this machine"
  copy "$p"
  while read -r lib; do copy "$lib"; done < <(ldd "$p" | awk '$2 == "=>" && $3 ~ /^\// {print $3}')
done
printf 'root:x:0:0:root:/root:/bin/bash\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
printf '127.0.0.1 localhost\n127.0.1.1 %s\n' "$(hostname)" >"$root/etc/hosts"
forbidden=$(find "$root" \( -name 'libmpi*' -o -name 'libopen-pal*' -o -name 'libopen-rte*' \
  -o -name 'libpmix*' -o -name 'libhdf5*' -o -name 'libyaml-cpp*' -o -name 'libopenblas*' \
  -o -name 'libgfortran*' -o -name 'libstdc++*' -o -name 'libgcc_s*' \) -print)
[ -z "$forbidden" ] || fail "the chroot is not clean: $forbidden"
tar -C "$root/opt" -xJf "$tmp/polyhead-bundle.tar.xz"
B=$root/opt/polyhead-bundle
want=(bin/polyhead bin/mpirun bin/mpiexec bin/orted env.sh run.sh configs/tiny.yaml)
[ -x "$build/bench/bench_train" ] && want+=(bin/bench_train)
for t in "$build"/tests/test_gpu_* "$build"/tests/test_nccl_cuda*; do
  [ -x "$t" ] && want+=("tests/${t##*/}")
done
for f in "${want[@]}"; do [ -e "$B/$f" ] || fail "the bundle lacks $f"; done
carried_wrongly=$(find "$B" \( -name 'libc.so*' -o -name 'libm.so*' -o -name 'ld-linux*' \
  -o -name 'libcudart*' -o -name 'libcublas*' -o -name 'libnccl*' -o -name 'libcuda.so*' \) -print)
[ -z "$carried_wrongly" ] || fail "the bundle carries what the node provides: $carried_wrongly"
echo "bundle holds ${want[*]}"

# A CUDA build: the node provides CUDA and NCCL (the toolkit's lib64 on LD_LIBRARY_PATH).
binds=() node_ld='' cuda_build=0
while read -r name path; do
  dir=$(dirname "$(readlink -f "$path")")
  case " ${binds[*]} " in *" $dir:"*) continue ;; esac
  target=/usr/local/cuda/lib64
  [ ${#binds[@]} -gt 0 ] && target=/opt/nccl/lib$((${#binds[@]}))
  binds+=("$dir:$target")
  node_ld=${node_ld:+$node_ld:}$target
  cuda_build=1
  echo "node library folder: $dir (for $name) at $target"
done < <(ldd "$build/polyhead" | awk '$1 ~ /^lib(cudart|cublas|cublasLt|nccl)\.so/ && $3 ~ /^\// {print $1, $3}')

cat >"$root/check.sh" <<'EOF'
#!/bin/bash
# Runs inside the chroot.
set -uo pipefail
B=/opt/polyhead-bundle
fail() { echo "FAIL (in the chroot): $*" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
[ -n "$NODE_LD" ] && export LD_LIBRARY_PATH=$NODE_LD

out=$($B/run.sh polyhead --version 2>&1) || fail "run.sh polyhead --version: $out"
echo "$out"
[[ $out == *"libstdc++: the bundle's"* ]] || fail "the fallback libstdc++ was not chosen: $out"
[[ $(tail -1 <<<"$out") == "polyhead "[0-9]* ]] || fail "no version printed: $out"

# The node check names what is missing and who should provide it.
mv $B/lib/libyaml-cpp.so.0.7 /tmp/
out=$($B/run.sh true 2>&1); rc=$?
mv /tmp/libyaml-cpp.so.0.7 $B/lib/
[ $rc -eq 3 ] && [[ $out == *"needs libyaml-cpp.so.0.7, which is not in the bundle: a bundle defect"* ]] ||
  fail "run.sh with a library removed from the bundle (exit $rc): $out"
if [ "$CUDA_BUILD" = 1 ]; then
  out=$(env -u LD_LIBRARY_PATH $B/run.sh true 2>&1); rc=$?
  [ $rc -eq 3 ] && [[ $out == *"needs libcudart.so"*", which the node provides"* ]] ||
    fail "run.sh without the node's CUDA libraries (exit $rc): $out"
fi

out=$(POLYHEAD_SMOKE_STEPS=10 timeout 120 $B/run.sh 2>&1) || fail "run.sh's smoke test: $out"
[[ $out == *"tiny trained on cpu"*"smoke test: passed"* ]] || fail "run.sh's smoke test: $out"
echo "run.sh's smoke test passed (tiny on cpu)"

source $B/env.sh
[ "$(command -v polyhead)" = $B/bin/polyhead ] && [ "$POLYHEAD_BINARY" = $B/bin/polyhead ] &&
  [ "$POLYHEAD_SOURCE_DIR" = $B ] && [ -x "$POLYHEAD_MPIEXEC" ] || fail "env.sh's paths: $(env | grep POLYHEAD)"
if [ -x $B/bin/bench_train ]; then
  out=$(timeout 60 "$POLYHEAD_BENCH_TRAIN" $B/configs/tiny.yaml --steps 1 --warmup 0 2>&1) ||
    fail "bench_train: $out"
fi
for t in $B/tests/test_*; do  # without a GPU the gpu tests start and skip (77)
  [ -x "$t" ] || continue
  out=$(timeout 60 "$t" 2>&1); rc=$?
  [ $rc -eq 77 ] || [ $rc -eq 0 ] || fail "${t##*/} exited $rc: $out"
  echo "${t##*/}: exit $rc"
done
if [ "$CUDA_BUILD" = 1 ]; then  # the node's CUDA runtime loads and reports no device
  out=$(polyhead train $B/configs/tiny.yaml runtime.device=cuda run.dir=/tmp/r0 2>&1); rc=$?
  [ $rc -eq 2 ] && [[ $out == *"no CUDA device"* ]] || fail "runtime.device=cuda (exit $rc): $out"
fi
args="optim.warmup_steps=5 train.eval_interval=0 train.eval_batches=2 sample.count=0 runtime.device=cpu"
out=$(timeout 120 polyhead train $B/configs/tiny.yaml train.max_steps=20 log.interval=5 \
  $args run.dir=/tmp/r1 2>&1) || fail "20-step run: $out"
ckpt=$(ls /tmp/r1/checkpoints/*.h5 2>/dev/null | tail -1)
[ -n "$ckpt" ] || fail "no HDF5 checkpoint in /tmp/r1/checkpoints: $(ls -R /tmp/r1)"
out=$(polyhead eval --checkpoint "$ckpt" --batches 2 2>&1) || fail "eval of $ckpt: $out"
[[ $out == *"loss "[0-9]*" over "*" tokens"* ]] || fail "eval printed no loss: $out"
echo "20-step run: $ckpt; eval: $(grep -m1 '^loss' <<<"$out")"

out=$(timeout 120 mpirun -n 2 --oversubscribe --bind-to none polyhead train \
  $B/configs/tiny.yaml train.max_steps=10 log.interval=5 $args run.dir=/tmp/r2 2>&1) ||
  fail "2-rank run with the bundle's mpirun: $out"
[[ $out == *"dp=2 tp=1"* ]] || fail "the 2-rank run did not run dp=2: $out"
ls /tmp/r2/checkpoints/*.h5 >/dev/null 2>&1 || fail "the 2-rank run wrote no checkpoint"
echo "2-rank run with the bundle's mpirun: dp=2, checkpoint written"
EOF

# Mounts exist only inside this private namespace and go with it. The chroot starts with a
# clean environment, as a login on the node would (nothing of this machine's leaks in).
rc=0
# shellcheck disable=SC2016  # the script's variables expand inside the namespace
NODE_LD=$node_ld CUDA_BUILD=$cuda_build timeout -k 10 240 unshare --mount --propagation private \
  bash -euo pipefail -c '
root=$1; shift
mount -t proc proc "$root/proc" 2>/dev/null || mount --rbind /proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
mount -t tmpfs tmpfs "$root/dev/shm"
mount -t tmpfs tmpfs "$root/tmp"
for b in "$@"; do
  mkdir -p "$root${b#*:}"
  mount --bind "${b%%:*}" "$root${b#*:}"
  mount -o remount,bind,ro "$root${b#*:}"
done
env -i PATH=/usr/bin:/bin HOME=/root NODE_LD="$NODE_LD" CUDA_BUILD="$CUDA_BUILD" \
  "$(command -v chroot)" "$root" /bin/bash /check.sh' _ "$root" ${binds[@]+"${binds[@]}"} &
# In the background so that a signal reaches it at once (timeout passes it to the group).
child=$!
trap 'kill -TERM $child 2>/dev/null; wait $child; exit 143' TERM INT HUP
wait $child || rc=$?
[ $rc -eq 0 ] || fail "the checks in the chroot failed (exit $rc)"
t2=$(date +%s)
echo "PASSED: bundle $((size / 1024)) KiB; made in $((t1 - t0)) s, chroot checks $((t2 - t1)) s"

#!/usr/bin/env bash
# launch/bundle.sh [BUILD_DIR] OUT.tar.xz — packs a build into one relocatable folder,
# polyhead-bundle/, for compute nodes that have glibc (>= 2.36), the NVIDIA driver, the CUDA
# toolkit and NCCL but none of the Debian packages polyhead builds with:
#   bin/       polyhead, bench_train, mpirun/mpiexec (-> orterun), orted
#   tests/     the gpu-labelled test programs of a CUDA build (test_gpu_*, test_nccl_cuda_*)
#   configs/   the shipped configs (what the gpu tests read from the source tree)
#   lib/       every shared library the programs need (ldd), except glibc's own and the
#              node's CUDA/NCCL libraries (libcuda, libcudart, libcublas, libcublasLt, libnccl)
#   lib/fallback/  libstdc++ and libgcc_s, used only where the node's are missing or too old
#   lib/openmpi/, lib/pmix/  Open MPI's MCA plugins and PMIx's, without those that need UCX,
#              libfabric, verbs, PSM or OpenSHMEM (or anything that cannot be carried)
#   share/openmpi/, share/pmix/  help texts;  etc/  the MCA defaults files
#   env.sh     relocates all of it (source it);  run.sh  checks the node, then runs
#   MANIFEST.txt  where each piece came from, and the plugins left out with the reason
# BUILD_DIR defaults to ./build. xz runs with XZ_OPT (default -T0 -6). Exit status 2 for bad
# input, with one message.
set -euo pipefail

die() {
  echo "bundle.sh: $*" >&2
  exit 2
}

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
case $# in
  1) build=build out=$1 ;;
  2) build=$1 out=$2 ;;
  *) die "usage: launch/bundle.sh [BUILD_DIR] OUT.tar.xz" ;;
esac
[ -d "$build" ] || die "build directory '$build' does not exist (configure and build polyhead first)"
build=$(cd "$build" && pwd)
[ -x "$build/polyhead" ] || die "'$build' has no polyhead executable (build it: cmake --build '$build' --target polyhead)"
case $out in *.tar.xz) ;; *) die "output '$out' must end in .tar.xz" ;; esac
outdir=$(dirname "$out")
if [ ! -d "$outdir" ] || [ ! -w "$outdir" ]; then
  die "cannot write '$out': '$outdir' is not a writable directory"
fi
out=$(cd "$outdir" && pwd)/$(basename "$out")
for tool in ldd tar xz; do command -v $tool >/dev/null || die "'$tool' is needed and not on PATH"; done

work=$(mktemp -d)
trap 'rm -rf "$work" "$out.part"' EXIT
root=$work/polyhead-bundle
mkdir -p "$root"/{bin,lib/fallback,lib/openmpi,lib/pmix,share/openmpi,share/pmix,etc,configs}
manifest=$root/MANIFEST.txt

# Libraries that stay with the node: glibc's own, and the CUDA/NCCL libraries.
glibc_re='^(ld-linux[-a-z0-9_.]*|lib(c|m|mvec|pthread|dl|rt|resolv|util|anl|nsl|BrokenLocale|c_malloc_debug|thread_db|memusage|pcprofile|nss_[a-z]+))\.so'
node_re='^lib(cuda|cudart|cublas|cublasLt|nccl|nvidia-ml)\.so'
fallback_re='^lib(stdc\+\+|gcc_s)\.so'
# Plugins (and their libraries) that need a fabric stack the bundle does not carry.
banned_re='(ucx|ofi|openib|verbs|psm|portals)'
banned_lib_re='(libuc[pstm]|libfabric|libibverbs|librdmacm|libpsm|liboshmem|libmca_common_(ucx|ofi|verbs)|libportals)'
shmem_re='^mca_(atomic|memheap|scoll|spml|sshmem)_'

declare -A carried=()
# deps FILE: "name path" for every library the loader finds for FILE, "name -" for a missing
# one; glibc's and the node's libraries are left out. (One ldd per file: it is the slow part.)
deps() {
  ldd "$1" 2>/dev/null | while read -r name arrow path _; do
    [ "$arrow" = "=>" ] || continue
    [[ $name =~ $glibc_re || $name =~ $node_re ]] && continue
    [ "$path" = "not" ] && path=-
    echo "$name $path"
  done
}
# place FILE DEST_DIR DEPS: copies FILE and carries the libraries listed in DEPS.
place() {
  local name path
  cp -L "$1" "$2/"
  while read -r name path; do
    [ -z "$name" ] && continue
    [ -n "${carried[$name]:-}" ] && continue
    carried[$name]=$path
    if [[ $name =~ $fallback_re ]]; then cp -L "$path" "$root/lib/fallback/$name"; else cp -L "$path" "$root/lib/$name"; fi
    echo "lib $name <- $path" >>"$manifest"
  done <<<"$3"
}
missing_in() { awk '$2 == "-" {printf "%s ", $1}' <<<"$1"; }
add_program() {  # add_program FILE DEST_DIR: a program whose libraries must all be found
  local d
  d=$(deps "$1")
  [ -z "$(missing_in "$d")" ] || die "$1 needs libraries the loader cannot find here: $(missing_in "$d")"
  echo "program ${2#"$root"/}/$(basename "$1") <- $1" >>"$manifest"
  place "$1" "$2" "$d"
}
# add_plugin FILE DEST_DIR: carried when its libraries can be; otherwise left out with why.
add_plugin() {
  local base why='' d
  base=$(basename "$1")
  d=$(deps "$1")
  if [[ $base =~ $shmem_re ]]; then
    why='an OpenSHMEM plugin'
  elif [[ $base =~ $banned_re ]]; then
    why='a UCX/libfabric/verbs/PSM transport'
  elif grep -Eq "$banned_lib_re" <<<"$d"; then
    why="links $(grep -Eo "${banned_lib_re}[^ ]*" <<<"$d" | head -1)"
  elif [ -n "$(missing_in "$d")" ]; then
    why="needs libraries missing here: $(missing_in "$d")"
  fi
  if [ -n "$why" ]; then
    echo "left out ${2#"$root"/}/$base: $why" >>"$manifest"
  else
    place "$1" "$2" "$d"
  fi
}

echo "polyhead bundle of $build (source $src), made $(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$manifest"
"$build/polyhead" --version >>"$manifest" 2>/dev/null || echo "(polyhead --version does not run here)" >>"$manifest"

# Programs.
add_program "$build/polyhead" "$root/bin"
[ -x "$build/bench/bench_train" ] && add_program "$build/bench/bench_train" "$root/bin"
gpu_tests=$(find "$build/tests" -maxdepth 1 -type f -perm -u+x \( -name 'test_gpu_*' -o -name 'test_nccl_cuda*' \) 2>/dev/null | sort)
if [ -n "$gpu_tests" ]; then
  mkdir -p "$root/tests"
  for t in $gpu_tests; do add_program "$t" "$root/tests"; done
fi
cp "$src"/configs/*.yaml "$root/configs/"

# Open MPI: mpirun (orterun), orted, plugins, help texts; PMIx's plugins and help texts.
mpiexec=$(sed -n 's/^MPIEXEC_EXECUTABLE:FILEPATH=//p' "$build/CMakeCache.txt" 2>/dev/null)
[ -n "$mpiexec" ] || mpiexec=$(command -v mpiexec || true)
[ -n "$mpiexec" ] || die "no mpiexec in $build/CMakeCache.txt nor on PATH"
orterun=$(readlink -f "$mpiexec")
[ "$(basename "$orterun")" = orterun ] || die "$mpiexec is not Open MPI's orterun ($orterun); only Open MPI 4 is supported"
add_program "$orterun" "$root/bin"
add_program "$(dirname "$orterun")/orted" "$root/bin"
ln -s orterun "$root/bin/mpirun"
ln -s orterun "$root/bin/mpiexec"
ompi_path() { ompi_info --parsable --path "$1" | sed -n "s/^path:$1://p" | head -1; }
command -v ompi_info >/dev/null || die "ompi_info (openmpi-bin) is needed to find Open MPI's plugins"
for p in "$(ompi_path pkglibdir)"/*.so; do add_plugin "$p" "$root/lib/openmpi"; done
cp -r "$(ompi_path pkgdatadir)"/. "$root/share/openmpi/"
pmix_lib=$(ldd "$root/lib/openmpi/mca_pmix_ext3x.so" 2>/dev/null | awk '$1 ~ /^libpmix\.so/ {print $3}')
if [ -n "$pmix_lib" ]; then
  pmix_prefix=$(dirname "$(dirname "$(readlink -f "$pmix_lib")")")
  for p in "$pmix_prefix"/lib/pmix/*.so; do [ -e "$p" ] && add_plugin "$p" "$root/lib/pmix"; done
  [ -d "$pmix_prefix/share/pmix" ] && cp -r "$pmix_prefix/share/pmix"/. "$root/share/pmix/"
fi
cat >"$root/etc/openmpi-mca-params.conf" <<'EOF'
# polyhead bundle: Open MPI's defaults (env.sh points OPAL_SYSCONFDIR here). The plugins for
# UCX, libfabric, verbs and PSM are not carried; say so instead of probing for them.
btl_base_warn_component_unused = 0
pml = ^ucx
osc = ^ucx,pt2pt
mtl = ^ofi
btl = ^uct,openib,ofi
# plm: env.sh sets OMPI_MCA_plm=isolated (one node, no remote launch) where neither ssh/rsh
# nor a Slurm allocation is there; otherwise Open MPI picks rsh or slurm as usual.
EOF
echo "# polyhead bundle: no default hosts" >"$root/etc/openmpi-default-hostfile"
echo "# polyhead bundle: PMIx defaults (none)" >"$root/etc/pmix-mca-params.conf"

cp "$src/bundle/env.sh" "$src/bundle/run.sh" "$root/"
chmod +x "$root/run.sh"

unpacked=$(du -sm "$root" | cut -f1)
tar -C "$work" -cf - polyhead-bundle | XZ_OPT=${XZ_OPT:--T0 -6} xz >"$out.part"
mv "$out.part" "$out"
echo "bundle.sh: $out: $(($(stat -c %s "$out") / 1024)) KiB ($unpacked MiB unpacked), $(grep -c '^lib ' "$manifest") libraries, $(grep -c '^left out' "$manifest") plugins left out (MANIFEST.txt)"

# polyhead bundle environment (made by launch/bundle.sh). Source it from bash:
#   source /path/to/polyhead-bundle/env.sh
# It finds the bundle from its own location (the folder may be moved or copied anywhere) and
# sets the paths that relocate the carried Open MPI, PMIx and libraries, plus the variables
# the test programs read (POLYHEAD_BINARY, POLYHEAD_BENCH_TRAIN, POLYHEAD_SOURCE_DIR,
# POLYHEAD_MPIEXEC). The node's own LD_LIBRARY_PATH (CUDA toolkit, NCCL) is kept after the
# bundle's libraries. Sourcing it twice changes nothing.
# shellcheck shell=bash disable=SC2317
if [ -z "${BASH_VERSION:-}" ]; then
  echo "env.sh: source it from bash (source polyhead-bundle/env.sh)" >&2
  return 2 2>/dev/null || exit 2
fi
_ph_dir=${BASH_SOURCE[0]%/*}
[ "$_ph_dir" = "${BASH_SOURCE[0]}" ] && _ph_dir=.
POLYHEAD_BUNDLE=$(cd "$_ph_dir" && pwd -P)
export POLYHEAD_BUNDLE

case ":${PATH:-}:" in *":$POLYHEAD_BUNDLE/bin:"*) ;; *) export PATH="$POLYHEAD_BUNDLE/bin${PATH:+:$PATH}" ;; esac
case ":${LD_LIBRARY_PATH:-}:" in
  *":$POLYHEAD_BUNDLE/lib:"*) ;;
  *)
    LD_LIBRARY_PATH="$POLYHEAD_BUNDLE/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    # libstdc++/libgcc_s: the node's when it has them and they are new enough for the
    # carried programs, else the bundle's copies (lib/fallback), asked of the loader itself.
    # (The loader's trace mode lists every library, "=> not found" included; --list would
    # stop at the first missing one.)
    _ph_list=$(LD_TRACE_LOADED_OBJECTS=1 LD_LIBRARY_PATH=$LD_LIBRARY_PATH \
      /lib64/ld-linux-x86-64.so.2 "$POLYHEAD_BUNDLE/bin/polyhead" 2>&1)
    if [[ $_ph_list == *"libstdc++.so.6 => not found"* || $_ph_list == *"libgcc_s.so.1 => not found"* ||
      $_ph_list == *"libstdc++.so.6: version"* || $_ph_list == *"libgcc_s.so.1: version"* ]]; then
      LD_LIBRARY_PATH="$POLYHEAD_BUNDLE/lib:$POLYHEAD_BUNDLE/lib/fallback${LD_LIBRARY_PATH#"$POLYHEAD_BUNDLE/lib"}"
    fi
    export LD_LIBRARY_PATH
    ;;
esac

# Open MPI 4 and PMIx, relocated into the bundle.
export OPAL_PREFIX=$POLYHEAD_BUNDLE OPAL_EXEC_PREFIX=$POLYHEAD_BUNDLE
export OPAL_BINDIR=$POLYHEAD_BUNDLE/bin OPAL_LIBDIR=$POLYHEAD_BUNDLE/lib
export OPAL_PKGLIBDIR=$POLYHEAD_BUNDLE/lib/openmpi OPAL_DATADIR=$POLYHEAD_BUNDLE/share
export OPAL_PKGDATADIR=$POLYHEAD_BUNDLE/share/openmpi OPAL_SYSCONFDIR=$POLYHEAD_BUNDLE/etc
export PMIX_PREFIX=$POLYHEAD_BUNDLE PMIX_EXEC_PREFIX=$POLYHEAD_BUNDLE
export PMIX_BINDIR=$POLYHEAD_BUNDLE/bin PMIX_LIBDIR=$POLYHEAD_BUNDLE/lib
export PMIX_PKGLIBDIR=$POLYHEAD_BUNDLE/lib/pmix PMIX_DATADIR=$POLYHEAD_BUNDLE/share
export PMIX_PKGDATADIR=$POLYHEAD_BUNDLE/share/pmix PMIX_SYSCONFDIR=$POLYHEAD_BUNDLE/etc
# One process without mpirun: MPI_Init would otherwise try to start orted and abort.
export OMPI_MCA_ess_singleton_isolated=1
# mpirun launches on this node only where it has no way to reach others (no ssh/rsh, no
# Slurm allocation); a value set before sourcing is kept.
if [ -z "${OMPI_MCA_plm:-}" ] && [ -z "${SLURM_JOB_ID:-}" ] &&
  ! command -v ssh >/dev/null 2>&1 && ! command -v rsh >/dev/null 2>&1; then
  export OMPI_MCA_plm=isolated
fi

# Where the test programs find the binaries, the configs and mpiexec.
export POLYHEAD_BINARY=$POLYHEAD_BUNDLE/bin/polyhead
export POLYHEAD_SOURCE_DIR=$POLYHEAD_BUNDLE
export POLYHEAD_MPIEXEC=$POLYHEAD_BUNDLE/bin/mpiexec
if [ -x "$POLYHEAD_BUNDLE/bin/bench_train" ]; then
  export POLYHEAD_BENCH_TRAIN=$POLYHEAD_BUNDLE/bin/bench_train
fi
unset _ph_dir _ph_list

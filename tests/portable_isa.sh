#!/usr/bin/env bash
# Portable binaries (a ctest: portable_isa): the default build's host code is x86-64-v3 and
# must not contain a single AVX-512 instruction outside the functions that run only after a
# run-time check that the CPU has it (`dispatched` below), or it stops with an illegal
# instruction on a node without AVX-512 (OpenBLAS, a shared library, dispatches its own kernels
# at run time and is not checked). An AVX-512 instruction is EVEX-encoded: its first byte, after any segment or
# address-size prefix, is 0x62 (BOUND, the only other meaning, is invalid in 64-bit code).
# First the check is shown to tell: it must find AVX-512 in a function compiled with -mavx512f.
# A build with POLYHEAD_NATIVE=ON or POLYHEAD_ARCH_FLAGS is not meant to be portable: skipped.
# usage: tests/portable_isa.sh HOST_FLAGS CXX BINARY...
set -uo pipefail
host_flags="$1"
cxx="$2"
shift 2
if [[ "$(uname -m)" != x86_64 ]]; then
  echo "portable_isa: skipped: not an x86-64 machine"
  exit 77
fi
if [[ "$host_flags" != "-march=x86-64-v3" ]]; then
  echo "portable_isa: skipped: host code is built with '$host_flags', not the portable default"
  exit 77
fi
command -v objdump >/dev/null || { echo "portable_isa: FAILED: objdump (binutils) is missing"; exit 1; }
work=$(mktemp -d /tmp/polyhead-isa-XXXXXX)
trap 'rm -rf "$work"' EXIT

# Functions that may hold AVX-512 because they run only where the CPU has it, chosen at run
# time (__builtin_cpu_supports): the packed products' AVX-512 tile (kernels/cpu/packed_matmul).
dispatched='tile512'

evex_count() {  # the number of EVEX-encoded instructions in the code of an object or binary
  evex_lines "$1" | wc -l
}
evex_lines() {  # "<function>: " then the instruction's bytes (--insn-width) and its mnemonic,
  # outside the run-time dispatched functions
  evex_all "$1" | grep -v -E "^<[^>]*($dispatched)[^>]*>: "
}
evex_dispatched() {  # the EVEX instructions inside the dispatched functions
  evex_all "$1" | grep -c -E "^<[^>]*($dispatched)[^>]*>: "
}
evex_all() {  # each line of code prefixed with its function's "<name>: ", EVEX lines only
  objdump -d --insn-width=15 "$1" 2>/dev/null |
    awk '/^[0-9a-f]+ <.*>:$/ { fn = $2; next } { print fn " " $0 }' |
    grep -E $'^<[^>]*>: *[0-9a-f]+:\t((26|2e|36|3e|64|65|67) )*62 ([0-9a-f]{2} )+ *\t[a-z]'
}

cat >"$work/wide.cpp" <<'CPP'
void scale(float* a, int n) {
  for (int i = 0; i < n; ++i) a[i] *= 2.0f;
}
CPP
"$cxx" -O3 -mavx512f -mprefer-vector-width=512 -c "$work/wide.cpp" -o "$work/wide.o" ||
  { echo "portable_isa: FAILED: cannot compile the AVX-512 control"; exit 1; }
control=$(evex_count "$work/wide.o")
if ((control == 0)); then
  echo "portable_isa: FAILED: the check finds no AVX-512 in code compiled with -mavx512f"
  exit 1
fi
echo "control: $control AVX-512 instructions found in code compiled with -mavx512f"

fail=0
for bin in "$@"; do
  [[ -s "$bin" ]] || { echo "portable_isa: FAILED: no binary $bin"; fail=1; continue; }
  n=$(evex_count "$bin")
  if ((n > 0)); then
    echo "portable_isa: FAILED: $bin has $n AVX-512 instructions, e.g.:"
    evex_lines "$bin" | head -3
    fail=1
  else
    echo "$bin: no AVX-512 instructions outside the run-time dispatched functions" \
      "($(evex_dispatched "$bin") inside them)"
  fi
done
((fail)) && exit 1
echo "portable_isa: OK"

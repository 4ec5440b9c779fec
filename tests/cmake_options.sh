#!/usr/bin/env bash
# The build's target options (a ctest: cmake_options): configures the sources into scratch
# directories and checks what the generated build files compile with.
# - By default host code is portable: -march=x86-64-v3 (on x86-64), never -march=native.
# - -DPOLYHEAD_NATIVE=ON tunes it for the build machine: -march=native.
# - With a CUDA compiler: CUDA code is built for "80;90" unless CMAKE_CUDA_ARCHITECTURES is given
#   on the command line, which is then respected (it used to be overwritten silently).
# usage: tests/cmake_options.sh SOURCE_DIR CMAKE HAVE_CUDA(ON|OFF)
set -euo pipefail
src="$1"
cmake="$2"
have_cuda="$3"
work="$(mktemp -d /tmp/polyhead-cmake-XXXXXX)"
trap 'rm -rf "$work"' EXIT
fail=0

configure() {  # dir args...: configure without tests; the output goes to dir.log
  local dir="$1"
  shift
  "$cmake" -S "$src" -B "$work/$dir" -DPOLYHEAD_TESTS=OFF "$@" >"$work/$dir.log" 2>&1 ||
    { cat "$work/$dir.log"; echo "FAIL: cmake $* did not configure"; exit 1; }
}
expect() {  # file pattern what: the file has a line matching pattern
  if ! grep -qE -- "$2" "$1"; then echo "FAIL: $3: no '$2' in $1"; fail=1; fi
}
expect_not() {
  if grep -qE -- "$2" "$1"; then echo "FAIL: $3: '$2' in $1"; fail=1; fi
}

kernels_flags=kernels/CMakeFiles/ph_kernels.dir/flags.make
[[ -f "$src/CMakeLists.txt" ]] || { echo "FAIL: no $src/CMakeLists.txt"; exit 1; }

configure native -DPOLYHEAD_NATIVE=ON
flags="$work/native/CMakeFiles/ph_kernels.dir/flags.make"
[[ -f "$flags" ]] || flags="$work/native/$kernels_flags"
expect "$work/native.log" "polyhead host code: -march=native" "POLYHEAD_NATIVE=ON"
expect "$flags" "-march=native" "POLYHEAD_NATIVE=ON host flags"

if [[ "$have_cuda" == ON ]]; then
  expect "$work/native.log" "polyhead CUDA architectures: 80;90" "default CUDA architectures"
  cuda_flags="$work/native/kernels/cuda/CMakeFiles/ph_cuda.dir/flags.make"
  expect "$cuda_flags" "arch=compute_80" "default CUDA flags"
  expect "$cuda_flags" "arch=compute_90" "default CUDA flags"
  configure portable -DCMAKE_CUDA_ARCHITECTURES=90
  cuda_flags="$work/portable/kernels/cuda/CMakeFiles/ph_cuda.dir/flags.make"
  expect "$work/portable.log" "polyhead CUDA architectures: 90$" "CMAKE_CUDA_ARCHITECTURES=90"
  expect "$cuda_flags" "arch=compute_90" "CMAKE_CUDA_ARCHITECTURES=90"
  expect_not "$cuda_flags" "compute_80" "CMAKE_CUDA_ARCHITECTURES=90"
else
  configure portable
fi
flags="$work/portable/CMakeFiles/ph_kernels.dir/flags.make"
[[ -f "$flags" ]] || flags="$work/portable/$kernels_flags"
if [[ "$(uname -m)" == x86_64 ]]; then
  expect "$work/portable.log" "polyhead host code: -march=x86-64-v3" "default configure"
  expect "$flags" "-march=x86-64-v3" "default host flags"
fi
expect_not "$flags" "-march=native" "default host flags"

if ((fail)); then exit 1; fi
echo "cmake_options: OK"

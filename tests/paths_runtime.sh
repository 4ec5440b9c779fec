#!/usr/bin/env bash
# Test programs find the binaries, the sources and mpiexec through the environment at run time
# (tests/test_paths.h), so that they run from a bundle on another machine:
#   1. without POLYHEAD_BINARY (read at start-up by test_cli) or POLYHEAD_SOURCE_DIR (read
#      inside a test of test_io_config) a program fails with one message naming the variable;
#   2. test_cli and test_io_config copied to a temporary folder pass their cases against a copy
#      of the polyhead binary, a copy of configs/ and an mpiexec wrapper that the variables name
#      (and test_cli holds no path of the build tree's polyhead).
# usage: tests/paths_runtime.sh TEST_CLI TEST_IO_CONFIG POLYHEAD_BINARY SOURCE_DIR [MPIEXEC]
#        (a ctest: paths_runtime)
set -uo pipefail
test_cli=$1 test_io_config=$2 bin=$3 src=$4
mpiexec=$(command -v "${5:-mpiexec}")
work=$(mktemp -d /tmp/polyhead-paths-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() {
  echo "paths_runtime: FAILED: $*" >&2
  exit 1
}
# Runs a test program with the POLYHEAD_ variables given as NAME=value arguments only.
run() {
  env -u POLYHEAD_BINARY -u POLYHEAD_SOURCE_DIR -u POLYHEAD_MPIEXEC -u POLYHEAD_BENCH_TRAIN "$@" \
    >"$work/out" 2>&1
}
expect_one_message() {  # exit status, variable
  [ "$1" -ne 0 ] || fail "no $2: exit status 0: $(cat "$work/out")"
  local n
  n=$(grep -o "$2 is not set: [^\"]*ctest sets it" "$work/out" | wc -l)
  [ "$n" -eq 1 ] || fail "no $2: $n messages naming it, not 1: $(cat "$work/out")"
  echo "no $2: one message, exit status $1"
}

# 1. Missing variables.
run POLYHEAD_SOURCE_DIR="$src" "$test_cli" --gtest_filter=Cli.VersionAndHelp
status=$?
expect_one_message $status POLYHEAD_BINARY
grep -q '^\[ RUN' "$work/out" && fail "no POLYHEAD_BINARY: tests ran: $(cat "$work/out")"
run "$test_io_config" --gtest_filter=ConfigShipped.AllLoad
expect_one_message $? POLYHEAD_SOURCE_DIR

# 2. Everything elsewhere.
mkdir -p "$work/bin" "$work/src" "$work/mpi"
cp "$test_cli" "$test_io_config" "$bin" "$work/bin/"
cp -r "$src/configs" "$work/src/"
cat >"$work/mpi/mpiexec" <<SH
#!/bin/sh
touch "$work/mpi/used"
exec "$mpiexec" "\$@"
SH
chmod +x "$work/mpi/mpiexec"
if grep -qaF "$(readlink -f "$bin")" "$work/bin/$(basename "$test_cli")"; then
  fail "$(basename "$test_cli") holds the path $(readlink -f "$bin")"
fi
vars=(POLYHEAD_BINARY="$work/bin/$(basename "$bin")" POLYHEAD_SOURCE_DIR="$work/src"
  POLYHEAD_MPIEXEC="$work/mpi/mpiexec")
cd "$work" || fail "cannot enter $work"
run "${vars[@]}" "$work/bin/$(basename "$test_cli")" \
  --gtest_filter='Cli.VersionAndHelp:Cli.BadInputUnderMpirunIsPrintedOnce'
[ $? -eq 0 ] || fail "test_cli from $work: $(cat "$work/out")"
grep -q '^\[  PASSED  \] 2 tests' "$work/out" || fail "test_cli: not 2 passed: $(cat "$work/out")"
[ -e "$work/mpi/used" ] || fail "test_cli did not run POLYHEAD_MPIEXEC: $(cat "$work/out")"
run "${vars[@]}" "$work/bin/$(basename "$test_io_config")" --gtest_filter=ConfigShipped.AllLoad
[ $? -eq 0 ] || fail "test_io_config from $work: $(cat "$work/out")"
grep -q '^\[  PASSED  \] 1 test' "$work/out" || fail "test_io_config: not passed: $(cat "$work/out")"
echo "copies in $work/bin with the sources' configs/ copied: both pass; mpiexec as named"
echo "paths_runtime: OK"

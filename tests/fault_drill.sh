#!/usr/bin/env bash
# The fault drill: the whole trainer, run as a user would, under the faults of a cluster.
#   1. kill -9 at three random moments of a run, one of them during a checkpoint save, each
#      followed by the same command again (checkpoint.resume=auto): the final parameters and
#      optimizer state are bitwise equal to an uninterrupted run's, on 1 rank and on 2 ranks
#      (tp=2);
#   2. SIGSTOP one of two ranks: the job ends within runtime.comm_timeout + 10 s, with the
#      deadline's message.
# usage: tests/fault_drill.sh POLYHEAD_BINARY [MPIEXEC]      (a ctest: fault_drill)
set -uo pipefail
bin=$(readlink -f "$1")
mpiexec=${2:-mpiexec}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
# The drill may be started from an MPI singleton (ctest from a test): no inherited MPI state.
for v in $(env | grep -o '^\(OMPI\|PMIX\|OPAL\)[A-Za-z0-9_]*' | grep -v ALLOW_RUN_AS_ROOT); do
  unset "$v"
done
work=$(mktemp -d /tmp/polyhead-drill-XXXXXX)
cleanup() {
  pkill -9 -f "$work" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "fault_drill: FAILED: $*" >&2
  exit 1
}

cat >"$work/drill.yaml" <<YAML
model: {n_layers: 2, d_model: 64, n_heads: 4, seq_len: 20,
        dropout: {embed: 0.1, attn: 0.1, resid: 0.1}}
train: {max_steps: 40, micro_batch: 4, global_batch: 8, eval_interval: 0}
optim: {warmup_steps: 4}
data: {task_digits: 2, task_train_problems: 2000, task_val_problems: 40}
checkpoint: {interval: 3, keep_last: 3}
log: {interval: 1}
sample: {count: 0}
YAML

# train RUN_DIR RANKS [key=value ...]: the drill's command for a layout.
train_cmd() {
  local dir=$1 ranks=$2
  shift 2
  if [[ $ranks == 1 ]]; then
    echo "$bin train $work/drill.yaml run.dir=$dir $*"
  else
    echo "$mpiexec -n $ranks --oversubscribe --bind-to none $bin train $work/drill.yaml run.dir=$dir parallel.tp=$ranks $*"
  fi
}

kill_run() {  # every process of the run in DIR (the ranks and mpiexec), at once
  local p pids=""
  for p in $(pgrep -f "run.dir=$1"); do
    case $(cat "/proc/$p/comm" 2>/dev/null) in
      polyhead | mpiexec | mpirun | orterun) pids="$pids $p" ;;
    esac
  done
  [[ -n $pids ]] && kill -9 $pids 2>/dev/null
  while pgrep -x polyhead -a | grep -qF "run.dir=$1"; do sleep 0.05; done
}

latest_of() {  # the checkpoint `latest` names, or "none yet"
  local l
  l=$(tr -d '\n' <"$1/checkpoints/latest" 2>/dev/null)
  echo "${l:-none yet}"
}

running() {  # a rank of the run in DIR is alive
  pgrep -x polyhead -a | grep -qF "run.dir=$1"
}

# Kills the run in DIR during a checkpoint save (a step_*.h5.tmp exists); false if the run ended
# first.
kill_during_save() {
  local dir=$1
  for _ in $(seq 500); do running "$dir" && break; sleep 0.01; done
  while pgrep -x polyhead -a | grep -qF "run.dir=$dir"; do
    if compgen -G "$dir/checkpoints/step_*.h5.tmp" >/dev/null; then
      kill_run "$dir"
      return 0
    fi
    sleep 0.002
  done
  return 1
}

drill_layout() {
  local ranks=$1
  local ref=$work/ref$ranks run=$work/run$ranks
  $(train_cmd "$ref" "$ranks") >"$ref.log" 2>&1 || fail "uninterrupted run on $ranks rank(s): $(tail -3 "$ref.log")"
  local kills=0 during_save=0 attempts=0
  while ((kills < 3 && attempts < 30)); do
    attempts=$((attempts + 1))
    # In a shell of its own, so that the kill is that shell's news, written to the log.
    bash -c "$(train_cmd "$run" "$ranks") >>$run.log 2>&1" 2>>"$run.log" &
    if ((during_save == 0)); then
      if kill_during_save "$run"; then
        kills=$((kills + 1))
        during_save=1
        echo "  killed during a save (latest: $(latest_of "$run"))"
      fi
    else
      for _ in $(seq 500); do running "$run" && break; sleep 0.01; done
      sleep "0.$((RANDOM % 9 + 1))$((RANDOM % 10))"
      if running "$run"; then
        kill_run "$run"
        kills=$((kills + 1))
        echo "  killed at a random moment (latest: $(latest_of "$run"))"
      fi
    fi
    { wait; } 2>/dev/null  # (no "Killed" notes from the shell)
    # A run that reached the end before the kill starts again from its final checkpoint:
    # nothing to check then; start over so that every kill interrupts training.
    if grep -q "step_00000040.h5" "$run/checkpoints/latest" 2>/dev/null; then
      rm -rf "$run"
      : >"$run.log"
      kills=0
      during_save=0
    fi
  done
  ((kills == 3)) || fail "could not interrupt the run three times ($ranks rank(s))"
  $(train_cmd "$run" "$ranks") >>"$run.log" 2>&1 || fail "resumed run on $ranks rank(s): $(tail -3 "$run.log")"
  local a=$ref/checkpoints/step_00000040.h5 b=$run/checkpoints/step_00000040.h5
  [[ -f $a && -f $b ]] || fail "no final checkpoint ($ranks rank(s))"
  h5diff -q "$a" "$b" /model /model || fail "parameters differ from the uninterrupted run ($ranks rank(s))"
  h5diff -q "$a" "$b" /optim /optim || fail "optimizer state differs from the uninterrupted run ($ranks rank(s))"
  echo "fault_drill: $ranks rank(s): 3 kills -9 (one during a save), resumed: parameters and AdamW moments bitwise equal to the uninterrupted run"
}

drill_layout 1
drill_layout 2

# A hung rank (SIGSTOP): the job ends within runtime.comm_timeout + 10 s.
hung=$work/hung
$(train_cmd "$hung" 2 train.max_steps=100000 runtime.comm_timeout=5) >"$hung.log" 2>&1 &
job=$!
for _ in $(seq 600); do
  [[ -f $hung/metrics.jsonl && $(wc -l <"$hung/metrics.jsonl") -ge 2 ]] && break
  sleep 0.1
done
rank=$(pgrep -x polyhead -a | grep -F "run.dir=$hung" | head -1 | cut -d' ' -f1)
[[ -n $rank ]] || fail "the 2-rank run did not start: $(tail -3 "$hung.log")"
kill -STOP "$rank"
start=$SECONDS
while kill -0 "$job" 2>/dev/null && ((SECONDS - start <= 20)); do sleep 0.1; done
took=$((SECONDS - start))
if kill -0 "$job" 2>/dev/null; then
  kill_run "$hung"
  fail "the job with a stopped rank still ran after 20 s"
fi
((took <= 15)) || fail "the job with a stopped rank ended after $took s (limit: 5 s + 10 s)"
grep -q "did not complete within runtime.comm_timeout = 5 s" "$hung.log" ||
  fail "no deadline message: $(tail -5 "$hung.log")"
echo "fault_drill: a stopped rank ended the job after $took s: $(grep -m1 'did not complete' "$hung.log")"
echo "fault_drill: passed"

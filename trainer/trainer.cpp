#include "trainer/trainer.h"

#include <cmath>
#include <cstdio>
#include <optional>

#include "parallel/agreement.h"
#include "parallel/grid.h"
#include "parallel/runtime.h"
#include "trainer/checkpointing.h"
#include "trainer/compute.h"
#include "trainer/data_source.h"
#include "trainer/evaluator.h"
#include "trainer/model_factory.h"
#include "trainer/run_setup.h"
#include "trainer/samples.h"
#include "trainer/signals.h"
#include "trainer/training_log.h"

namespace ph {

namespace {

// Evaluates on the validation data and returns the JSON fields of the metrics record.
std::string evaluate(Evaluator& ev, Model& model, DataSource& data, const Config& cfg,
                     const ProcessGrid& grid, int64_t step, TrainSummary& summary) {
  const EvalResult r =
      ev.run(model, *data.val, data.task ? &*data.task : nullptr, cfg.train.eval_batches, grid);
  summary.final_val_loss = r.loss;
  std::string json = ", \"val_loss\": " + TrainingLog::json_number(r.loss, "%.6f");
  if (!r.has_task) {
    std::printf("eval step %lld | val loss %.4f\n", static_cast<long long>(step), r.loss);
    return json;
  }
  summary.task_accuracy = r.task_accuracy();
  std::printf(
      "eval step %lld | val loss %.4f | task accuracy %.2f%% (%lld/%lld held-out problems)\n",
      static_cast<long long>(step), r.loss, 100.0 * r.task_accuracy(),
      static_cast<long long>(r.task_correct), static_cast<long long>(r.task_total));
  return json + ", \"task_accuracy\": " + TrainingLog::json_number(r.task_accuracy(), "%.6f");
}

void print_run(const Config& cfg, const ProcessGrid& grid, const Model& model, const AdamW& opt,
               const TrainStep& step, const DataSource& data, bool zero) {
  const int mb = cfg.train.micro_batch;
  std::printf(
      "model: %s, %lld parameters; layout dp=%d tp=%d%s; backend %s; global batch %d x %d tokens "
      "(micro-batch %d, accumulation %d); %llu training windows\n",
      model_summary(cfg.model).c_str(), static_cast<long long>(model.table().full_count()), grid.dp,
      grid.tp, zero ? " zero=1" : "", model.backend().describe().c_str(), step.global_batch(),
      cfg.model.seq_len, mb, step.global_batch() / (mb * grid.dp),
      static_cast<unsigned long long>(data.train->num_windows()));
  const double mib = 1048576.0;
  const size_t arenas = 2 * model.arena_capacity() * sizeof(float);
  std::printf(
      "memory per rank: %.1f MiB of parameters and gradients, %.1f MiB of AdamW moments, "
      "%.1f MiB of activations\n",
      static_cast<double>(arenas) / mib, static_cast<double>(2 * opt.size() * sizeof(float)) / mib,
      static_cast<double>(model.memory_bytes() - arenas) / mib);
  std::fflush(stdout);
}

}  // namespace

TrainSummary train(const Config& cfg, const StepObserver& observe) {
  // Layout first: nothing is read or written before the grid is known to fit the model.
  ProcessGrid grid = make_grid(cfg.parallel.tp);
  check_layout(cfg, grid, /*training=*/true);
  const bool root = grid.rank == 0;
  std::printf("--- resolved config ---\n%s--- end of config ---\n", config_to_yaml(cfg).c_str());
  std::fflush(stdout);
  Communicator& world = *grid.world_comm;
  check_same_config(cfg, world);
  const std::string resume_from = prepare_run(cfg, grid);

  // One process writes the synthetic data; then every rank opens and validates the shards.
  agree(world, [&] {
    if (root) generate_task_data(cfg);
  });
  DataSource data;
  agree(world, [&] { data = open_data(cfg, /*need_train=*/true); });

  // ZeRO-1: the arena is cut into dp equal shards; this rank's optimizer holds one.
  const bool zero = cfg.parallel.zero == 1 && grid.dp > 1;
  Compute compute = make_compute(cfg, grid);
  std::unique_ptr<Model> model = make_model(*compute.backend, cfg, grid, compute.tp,
                                            cfg.train.micro_batch, zero ? grid.dp : 1);
  model->initialize(cfg.train.seed);
  GradSync::Options so;
  so.dp = grid.dp;
  so.dp_rank = grid.dp_rank;
  so.zero = zero;
  // With tp > 1 the tensor-parallel communicator works during backward too. NCCL guarantees
  // progress for two communicators' kernels at once only when they fit on the GPU together, so
  // there the data-parallel sum starts after backward instead (on every backend alike, so that
  // the CPU tests of dp x tp layouts exercise this path).
  so.overlap = grid.tp == 1;
  GradSync sync(*compute.backend, compute.dp, model->grads(), model->arena_size(),
                model->arena_capacity(), so);
  AdamW opt(*compute.backend, cfg.optim, model->table(), sync.lo(), sync.hi());
  TrainStep step(cfg, grid, *model, opt, sync);

  TrainState st;
  if (!resume_from.empty()) {
    st = load_training_checkpoint(resume_from, cfg, *model, &opt, grid);
    std::printf("resumed from %s at step %lld (%llu samples consumed)\n", resume_from.c_str(),
                static_cast<long long>(st.step),
                static_cast<unsigned long long>(st.consumed_samples));
    if (st.step >= cfg.train.max_steps)
      std::printf("checkpoint is already at train.max_steps = %d; nothing to train\n",
                  cfg.train.max_steps);
  }
  std::optional<TrainingLog> log;
  agree(world, [&] {
    if (root) write_text_atomically(cfg.run.dir + "/config.yaml", config_to_yaml(cfg));
    log.emplace(cfg, root, st.step, !resume_from.empty());
  });
  print_run(cfg, grid, *model, opt, step, data, zero);

  Evaluator evaluator(cfg.train.micro_batch, *model);
  TrainSummary summary;
  const std::string ckpt_dir = cfg.run.dir + "/checkpoints";
  const int64_t first_step = st.step;
  while (st.step < cfg.train.max_steps) {
    const StepResult r = step.run(*data.train, st.step, st.consumed_samples, st.optimizer_steps);
    st.step += 1;  // steps are numbered from 1 in every message, log line and record
    st.consumed_samples += static_cast<uint64_t>(step.global_batch());
    log->add(r, static_cast<int64_t>(step.global_batch()) * cfg.model.seq_len);
    if (observe) observe(st.step, r);
    if (r.applied) {
      st.optimizer_steps += 1;
    } else {
      if (cfg.train.nan_policy == NanPolicy::kStop)
        throw AgreedError("non-finite " +
                          std::string(std::isfinite(r.loss) ? "gradient norm" : "loss") +
                          " at step " + std::to_string(st.step) +
                          " (train.nan_policy = stop); the last checkpoint is intact");
      std::printf("step %lld: non-finite %s; step skipped (train.nan_policy = skip)\n",
                  static_cast<long long>(st.step),
                  std::isfinite(r.loss) ? "gradient norm" : "loss");
    }

    const bool last = st.step == cfg.train.max_steps;
    const int eval_every = cfg.train.eval_interval;
    const bool eval_now = eval_every > 0 ? (st.step % eval_every == 0 || last) : last;
    if (st.step % cfg.log.interval == 0 || last || eval_now || st.step == first_step + 1) {
      log->print(st.step, r);
      log->record(st.consumed_samples, eval_now && data.val ? evaluate(evaluator, *model, data, cfg,
                                                                       grid, st.step, summary)
                                                            : std::string());
    }
    const int every = cfg.checkpoint.interval;
    const bool save_now = (every > 0 && st.step % every == 0) || last;
    const int sig = agreed_stop_signal(world);
    if (save_now || sig) {
      summary.last_checkpoint = save_training_checkpoint(ckpt_dir, cfg, *model, &opt, st, grid);
      std::printf("saved checkpoint %s\n", summary.last_checkpoint.c_str());
    }
    if (sig) {
      std::printf("stopped by signal %d at step %lld; resume with checkpoint.resume=auto\n", sig,
                  static_cast<long long>(st.step));
      summary.interrupted = true;
      break;
    }
  }
  summary.steps_done = st.step;
  if (!summary.interrupted && cfg.sample.count > 0) {
    std::printf("samples:\n");
    if (data.task)
      print_task_samples(*model, grid.tp_comm.get(), *data.task, cfg);
    else
      print_text_samples(*model, grid.tp_comm.get(), cfg);
  }
  if (summary.task_accuracy >= 0)
    std::printf("final task accuracy: %.2f%% exact match on held-out problems\n",
                100.0 * summary.task_accuracy);
  std::fflush(stdout);
  return summary;
}

}  // namespace ph

#include "trainer/trainer.h"

#include <cmath>
#include <cstdio>
#include <memory>

#include "io/tokenizer.h"
#include "parallel/agreement.h"
#include "parallel/deadline.h"
#include "parallel/grid.h"
#include "parallel/runtime.h"
#include "trainer/best_eval.h"
#include "trainer/checkpointing.h"
#include "trainer/compute.h"
#include "trainer/data_source.h"
#include "trainer/device_peak.h"
#include "trainer/evaluator.h"
#include "trainer/memory_estimate.h"
#include "trainer/model_factory.h"
#include "trainer/model_flops.h"
#include "trainer/process_memory.h"
#include "trainer/run_setup.h"
#include "trainer/samples.h"
#include "trainer/signals.h"
#include "trainer/training_log.h"
#include "trainer/translator.h"

namespace ph {

namespace {

// Everything a run trains with, set up in the order that keeps bad input from writing anything:
// the layout, the memory it needs, the tokenizer, the run directory (locked), the checkpoint to
// resume, the data, then the model, its gradient sync and optimizer.
class Training {
 public:
  explicit Training(const Config& cfg);
  TrainSummary run(const StepObserver& observe);

 private:
  void report_nonfinite(const StepResult& r) const;
  // Logs, evaluates, saves and honours signals after a step; false: stop.
  bool after_step(const StepResult& r);
  // After an evaluation: follows the best value (best.h5 under checkpoint.keep_best); true when
  // train.early_stopping says stop.
  bool follow_best();
  void resume_best();
  Metrics evaluate();
  Metrics evaluate_translation(const EvalResult& loss);
  Metrics evaluate_mlm(const EvalResult& r);
  // A new Translator for the weights as they are now (its decoder keeps copies of them:
  // model/incremental_decoder.h).
  std::unique_ptr<Translator> make_translator();
  void print_run() const;

  const Config& cfg_;
  ProcessGrid grid_;
  Compute compute_;      // before the run directory: a device refused writes nothing
  Tokenizer tokenizer_;  // before the run directory: a bad tokenizer writes nothing
  RunDirectory dir_;
  std::string resume_from_;
  std::string init_from_;  // checkpoint.init_from when it starts this run, else ""
  double peak_flops_;      // MFU's: the job's, the sum over the ranks; 0: unknown
  DataSource data_;
  bool zero_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<GradSync> sync_;
  std::unique_ptr<AdamW> opt_;
  std::unique_ptr<TrainStep> step_;
  std::unique_ptr<Evaluator> evaluator_;
  std::unique_ptr<TrainingLog> log_;
  TrainState st_;
  BestEval best_{cfg_.train.early_stopping_metric};
  EvalValues last_eval_ = no_eval_values();
  bool stopped_early_ = false;  // a resumed run that had already stopped early trains no more
  int64_t first_step_ = 0;
  TrainSummary summary_;
};

// The checks that need no file: the layout, then the memory the run needs.
ProcessGrid checked_grid(const Config& cfg) {
  set_comm_timeout(cfg.runtime.comm_timeout);
  ProcessGrid grid = make_grid(cfg.parallel.tp);
  check_layout(cfg, grid, /*training=*/true);
  check_memory(estimate_memory(cfg, grid), cfg, grid);
  std::printf("--- resolved config ---\n%s--- end of config ---\n", config_to_yaml(cfg).c_str());
  std::fflush(stdout);
  check_same_config(cfg, *grid.world_comm);
  return grid;
}

// "data.tokenizer 'P'", or the byte-level tokenizer: how messages name the run's tokenizer.
std::string tokenizer_name(const Config& cfg) {
  return cfg.data.tokenizer.empty() ? "the byte-level tokenizer"
                                    : "data.tokenizer '" + cfg.data.tokenizer + "'";
}

// The run's tokenizer, checked against the model's vocabulary and the special tokens. The
// translation task's tokenizer exists only once the task is written: bytes until then.
Tokenizer checked_tokenizer(const Config& cfg, Communicator& world) {
  Tokenizer t;
  if (tokenizer_from_task(cfg)) return t;
  agree(world, [&] {
    t = Tokenizer::load(cfg.data.tokenizer);
    check_tokenizer(cfg, t, tokenizer_name(cfg));
  });
  return t;
}

// MFU's peak FLOP/s of the job: every rank's (trainer/device_peak.h) summed, or 0 when any rank's
// is unknown. Collective. The high-water mark of host memory restarts after the CPU's probe.
double job_peak(const Config& cfg, const Backend& backend, Communicator& world) {
  const DevicePeak peak = device_peak(cfg, backend);
  reset_peak_rss();
  double sum = peak.flops, least = peak.flops;
  world.all_reduce(&sum, 1, ReduceOp::Sum);
  world.all_reduce(&least, 1, ReduceOp::Min);
  const int ranks = world.size();
  if (least <= 0)
    std::printf("MFU is not reported: %s\n", peak.source.c_str());
  else if (ranks == 1)
    std::printf("MFU peak %.1f GFLOP/s (%s)\n", sum * 1e-9, peak.source.c_str());
  else
    std::printf("MFU peak %.1f GFLOP/s over %d ranks (rank 0: %.1f GFLOP/s, %s)\n", sum * 1e-9,
                ranks, peak.flops * 1e-9, peak.source.c_str());
  return least > 0 ? sum : 0.0;
}

Training::Training(const Config& cfg)
    : cfg_(cfg),
      grid_(checked_grid(cfg)),
      compute_(make_compute(cfg, grid_)),
      tokenizer_(checked_tokenizer(cfg, *grid_.world_comm)),
      dir_(cfg, grid_),
      resume_from_(dir_.resume_point()),
      init_from_(dir_.init_point(resume_from_)),
      peak_flops_(job_peak(cfg, *compute_.backend, *grid_.world_comm)) {
  Communicator& world = *grid_.world_comm;
  // One process writes the synthetic data; then every rank opens and validates the shards.
  agree(world, [&] {
    if (grid_.rank == 0) generate_task_data(cfg);
  });
  if (tokenizer_from_task(cfg)) {
    agree(world, [&] {
      tokenizer_ = Tokenizer::load(data_tokenizer_path(cfg));
      check_tokenizer(cfg, tokenizer_, "the translation task's tokenizer");
    });
  }
  if (!resume_from_.empty())
    check_checkpoint_tokenizer(resume_from_, tokenizer_, tokenizer_name(cfg));
  if (!init_from_.empty()) check_checkpoint_tokenizer(init_from_, tokenizer_, tokenizer_name(cfg));
  agree(world, [&] { data_ = open_data(cfg, /*need_train=*/true, "", tokenizer_); });

  // ZeRO-1: the arena is cut into dp equal shards; this rank's optimizer holds one.
  zero_ = cfg.parallel.zero == 1 && grid_.dp > 1;
  model_ = make_model(*compute_.backend, cfg, grid_, compute_.tp, cfg.train.micro_batch,
                      zero_ ? static_cast<size_t>(grid_.dp) : 1);
  model_->initialize(cfg.train.seed);
  GradSync::Options so;
  so.dp = grid_.dp;
  so.dp_rank = grid_.dp_rank;
  so.zero = zero_;
  // With tp > 1 the tensor-parallel communicator works during backward too. NCCL guarantees
  // progress for two communicators' kernels at once only when they fit on the GPU together, so
  // there the data-parallel sum starts after backward instead (on every backend alike, so that
  // the CPU tests of dp x tp layouts exercise this path).
  so.overlap = grid_.tp == 1;
  sync_ = std::make_unique<GradSync>(*compute_.backend, compute_.dp, model_->grads(),
                                     model_->arena_size(), model_->arena_capacity(), so);
  opt_ = std::make_unique<AdamW>(*compute_.backend, cfg.optim, model_->table(), sync_->lo(),
                                 sync_->hi());
  step_ = std::make_unique<TrainStep>(cfg, grid_, *model_, *opt_, *sync_);
  // A checkpoint holds the parameters and both moments in full shape.
  dir_.check_checkpoint_room(
      3 * static_cast<uint64_t>(model_->table().full_count()) * sizeof(float) + (1u << 20));
  if (!resume_from_.empty()) {
    st_ = load_training_checkpoint(resume_from_, cfg, *model_, opt_.get(), grid_);
    std::printf("resumed from %s at step %lld (%llu samples consumed)\n", resume_from_.c_str(),
                static_cast<long long>(st_.step),
                static_cast<unsigned long long>(st_.consumed_samples));
    if (st_.step >= cfg.train.max_steps)
      std::printf("checkpoint is already at train.max_steps = %d; nothing to train\n",
                  cfg.train.max_steps);
    resume_best();
  } else if (!init_from_.empty()) {
    // Weights only: the optimizer, the step and the data position start afresh.
    load_training_checkpoint(init_from_, cfg, *model_, nullptr, grid_);
    std::printf("initialised from the weights of %s (step 0, fresh optimizer)\n",
                init_from_.c_str());
  }
  agree(world, [&] {
    if (grid_.rank == 0) {
      write_text_atomically(cfg.run.dir + "/config.yaml", config_to_yaml(cfg));
      tokenizer_.save(cfg.run.dir + "/tokenizer");
    }
  });
  Throughput throughput;
  throughput.flops_per_token = flops_per_token(cfg, model_->table().full_count());
  throughput.peak_flops = peak_flops_;
  log_ = std::make_unique<TrainingLog>(cfg, world, *compute_.backend, throughput, st_.step,
                                       !resume_from_.empty());
  evaluator_ = std::make_unique<Evaluator>(cfg.train.micro_batch, *model_);
  first_step_ = st_.step;
  print_run();
}

void Training::resume_best() {
  std::string note;
  best_ = BestEval::from_text(st_.best_eval, cfg_.train.early_stopping_metric, resume_from_, &note);
  if (!note.empty()) std::printf("%s\n", note.c_str());
  st_.best_eval = best_.text();
  const int patience = cfg_.train.early_stopping;
  if (patience > 0 && best_.stale() >= patience && st_.step < cfg_.train.max_steps) {
    std::printf(
        "the run stopped early at step %lld: %s has not improved for %d evaluations (best %.6g "
        "at step %lld); nothing to train (raise train.early_stopping to go on)\n",
        static_cast<long long>(st_.step), name_of(best_.metric()).c_str(), best_.stale(),
        best_.value(), static_cast<long long>(best_.step()));
    stopped_early_ = true;
    summary_.stopped_early = true;
  }
}

TrainSummary Training::run(const StepObserver& observe) {
  while (st_.step < cfg_.train.max_steps && !stopped_early_) {
    set_deadline_step(st_.step + 1);
    const StepResult r =
        step_->run(*data_.train, st_.step, st_.consumed_samples, st_.optimizer_steps);
    st_.step += 1;  // steps are numbered from 1 in every message, log line and record
    st_.consumed_samples += static_cast<uint64_t>(step_->global_batch());
    log_->add(r, r.tokens);
    if (observe) observe(st_.step, r);
    if (r.applied)
      st_.optimizer_steps += 1;
    else
      report_nonfinite(r);
    if (!after_step(r)) break;
  }
  summary_.steps_done = st_.step;
  if (!summary_.interrupted && cfg_.sample.count > 0) {
    std::printf("samples:\n");
    if (data_.task)
      print_task_samples(*model_, grid_.tp_comm.get(), *data_.task, cfg_);
    else if (data_.val && data_.val->pairs())
      print_translation_samples(*make_translator(), *data_.val->pairs(), cfg_);
    else if (cfg_.model.type == ModelType::kBert && data_.val)
      print_mlm_samples(*model_, grid_.tp_comm.get(), *data_.val, cfg_, tokenizer_);
    else
      print_text_samples(*model_, grid_.tp_comm.get(), cfg_, tokenizer_);
  }
  if (summary_.task_accuracy >= 0)
    std::printf("final task accuracy: %.2f%% exact match on held-out problems\n",
                100.0 * summary_.task_accuracy);
  if (summary_.mlm_accuracy >= 0)
    std::printf("final mlm accuracy: %.2f%% of held-out masked-LM predictions\n",
                100.0 * summary_.mlm_accuracy);
  std::fflush(stdout);
  return summary_;
}

void Training::report_nonfinite(const StepResult& r) const {
  // Loss and norm are global, so every rank takes the same branch.
  const std::string what = std::isfinite(r.loss) ? "gradient norm" : "loss";
  if (cfg_.train.nan_policy == NanPolicy::kStop)
    throw AgreedError("non-finite " + what + " at step " + std::to_string(st_.step) +
                      " (train.nan_policy = stop); the last checkpoint is intact");
  std::printf("step %lld: non-finite %s; step skipped (train.nan_policy = skip)\n",
              static_cast<long long>(st_.step), what.c_str());
}

bool Training::after_step(const StepResult& r) {
  const std::string ckpt_dir = cfg_.run.dir + "/checkpoints";
  const bool last = st_.step == cfg_.train.max_steps;
  const int eval_every = cfg_.train.eval_interval;
  const bool eval_now = eval_every > 0 ? (st_.step % eval_every == 0 || last) : last;
  bool evaluated = false;
  try {
    if (st_.step % cfg_.log.interval == 0 || last || eval_now || st_.step == first_step_ + 1) {
      log_->print(st_.step, r);
      evaluated = eval_now && data_.val;
      log_->record(st_.consumed_samples, evaluated ? evaluate() : Metrics{});
    }
  } catch (const IoError& e) {
    // A write of the run failed (a full disk): keep what can be kept, then stop with exit 1.
    std::string kept;
    try {
      kept = "; saved checkpoint " +
             save_training_checkpoint(ckpt_dir, cfg_, tokenizer_, *model_, opt_.get(), st_, grid_);
    } catch (const std::exception& save) {
      kept = "; no checkpoint could be saved either (" + std::string(save.what()) +
             "); the last one saved before is intact";
    }
    throw IoError(e.what() + kept);
  }
  const bool stop_early = evaluated && follow_best();
  const int every = cfg_.checkpoint.interval;
  const bool save_now = (every > 0 && st_.step % every == 0) || last || stop_early;
  const int sig = agreed_stop_signal(*grid_.world_comm);
  if (save_now || sig) {
    summary_.last_checkpoint =
        save_training_checkpoint(ckpt_dir, cfg_, tokenizer_, *model_, opt_.get(), st_, grid_);
    std::printf("saved checkpoint %s\n", summary_.last_checkpoint.c_str());
  }
  if (sig) {
    std::printf("stopped by signal %d at step %lld; resume with checkpoint.resume=auto\n", sig,
                static_cast<long long>(st_.step));
    summary_.interrupted = true;
    return false;
  }
  if (stop_early) {
    std::printf(
        "early stopping at step %lld: %s has not improved for %d evaluations (best %.6g at step "
        "%lld)\n",
        static_cast<long long>(st_.step), name_of(best_.metric()).c_str(), best_.stale(),
        best_.value(), static_cast<long long>(best_.step()));
    summary_.stopped_early = true;
    return false;
  }
  return true;
}

bool Training::follow_best() {
  const double value = last_eval_.of(best_.metric());
  const bool improved = best_.update(value, st_.step);
  st_.best_eval = best_.text();
  summary_.best_value = best_.value();
  summary_.best_step = best_.step();
  if (improved && cfg_.checkpoint.keep_best) {
    summary_.best_checkpoint =
        save_training_checkpoint(cfg_.run.dir + "/checkpoints", cfg_, tokenizer_, *model_,
                                 opt_.get(), st_, grid_, "best.h5");
    std::printf("saved best checkpoint %s (%s %.6g)\n", summary_.best_checkpoint.c_str(),
                name_of(best_.metric()).c_str(), value);
  }
  const int patience = cfg_.train.early_stopping;
  return patience > 0 && best_.stale() >= patience && st_.step < cfg_.train.max_steps;
}

// Evaluates on the validation data and returns the fields of the metrics record.
Metrics Training::evaluate() {
  const EvalResult r = evaluator_->run(*model_, *data_.val, data_.task ? &*data_.task : nullptr,
                                       cfg_.train.eval_batches, grid_);
  summary_.final_val_loss = r.loss;
  last_eval_ = no_eval_values();
  last_eval_.val_loss = r.loss;
  if (data_.val->pairs()) return evaluate_translation(r);
  if (r.has_mlm) return evaluate_mlm(r);
  Metrics fields = {{"val_loss", r.loss}};
  if (!r.has_task) {
    std::printf("eval step %lld | val loss %.4f\n", static_cast<long long>(st_.step), r.loss);
    return fields;
  }
  summary_.task_accuracy = r.task_accuracy();
  last_eval_.task_accuracy = r.task_accuracy();
  std::printf(
      "eval step %lld | val loss %.4f | task accuracy %.2f%% (%lld/%lld held-out problems)\n",
      static_cast<long long>(st_.step), r.loss, 100.0 * r.task_accuracy(),
      static_cast<long long>(r.task_correct), static_cast<long long>(r.task_total));
  fields.push_back({"task_accuracy", r.task_accuracy()});
  return fields;
}

std::unique_ptr<Translator> Training::make_translator() {
  const auto id = [&](const std::string& text) { return *tokenizer_.id_of(text); };
  return std::make_unique<Translator>(*model_, tokenizer_, id(cfg_.data.pad_token),
                                      id(cfg_.data.bos_token), id(cfg_.data.eos_token),
                                      cfg_.train.micro_batch, 1);
}

// The encoder-decoder's evaluation: the loss and its perplexity, then the held-out pairs that
// the loss read decoded greedily: corpus BLEU and, for the synthetic task, exact match.
Metrics Training::evaluate_translation(const EvalResult& loss) {
  BeamOptions greedy;
  greedy.beam = 1;
  greedy.max_len_a = 0;
  greedy.max_len_b = cfg_.model.seq_len;
  const int64_t pairs =
      static_cast<int64_t>(cfg_.train.eval_batches) * static_cast<int64_t>(cfg_.train.micro_batch);
  const DecodeScore d = score_decoding(*make_translator(), *data_.val->pairs(), greedy, pairs,
                                       cfg_.train.micro_batch, grid_);
  last_eval_.bleu = d.bleu.score;
  Metrics fields = {{"val_loss", loss.loss}, {"bleu", d.bleu.score}};
  std::string line = "eval step " + std::to_string(st_.step) + " | val loss " +
                     TrainingLog::json_number(loss.loss, "%.4f") + " | ppl " +
                     TrainingLog::json_number(std::exp(loss.loss), "%.2f") + " | BLEU " +
                     TrainingLog::json_number(d.bleu.score, "%.2f");
  if (data_.translation) {
    summary_.task_accuracy = d.exact_match();
    last_eval_.task_accuracy = d.exact_match();
    fields.push_back({"task_accuracy", d.exact_match()});
    line += " | exact match " + TrainingLog::json_number(100.0 * d.exact_match(), "%.2f") + "% (" +
            std::to_string(d.exact) + "/" + std::to_string(d.total) + " held-out pairs, greedy)";
  }
  std::printf("%s\n", line.c_str());
  return fields;
}

// BERT's evaluation: the masked-LM loss and accuracy over the held-out predictions, and the
// sentence head's loss and accuracy; val_loss is their sum, as the training loss.
Metrics Training::evaluate_mlm(const EvalResult& r) {
  summary_.final_val_loss = r.total_loss();
  last_eval_.val_loss = r.total_loss();
  last_eval_.mlm_accuracy = r.mlm_accuracy();
  summary_.mlm_accuracy = r.mlm_accuracy();
  Metrics fields = {
      {"val_loss", r.total_loss()}, {"mlm_loss", r.loss}, {"mlm_accuracy", r.mlm_accuracy()}};
  std::string line = "eval step " + std::to_string(st_.step) + " | val loss " +
                     TrainingLog::json_number(r.total_loss(), "%.4f") + " | mlm loss " +
                     TrainingLog::json_number(r.loss, "%.4f") + " | mlm accuracy " +
                     TrainingLog::json_number(100.0 * r.mlm_accuracy(), "%.2f") + "% (" +
                     std::to_string(r.mlm_correct) + "/" + std::to_string(r.tokens) +
                     " held-out predictions)";
  if (r.has_sentence) {
    summary_.sentence_accuracy = r.sentence_accuracy();
    fields.push_back({"sentence_loss", r.sentence_loss()});
    fields.push_back({"sentence_accuracy", r.sentence_accuracy()});
    line += " | sentence accuracy " +
            TrainingLog::json_number(100.0 * r.sentence_accuracy(), "%.2f") + "%";
  }
  std::printf("%s\n", line.c_str());
  return fields;
}

void Training::print_run() const {
  const int mb = cfg_.train.micro_batch;
  const int gb = step_->global_batch();
  std::printf(
      "model: %s, %lld parameters; layout dp=%d tp=%d%s; backend %s; global batch %d x %d tokens "
      "(micro-batch %d, accumulation %d); %llu training windows\n",
      model_summary(cfg_.model).c_str(), static_cast<long long>(model_->table().full_count()),
      grid_.dp, grid_.tp, zero_ ? " zero=1" : "", model_->backend().describe().c_str(), gb,
      cfg_.model.seq_len, mb, gb / (mb * grid_.dp),
      static_cast<unsigned long long>(data_.train->size()));
  const double mib = 1048576.0;
  const size_t arenas = 2 * model_->arena_capacity() * sizeof(float);
  std::printf(
      "memory per rank: %.1f MiB of parameters and gradients, %.1f MiB of AdamW moments, "
      "%.1f MiB of activations\n",
      static_cast<double>(arenas) / mib,
      static_cast<double>(2 * opt_->size() * sizeof(float)) / mib,
      static_cast<double>(model_->memory_bytes() - arenas) / mib);
  std::fflush(stdout);
}

}  // namespace

TrainSummary train(const Config& cfg, const StepObserver& observe) {
  Training training(cfg);
  return training.run(observe);
}

}  // namespace ph

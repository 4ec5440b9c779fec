#include "trainer/trainer.h"

#include <mpi.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <vector>

#include "io/tokenizer.h"
#include "model/gpt.h"
#include "parallel/agreement.h"
#include "parallel/grid.h"
#include "parallel/runtime.h"
#include "trainer/checkpointing.h"
#include "trainer/compute.h"
#include "trainer/data_source.h"
#include "trainer/evaluator.h"
#include "trainer/optimizer.h"
#include "trainer/sampler.h"
#include "trainer/schedule.h"

namespace ph {

namespace {

std::atomic<int> g_stop_signal{0};

void on_signal(int sig) {
  g_stop_signal.store(sig);
}

std::string format_duration(double s) {
  char buf[64];
  const long t = static_cast<long>(s + 0.5);
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else if (t >= 60)
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

void write_text_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw InputError("run.dir: cannot write " + tmp);
    f << text;
    if (!f.flush()) throw InputError("run.dir: cannot write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw InputError("run.dir: cannot rename " + tmp + " to " + path + ": " + ec.message());
}

// The lines of a metrics.jsonl whose "step" is at most `step` (a resumed run rewrites the rest).
std::string metrics_up_to(const std::string& path, int64_t step) {
  std::ifstream in(path);
  std::string line, kept;
  while (std::getline(in, line)) {
    const size_t at = line.find("\"step\": ");
    if (at != std::string::npos && std::stoll(line.substr(at + 8)) <= step) kept += line + "\n";
  }
  return kept;
}

// Prints the keys whose value differs between the checkpoint's config and this run's (the
// model must match; data, batch or optimizer changes are allowed but should be visible).
void report_config_changes(const std::string& saved_yaml, const Config& cfg) {
  auto lines = [](const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    std::string line, section;
    while (std::getline(in, line)) {
      if (!line.empty() && line[0] != ' ')
        section = line;
      else
        out.push_back(section + line);
    }
    return out;
  };
  Config saved;
  try {
    saved = parse_config(saved_yaml, {}, "checkpoint config");
  } catch (const InputError&) {
    return;  // written by another version: the model check already passed
  }
  const std::vector<std::string> a = lines(config_to_yaml(saved)), b = lines(config_to_yaml(cfg));
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    if (a[i] != b[i] && a[i].rfind("run:", 0) != 0 && a[i].rfind("checkpoint:", 0) != 0)
      std::printf("note: resuming with a changed setting: %s (checkpoint: %s)\n", b[i].c_str(),
                  a[i].c_str());
}

// A JSON number, or null for NaN/Inf (which JSON cannot represent).
std::string json_number(double v, const char* fmt) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// Task prompts for the end-of-training samples: held-out problems of the synthetic task.
void print_task_samples(Gpt& model, Communicator* tp_host, const AdditionTask& task,
                        const Config& cfg) {
  const SampleConfig& sc = cfg.sample;
  std::vector<AdditionProblem> unused, problems;
  task.draw(cfg.train.seed + 7, 0, sc.count, unused, problems);
  int correct = 0;
  for (const AdditionProblem& pr : problems) {
    const std::string prompt = task.prompt(pr.a, pr.b);
    SampleOptions o;
    o.max_tokens = task.digits + 2;
    o.temperature = 0.0f;  // the task has one right answer: decode greedily
    o.stop_token = '\n';
    const std::vector<int32_t> gen = sample_tokens(model, tp_host, encode_bytes(prompt), o);
    std::string text = decode_bytes(gen.data(), gen.size());
    if (!text.empty() && text.back() == '\n') text.pop_back();
    long value = -1;
    const bool ok = task.parse_answer(text, value) && value == pr.a + pr.b;
    correct += ok ? 1 : 0;
    std::printf("  %s%s   -> %ld %s (expected %ld)\n", prompt.c_str(), text.c_str(), value,
                ok ? "ok" : "WRONG", pr.a + pr.b);
  }
  std::printf(
      "  %d/%zu sampled answers correct (answers are written least significant digit first)\n",
      correct, problems.size());
}

void print_text_samples(Gpt& model, Communicator* tp_host, const Config& cfg) {
  const SampleConfig& sc = cfg.sample;
  const std::string prompt = sc.prompt.empty() ? std::string("\n") : sc.prompt;
  for (int i = 0; i < sc.count; ++i) {
    SampleOptions o;
    o.max_tokens = sc.max_tokens;
    o.temperature = sc.temperature;
    o.top_k = sc.top_k;
    o.seed = cfg.train.seed + static_cast<uint64_t>(i);
    const std::vector<int32_t> gen = sample_tokens(model, tp_host, encode_bytes(prompt), o);
    std::printf("  --- sample %d ---\n%s%s\n", i, prompt.c_str(),
                decode_bytes(gen.data(), gen.size()).c_str());
  }
}

}  // namespace

void install_stop_handlers() {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
}

TrainSummary train(const Config& cfg) {
  namespace fs = std::filesystem;
  // Layout first: nothing is read or written before the grid is known to fit the model.
  ProcessGrid grid = make_grid(cfg.parallel.tp);
  const int dp = grid.dp, tp = grid.tp;
  const int mb = cfg.train.micro_batch;
  const int T = cfg.model.seq_len;
  const int global_batch = cfg.train.global_batch > 0 ? cfg.train.global_batch : mb * dp;
  validate_layout(grid.world, tp, cfg.model.n_heads, cfg.model.ffn_width(),
                  padded_vocab_size(cfg.model.vocab_size, tp), global_batch, mb);
  const int accum = global_batch / (mb * dp);
  const bool root = grid.rank == 0;
  std::printf("--- resolved config ---\n%s--- end of config ---\n", config_to_yaml(cfg).c_str());
  std::fflush(stdout);
  Communicator& world = *grid.world_comm;

  // Every rank must run the same experiment (a launcher passing different arguments to
  // different ranks would otherwise deadlock or diverge silently).
  {
    const std::string text = config_to_yaml(cfg);
    int64_t h[2] = {static_cast<int64_t>(std::hash<std::string>{}(text) >> 1), 0};
    h[1] = -h[0];
    world.all_reduce(h, 2, ReduceOp::Max);
    if (h[0] != -h[1])
      throw InputError(
          "the ranks were started with different configs (check the arguments the "
          "launcher passes to each rank)");
  }
  const std::string run_dir = cfg.run.dir;
  const std::string ckpt_dir = run_dir + "/checkpoints";
  std::string resume_from;
  agree(world, [&] {
    if (root) {
      std::error_code ec;
      fs::create_directories(run_dir, ec);
      if (ec) throw InputError("run.dir: cannot create '" + run_dir + "': " + ec.message());
    }
  });
  // Which checkpoint to resume from, checked before any data is read. A run directory that
  // already holds another run's checkpoints is never mixed with a fresh run.
  agree(world, [&] {
    const std::string existing = latest_checkpoint(ckpt_dir);
    if (cfg.checkpoint.resume == "auto")
      resume_from = existing;
    else if (cfg.checkpoint.resume != "none")
      resume_from = cfg.checkpoint.resume;
    if (!existing.empty() &&
        (resume_from.empty() || fs::weakly_canonical(fs::path(resume_from).parent_path()) !=
                                    fs::weakly_canonical(ckpt_dir)))
      throw InputError("run.dir: '" + run_dir + "' already holds checkpoints of a run (latest " +
                       existing +
                       "); continue it with checkpoint.resume=auto, or choose another run.dir");
  });
  if (!resume_from.empty()) {
    const CheckpointMeta meta = check_checkpoint_matches(resume_from, cfg, grid);
    if (root) report_config_changes(meta.config_yaml, cfg);
  }

  // One process writes the synthetic data; then every rank opens and validates the shards.
  agree(world, [&] {
    if (root) generate_task_data(cfg);
  });
  DataSource data;
  agree(world, [&] { data = open_data(cfg, /*need_train=*/true); });

  // ZeRO-1: the arena is cut into dp equal shards; this rank's optimizer holds one.
  const bool zero = cfg.parallel.zero == 1 && dp > 1;
  // Device memory and compute (runtime.device); gradients and activations travel over the
  // device communicators, host scalars over the grid's.
  Compute compute = make_compute(cfg, grid);
  Backend& be = *compute.backend;
  Gpt model(be, cfg.model, mb, grid.tp_rank, tp, compute.tp, zero ? static_cast<size_t>(dp) : 1);
  model.initialize(cfg.train.seed);
  const size_t shard = model.arena_capacity() / static_cast<size_t>(dp);
  const size_t own_lo = zero ? shard * static_cast<size_t>(grid.dp_rank) : 0;
  AdamW opt(be, cfg.optim, model.table(), own_lo, zero ? own_lo + shard : 0);
  DeviceBuffer<float> grad_shard(be, zero ? shard : 0);  // reduce-scattered gradient of the shard

  TrainState st;
  if (!resume_from.empty()) {
    st = load_training_checkpoint(resume_from, cfg, model, &opt, grid);
    std::printf("resumed from %s at step %lld (%llu samples consumed)\n", resume_from.c_str(),
                static_cast<long long>(st.step),
                static_cast<unsigned long long>(st.consumed_samples));
  }
  if (!resume_from.empty() && st.step >= cfg.train.max_steps)
    std::printf("checkpoint is already at train.max_steps = %d; nothing to train\n",
                cfg.train.max_steps);

  std::ofstream metrics;
  agree(world, [&] {
    if (!root) return;
    write_text_atomically(run_dir + "/config.yaml", config_to_yaml(cfg));
    // A resumed run keeps the metrics up to its checkpoint and drops records written after it.
    write_text_atomically(
        run_dir + "/metrics.jsonl",
        resume_from.empty() ? std::string() : metrics_up_to(run_dir + "/metrics.jsonl", st.step));
    metrics.open(run_dir + "/metrics.jsonl", std::ios::app);
    if (!metrics) throw InputError("run.dir: cannot write " + run_dir + "/metrics.jsonl");
  });

  std::printf(
      "model: %s, %lld parameters; layout dp=%d tp=%d%s; backend %s; "
      "global batch %d x %d tokens "
      "(micro-batch %d, accumulation %d); %llu training windows\n",
      model_summary(cfg.model).c_str(), static_cast<long long>(model.table().full_count()), dp, tp,
      zero ? " zero=1" : "", be.describe().c_str(), global_batch, T, mb, accum,
      static_cast<unsigned long long>(data.train->num_windows()));
  std::printf(
      "memory per rank: %.1f MiB of parameters and gradients, %.1f MiB of AdamW moments, "
      "%.1f MiB of activations\n",
      static_cast<double>(2 * model.arena_capacity() * sizeof(float)) / 1048576.0,
      static_cast<double>(2 * opt.size() * sizeof(float)) / 1048576.0,
      static_cast<double>(model.memory_bytes() - 2 * model.arena_capacity() * sizeof(float)) /
          1048576.0);
  std::fflush(stdout);

  const size_t batch_tokens = static_cast<size_t>(accum) * mb * T;
  std::vector<int32_t> inputs(batch_tokens), targets(batch_tokens);
  Evaluator evaluator(mb, model);
  const AdditionTask* task = data.task ? &*data.task : nullptr;
  TrainSummary summary;

  // Data parallelism without ZeRO: each gradient bucket's all-reduce starts as soon as
  // backward has finished it (last micro-batch only), overlapping the rest of backward.
  std::vector<Work> inflight;
  inflight.reserve(static_cast<size_t>(cfg.model.n_layers) + 4);
  // With tp > 1 the tensor-parallel communicator works during backward too. NCCL guarantees
  // progress for two communicators' kernels at once only when they fit on the GPU together, so
  // there the data-parallel all-reduce of the whole gradient starts after backward instead (on
  // every backend alike, so that the CPU tests of dp x tp layouts exercise this path).
  const bool overlap_dp = dp > 1 && !zero && tp == 1;
  auto start_bucket = [&](size_t offset, size_t count) {
    inflight.push_back(compute.dp->all_reduce_async(model.grads() + offset, count, ReduceOp::Sum));
    compute.dp->progress();
  };

  using clock = std::chrono::steady_clock;
  const auto t_start = clock::now();
  auto t_last = t_start;
  int64_t tokens_since_log = 0;
  double loss_since_log = 0.0;  // train_loss is the mean over the steps since the last record
  int steps_since_log = 0;
  int64_t skipped_steps = 0;
  const int64_t first_step = st.step;

  auto do_eval = [&](std::string& json_extra) {
    if (!data.val) return;
    const EvalResult r = evaluator.run(model, *data.val, task, cfg.train.eval_batches, grid);
    summary.final_val_loss = r.loss;
    json_extra += ", \"val_loss\": " + json_number(r.loss, "%.6f");
    if (r.has_task) {
      summary.task_accuracy = r.task_accuracy();
      json_extra += ", \"task_accuracy\": " + json_number(r.task_accuracy(), "%.6f");
      std::printf(
          "eval step %lld | val loss %.4f | task accuracy %.2f%% (%lld/%lld held-out problems)\n",
          static_cast<long long>(st.step), r.loss, 100.0 * r.task_accuracy(),
          static_cast<long long>(r.task_correct), static_cast<long long>(r.task_total));
    } else {
      std::printf("eval step %lld | val loss %.4f\n", static_cast<long long>(st.step), r.loss);
    }
  };

  while (st.step < cfg.train.max_steps) {
    const int step = static_cast<int>(st.step);
    // Sample s of the global batch is the global sample consumed + s, on every layout:
    // micro-batch a of data-parallel rank r holds samples [(a·dp + r)·mb, +mb).
    for (int a = 0; a < accum; ++a)
      data.train->fill(st.consumed_samples + static_cast<uint64_t>((a * dp + grid.dp_rank) * mb),
                       mb, inputs.data() + static_cast<size_t>(a) * mb * T,
                       targets.data() + static_cast<size_t>(a) * mb * T);
    // The loss is the mean over every counted target of the global batch, so targets are
    // counted (over data-parallel ranks) before any gradient is formed.
    int64_t counted_global = 0;
    for (int32_t t : targets) counted_global += t != kIgnoreIndex ? 1 : 0;
    if (dp > 1) grid.dp_comm->all_reduce(&counted_global, 1, ReduceOp::Sum);
    model.zero_grads();
    double loss_sum = 0.0;
    const float dloss = counted_global > 0 ? 1.0f / static_cast<float>(counted_global) : 0.0f;
    for (int a = 0; a < accum; ++a) {
      const size_t off = static_cast<size_t>(a) * mb * T;
      DropoutContext d;
      d.train = true;
      d.seed = cfg.train.seed;
      d.step = static_cast<uint32_t>(step);
      d.sample0 = static_cast<int64_t>(a * dp + grid.dp_rank) * mb;
      if (overlap_dp && a == accum - 1) model.set_grad_hook(start_bucket);
      loss_sum += model.forward_backward(inputs.data() + off, targets.data() + off, mb, T, dloss, d,
                                         nullptr);
      model.set_grad_hook({});
    }
    if (dp > 1 && !zero && !overlap_dp) start_bucket(0, model.arena_size());
    if (dp > 1) grid.dp_comm->all_reduce(&loss_sum, 1, ReduceOp::Sum);
    // Gradients summed over data-parallel ranks: all of them, or this rank's ZeRO shard.
    for (Work& w : inflight) w.wait();
    inflight.clear();
    float* grads = model.grads();
    size_t lo = 0, hi = model.arena_size();
    if (zero) {
      compute.dp->reduce_scatter(model.grads(), grad_shard.data(), shard, ReduceOp::Sum);
      grads = grad_shard.data();
      lo = own_lo;
      hi = own_lo + shard;
    }
    // Global gradient norm: every parameter once (replicated ones on tensor-parallel rank 0).
    double sq = grad_sq_sum(be, model.table(), grads, lo, hi, grid.tp_rank == 0);
    if (zero) grid.dp_comm->all_reduce(&sq, 1, ReduceOp::Sum);
    if (tp > 1) grid.tp_comm->all_reduce(&sq, 1, ReduceOp::Sum);
    const double gnorm = std::sqrt(sq);
    const double loss = counted_global > 0 ? loss_sum / static_cast<double>(counted_global) : 0.0;
    const float lr = learning_rate(cfg.optim, cfg.train.max_steps, step);
    st.consumed_samples += static_cast<uint64_t>(global_batch);
    tokens_since_log += static_cast<int64_t>(global_batch) * T;
    const bool finite = std::isfinite(loss) && std::isfinite(gnorm);
    if (!finite) {
      // Loss and norm are global, so every rank takes the same branch. Steps are numbered
      // from 1 in every message, log line and record.
      if (cfg.train.nan_policy == "stop")
        throw AgreedError("non-finite " +
                          std::string(std::isfinite(loss) ? "gradient norm" : "loss") +
                          " at step " + std::to_string(step + 1) +
                          " (train.nan_policy = stop); the last checkpoint is intact");
      std::printf("step %d: non-finite %s; step skipped (train.nan_policy = skip)\n", step + 1,
                  std::isfinite(loss) ? "gradient norm" : "loss");
      ++skipped_steps;
    } else {
      opt.step(model.params(), grads, lr, step + 1, clip_scale(gnorm, cfg.train.grad_clip));
      if (zero)  // every rank gets the updated shards of the others
        compute.dp->all_gather(model.params() + own_lo, model.params(), shard);
      loss_since_log += loss;
      ++steps_since_log;
    }
    st.step += 1;

    const bool last = st.step == cfg.train.max_steps;
    const bool eval_now =
        cfg.train.eval_interval > 0 ? (st.step % cfg.train.eval_interval == 0 || last) : last;
    const bool log_now =
        st.step % cfg.log.interval == 0 || last || eval_now || st.step == first_step + 1;
    if (log_now) {
      const auto now = clock::now();
      const double dt = std::chrono::duration<double>(now - t_last).count();
      const double elapsed = std::chrono::duration<double>(now - t_start).count();
      const double tps = dt > 0 ? static_cast<double>(tokens_since_log) / dt : 0.0;
      const double mean_loss =
          steps_since_log > 0 ? loss_since_log / steps_since_log : std::nan("");
      const double eta = (st.step > first_step)
                             ? elapsed / static_cast<double>(st.step - first_step) *
                                   static_cast<double>(cfg.train.max_steps - st.step)
                             : 0.0;
      std::printf(
          "step %6lld/%d | loss %.4f | lr %.2e | grad norm %.3f | %.0f tok/s | %s elapsed | ETA "
          "%s\n",
          static_cast<long long>(st.step), cfg.train.max_steps, mean_loss, static_cast<double>(lr),
          gnorm, tps, format_duration(elapsed).c_str(), format_duration(eta).c_str());
      std::string extra;
      if (eval_now) do_eval(extra);
      if (root) {
        metrics << "{\"step\": " << st.step
                << ", \"train_loss\": " << json_number(mean_loss, "%.6f")
                << ", \"lr\": " << json_number(lr, "%.6e")
                << ", \"grad_norm\": " << json_number(gnorm, "%.6f")
                << ", \"tokens_per_s\": " << json_number(tps, "%.1f")
                << ", \"elapsed_s\": " << json_number(elapsed, "%.3f")
                << ", \"consumed_samples\": " << st.consumed_samples
                << ", \"skipped_steps\": " << skipped_steps << extra << "}\n";
        metrics.flush();
      }
      std::fflush(stdout);
      t_last = clock::now();  // evaluation time does not count against throughput
      tokens_since_log = 0;
      loss_since_log = 0.0;
      steps_since_log = 0;
    }
    const bool save_now =
        (cfg.checkpoint.interval > 0 && st.step % cfg.checkpoint.interval == 0) || last;
    // A signal may reach some ranks only: they agree before acting on it.
    int64_t sig = g_stop_signal.load();
    if (grid.world > 1) world.all_reduce(&sig, 1, ReduceOp::Max);
    if (save_now || sig) {
      summary.last_checkpoint = save_training_checkpoint(ckpt_dir, cfg, model, &opt, st, grid);
      std::printf("saved checkpoint %s\n", summary.last_checkpoint.c_str());
    }
    if (sig) {
      std::printf("stopped by signal %d at step %lld; resume with checkpoint.resume=auto\n",
                  static_cast<int>(sig), static_cast<long long>(st.step));
      summary.interrupted = true;
      break;
    }
  }
  summary.steps_done = st.step;
  if (!summary.interrupted && cfg.sample.count > 0) {
    std::printf("samples:\n");
    if (task)
      print_task_samples(model, grid.tp_comm.get(), *task, cfg);
    else
      print_text_samples(model, grid.tp_comm.get(), cfg);
  }
  if (summary.task_accuracy >= 0)
    std::printf("final task accuracy: %.2f%% exact match on held-out problems\n",
                100.0 * summary.task_accuracy);
  std::fflush(stdout);
  return summary;
}

}  // namespace ph

// Training-step throughput of polyhead on one rank, on the backend of runtime.device (cpu, cuda,
// or auto) at runtime.precision.
//
//   OMP_NUM_THREADS=2 build/bench/bench_train configs/small.yaml [key.path=value ...]
//       [--steps N] [--warmup W] [--seed S]
//   build/bench/bench_train configs/gpt2-124m.yaml runtime.device=cuda runtime.precision=bf16
//
// Builds the config's model (model.type gpt, encdec or bert; micro-batch train.micro_batch) and
// AdamW, and runs exactly what the trainer does per optimizer step on one rank (no gradient
// accumulation): zero the gradient arena, forward_backward on a micro-batch of random tokens,
// the global gradient norm, the learning rate and one AdamW step with the clipping factor. W
// untimed steps come first, then N timed ones. Prints ms/step, tokens/s, peak RSS, the arenas'
// size, device memory on a GPU, and the model FLOP utilisation (MFU): achieved model FLOP/s over
// the device's peak (trainer/device_peak.h): runtime.peak_tflops when set; on the CPU the peak
// sgemm FLOP/s measured at the end of the same run (cblas_sgemm, 2048 x 2048 x 2048, best of 5,
// with OpenBLAS given the same thread count); on a GPU the dense peak of its model for
// runtime.precision from a table. Each timed step ends when the device has finished it. A final
// JSON line carries every figure.
//
// gpt: B windows of T + 1 random tokens (T = model.seq_len); tokens/s counts B x T per step.
// encdec: B random pairs padded to S = model.src_seq_len and T = model.seq_len, as the trainer
// pads them, with source and target lengths drawn uniformly in [S/2, S] and [T/2, T] (as
// bench/torch_encdec.py --bench); tokens/s counts the non-pad target tokens (what the trainer's
// tok/s counts), and the JSON line also carries them as target_tokens_per_s.
// bert: B full-length sequences of T random tokens in two segments (types 0 then 1), P =
// data.mlm.max_predictions (0: ceil(data.mlm.prob x T), 15%) predicted distinct positions in
// [1, T) per sequence with random targets, and a random sentence label (with a sentence head),
// as bench/hf_bert.py --bench; tokens/s counts B x T per step (the JSON line also carries the
// predictions/s).
//
// The thread count is OpenMP's default, i.e. OMP_NUM_THREADS (this program does not read
// runtime.threads). One rank, tp = 1 (MPI is initialised only on a GPU, whose set-up needs it).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "io/config.h"
#include "model/model.h"
#include "model/vocab_parallel_loss.h"
#include "parallel/grid.h"
#include "parallel/runtime.h"
#include "trainer/compute.h"
#include "trainer/device_peak.h"
#include "trainer/model_factory.h"
#include "trainer/model_flops.h"
#include "trainer/optimizer.h"
#include "trainer/process_memory.h"
#include "trainer/schedule.h"
#include "trainer/training_log.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// BERT's micro-batch (see the header); returns the predictions it counts.
int64_t fill_random_bert(const ph::ModelConfig& mc, std::mt19937_64& rng, ph::Batch& batch) {
  const int B = batch.B, T = batch.T, P = batch.P;
  std::uniform_int_distribution<int32_t> tok(0, mc.vocab_size - 1);
  std::vector<int32_t> pos(static_cast<size_t>(T) - 1);
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < T; ++t) {
      const size_t i = static_cast<size_t>(b) * T + static_cast<size_t>(t);
      batch.tokens[i] = tok(rng);
      batch.types[i] = 2 * t >= T ? 1 : 0;
    }
    std::iota(pos.begin(), pos.end(), 1);
    std::shuffle(pos.begin(), pos.end(), rng);
    for (int k = 0; k < P; ++k) {
      const size_t i = static_cast<size_t>(b) * P + static_cast<size_t>(k);
      batch.mlm_positions[i] = pos[static_cast<size_t>(k)];
      batch.targets[i] = tok(rng);
    }
    if (!batch.sentence_labels.empty())
      batch.sentence_labels[static_cast<size_t>(b)] = static_cast<int32_t>(rng() % 2);
  }
  return static_cast<int64_t>(B) * P;
}

// A micro-batch of random samples for the model type; returns the targets it counts.
//   gpt: windows of T + 1 tokens, inputs the first T, targets the last T.
//   encdec: pairs padded to S and T, source length in [S/2, S], target length in [T/2, T]
//   (targets past it are ignored; the padded positions' tokens stay random: a step costs the
//   same whatever they are).
int64_t fill_random(const ph::ModelConfig& mc, std::mt19937_64& rng, ph::Batch& batch) {
  const int B = batch.B, T = batch.T;
  if (mc.type == ph::ModelType::kBert) return fill_random_bert(mc, rng, batch);
  std::uniform_int_distribution<int32_t> tok(0, mc.vocab_size - 1);
  if (mc.type != ph::ModelType::kEncDec) {
    std::vector<int32_t> window(static_cast<size_t>(T) + 1);
    for (int b = 0; b < B; ++b) {
      for (int32_t& t : window) t = tok(rng);
      std::copy_n(window.begin(), T, batch.tokens.begin() + static_cast<ptrdiff_t>(b) * T);
      std::copy_n(window.begin() + 1, T, batch.targets.begin() + static_cast<ptrdiff_t>(b) * T);
    }
    return static_cast<int64_t>(B) * T;
  }
  const int S = batch.S;
  std::uniform_int_distribution<int32_t> src_len(std::max(1, S / 2), S),
      tgt_len(std::max(1, T / 2), T);
  for (int32_t& t : batch.source) t = tok(rng);
  for (int32_t& t : batch.tokens) t = tok(rng);
  int64_t counted = 0;
  for (int b = 0; b < B; ++b) {
    batch.source_lengths[static_cast<size_t>(b)] = src_len(rng);
    const int n = tgt_len(rng);
    for (int t = 0; t < T; ++t)
      batch.targets[static_cast<size_t>(b) * T + t] = t < n ? tok(rng) : ph::kIgnoreIndex;
    counted += n;
  }
  return counted;
}

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr,
               "bench_train: %s\nusage: bench_train CONFIG [key.path=value ...] [--steps N] "
               "[--warmup W] [--seed S]\n",
               msg);
  std::exit(2);
}

int parse_int(const std::string& flag, const char* text, int lo) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (!end || *end != '\0' || v < lo || v > (1L << 30))
    usage((flag + " expects an integer >= " + std::to_string(lo)).c_str());
  return static_cast<int>(v);
}

int run(int argc, char** argv) {
  std::string config_path;
  std::vector<std::string> overrides;
  int steps = 20, warmup = 3;
  uint64_t seed = 1337;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage((a + " needs a value").c_str());
      return argv[++i];
    };
    if (a == "--steps")
      steps = parse_int(a, value(), 1);
    else if (a == "--warmup")
      warmup = parse_int(a, value(), 0);
    else if (a == "--seed")
      seed = static_cast<uint64_t>(parse_int(a, value(), 0));
    else if (a.rfind("--", 0) == 0)
      usage(("unknown option '" + a + "'").c_str());
    else if (config_path.empty())
      config_path = a;
    else
      overrides.push_back(a);
  }
  if (config_path.empty()) usage("missing CONFIG");

  const ph::Config cfg = ph::load_config(config_path, overrides);
  const ph::ModelConfig& mc = cfg.model;
  const int B = cfg.train.micro_batch, T = mc.seq_len, V = mc.vocab_size;
  const int threads = omp_get_max_threads();

  // runtime.device and runtime.precision choose the backend and its GEMM precision, as in the
  // trainer (a cuda device that is missing is refused with the trainer's message).
  // MPI is initialised only for a GPU (its set-up checks run over MPI; on the CPU a singleton MPI
  // would add ~160 MiB to the peak RSS this program reports).
  ph::check_device(cfg);
  const bool cpu = !ph::use_cuda(cfg);
  std::optional<ph::MpiRuntime> mpi;
  ph::ProcessGrid one_rank;
  ph::Compute compute;
  if (cpu) {
    compute.backend = ph::make_cpu_backend(ph::gemm_precision(cfg));
  } else {
    mpi.emplace(&argc, &argv);
    one_rank = ph::make_grid(1);
    compute = ph::make_compute(cfg, one_rank);
  }
  ph::Backend* const backend = compute.backend.get();
  const bool encdec = mc.type == ph::ModelType::kEncDec;
  const bool bert = mc.type == ph::ModelType::kBert;
  const std::unique_ptr<ph::Model> model = ph::make_model(*backend, cfg, one_rank, nullptr, B);
  model->initialize(seed);
  ph::AdamW opt(*backend, cfg.optim, model->table());
  ph::GradNorm norm(*backend, model->table(), 0, model->arena_size(), true);
  const int64_t n_params = model->table().full_count();

  ph::Batch batch;
  batch.B = B;
  batch.T = T;
  batch.tokens.resize(static_cast<size_t>(B) * T);
  batch.targets.resize(static_cast<size_t>(B) * T);
  if (bert) {
    batch.P = cfg.data.mlm_predictions(T);
    if (batch.P < 1 || batch.P >= T) usage("data.mlm gives no predictions or too many");
    batch.types.resize(static_cast<size_t>(B) * T);
    batch.lengths.assign(static_cast<size_t>(B), T);
    batch.mlm_positions.resize(static_cast<size_t>(B) * static_cast<size_t>(batch.P));
    batch.targets.resize(batch.mlm_positions.size());
    if (mc.sentence_head != ph::SentenceHead::kNone) {
      batch.sentence_labels.resize(static_cast<size_t>(B));
      batch.sentence_dloss = 1.0f / static_cast<float>(B);
    }
  }
  if (encdec) {
    batch.S = mc.source_len();
    batch.source.resize(static_cast<size_t>(B) * static_cast<size_t>(batch.S));
    batch.source_lengths.resize(static_cast<size_t>(B));
  }
  std::mt19937_64 rng(seed);

  std::vector<double> times;
  int64_t timed_tokens = 0, timed_positions = 0, timed_sources = 0;
  double loss = 0.0, gnorm = 0.0;
  for (int step = 0; step < warmup + steps; ++step) {
    const int64_t n_targets = fill_random(mc, rng, batch);
    const auto t0 = Clock::now();
    model->zero_grads();
    ph::DropoutContext d;
    d.train = true;
    d.seed = cfg.train.seed;
    d.step = static_cast<uint32_t>(step);
    int64_t counted = 0;
    const float dloss = 1.0f / static_cast<float>(n_targets);
    loss = model->forward_backward(batch, dloss, d, &counted) / static_cast<double>(counted);
    gnorm = std::sqrt(norm.sum_squares(model->grads()));
    const float lr = ph::learning_rate(cfg.optim, cfg.train.max_steps, step, mc.d_model);
    if (std::isfinite(loss) && std::isfinite(gnorm))
      opt.step(model->params(), model->grads(), lr, step + 1,
               ph::clip_scale(gnorm, cfg.train.grad_clip));
    backend->synchronize();  // the step ends when the device has finished it
    const double dt = seconds_since(t0);
    if (step >= warmup) {
      times.push_back(dt);
      timed_tokens += counted;
      timed_positions += static_cast<int64_t>(B) * T;
      for (int b = 0; b < B && encdec; ++b)
        timed_sources += batch.source_lengths[static_cast<size_t>(b)];
    }
  }

  double total = 0.0;
  for (double t : times) total += t;
  const double n_steps = static_cast<double>(times.size());
  const double ms = 1e3 * total / n_steps;
  const double ms_min = 1e3 * *std::min_element(times.begin(), times.end());
  // bert counts every position (B x T), the others their counted targets.
  const double tps = static_cast<double>(bert ? timed_positions : timed_tokens) / total;
  const double rss = ph::peak_rss_mib();  // before the sgemm probe allocates its 48 MiB
  // Model FLOPs per counted token (trainer/model_flops.h): gpt's and bert's per position;
  // encdec's over the positions its training steps compute (the real ones: every target up to
  // its sample's length is counted) divided by its counted targets.
  const double fpt = encdec ? ph::encdec_flops(mc, static_cast<double>(timed_sources),
                                               static_cast<double>(timed_tokens)) /
                                  static_cast<double>(timed_tokens)
                            : ph::flops_per_token(cfg, n_params);
  const double achieved = fpt * tps;
  // The CPU's sgemm probe takes the best of 5 calls here (the trainer's start-up takes 3).
  const double peak = cpu && cfg.runtime.peak_tflops <= 0 ? ph::peak_sgemm_flops(threads, 5)
                                                          : ph::device_peak(cfg, *backend).flops;
  const double mfu = peak > 0 ? achieved / peak : NAN;
  const int64_t device_bytes = backend->device_memory_used();
  const double device_mib = device_bytes >= 0 ? static_cast<double>(device_bytes) / 1048576.0 : NAN;
  const double arena_mib =
      static_cast<double>(model->memory_bytes() + 2 * opt.size() * sizeof(float)) / 1048576.0;

  if (encdec)
    std::printf(
        "polyhead: %s encdec L=%d+%d d=%d H=%d S=%d T=%d V=%d B=%d, %lld parameters, %d "
        "threads\n",
        config_path.c_str(), mc.encoder_depth(), mc.decoder_depth(), mc.d_model, mc.n_heads,
        batch.S, T, V, B, static_cast<long long>(n_params), threads);
  else if (bert)
    std::printf(
        "polyhead: %s bert L=%d d=%d H=%d T=%d V=%d B=%d P=%d, %lld parameters, %d "
        "threads\n",
        config_path.c_str(), mc.n_layers, mc.d_model, mc.n_heads, T, V, B, batch.P,
        static_cast<long long>(n_params), threads);
  else
    std::printf("polyhead: %s L=%d d=%d H=%d T=%d V=%d B=%d, %lld parameters, %d threads\n",
                config_path.c_str(), mc.n_layers, mc.d_model, mc.n_heads, T, V, B,
                static_cast<long long>(n_params), threads);
  if (!cpu)
    std::printf("device %s, %s GEMMs, %.0f MiB of device memory in use\n",
                backend->device_name().c_str(), ph::name_of(cfg.runtime.precision).c_str(),
                device_mib);
  std::printf("%.2f ms/step | %.0f %stok/s | peak RSS %.1f MiB (arenas %.1f MiB) | loss %.4f\n", ms,
              tps, encdec ? "target " : "", rss, arena_mib, loss);
  std::printf(
      "MFU %.1f%%: %.2f GFLOP/s achieved (%.0f FLOP/token) of %.1f GFLOP/s peak %s "
      "(over %zu steps after %d warm-up)\n",
      100.0 * mfu, achieved * 1e-9, fpt, peak * 1e-9,
      cfg.runtime.peak_tflops > 0 ? "(runtime.peak_tflops)"
      : cpu                       ? "sgemm"
                                  : "(GPU table)",
      times.size(), warmup);
  char extra[256] = "";  // encdec: the source length and the figure under torch_encdec.py's name
  if (bert)
    std::snprintf(extra, sizeof extra,
                  "\"type\": \"bert\", \"P\": %d, \"predictions_per_s\": %.1f, ", batch.P,
                  static_cast<double>(timed_tokens) / total);
  else if (encdec)
    std::snprintf(extra, sizeof extra,
                  "\"type\": \"encdec\", \"S\": %d, \"target_tokens_per_s\": %.1f, ", batch.S, tps);
  if (!cpu) {  // the GPU's name, the GEMM precision and device memory (MiB)
    const size_t used = std::strlen(extra);
    std::snprintf(extra + used, sizeof extra - used,
                  "\"device\": \"%s\", \"precision\": \"%s\", \"device_mem_mb\": %.1f, ",
                  backend->device_name().c_str(), ph::name_of(cfg.runtime.precision).c_str(),
                  device_mib);
  }
  std::printf(
      "{\"bench\": \"polyhead\", \"config\": \"%s\", %s\"threads\": %d, \"B\": %d, "
      "\"T\": %d, \"V\": %d, \"params\": %lld, \"steps\": %zu, \"warmup\": %d, "
      "\"ms_per_step\": %.3f, \"ms_per_step_min\": %.3f, \"tokens_per_s\": %.1f, "
      "\"peak_rss_mb\": %.1f, \"arena_mb\": %.1f, \"flops_per_token\": %.0f, "
      "\"achieved_gflops\": %.3f, \"peak_sgemm_gflops\": %.3f, \"mfu\": %s, "
      "\"final_loss\": %.6f, \"grad_norm\": %.6f}\n",
      config_path.c_str(), extra, threads, B, T, V, static_cast<long long>(n_params), times.size(),
      warmup, ms, ms_min, tps, rss, arena_mib, fpt, achieved * 1e-9, peak * 1e-9,
      ph::TrainingLog::json_number(mfu, "%.4f").c_str(), loss, gnorm);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const ph::InputError& e) {
    std::fprintf(stderr, "bench_train: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train: error: %s\n", e.what());
    return 1;
  }
}

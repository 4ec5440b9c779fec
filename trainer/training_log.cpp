#include "trainer/training_log.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "parallel/agreement.h"
#include "trainer/process_memory.h"

namespace ph {

namespace {

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

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

KeptMetrics metrics_up_to(const std::string& text, int64_t step) {
  std::istringstream in(text);
  std::string line;
  KeptMetrics kept;
  while (std::getline(in, line)) {
    const size_t at = line.find("\"step\": ");
    const char* first = at == std::string::npos ? nullptr : line.c_str() + at + 8;
    char* end = nullptr;
    errno = 0;
    const long long s = first ? std::strtoll(first, &end, 10) : 0;
    if (!first || line.back() != '}' || end == first || errno != 0 ||
        (*end != ',' && *end != '}')) {
      ++kept.unreadable;
      continue;
    }
    if (s <= step) kept.text += line + "\n";
  }
  return kept;
}

void write_text_atomically(const std::string& path, const std::string& text,
                           const std::string& what) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw InputError(what + ": cannot write " + tmp);
    f << text;
    if (!f.flush()) throw InputError(what + ": cannot write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw InputError(what + ": cannot rename " + tmp + " to " + path + ": " + ec.message());
}

std::string TrainingLog::json_number(double v, const char* fmt) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

std::string TrainingLog::json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string TrainingLog::json_number(float v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

TrainingLog::TrainingLog(const Config& cfg, Communicator& world, const Backend& backend,
                         const Throughput& throughput, int64_t first_step, bool resumed)
    : cfg_(cfg),
      world_(world),
      backend_(backend),
      throughput_(throughput),
      root_(world.rank() == 0),
      first_step_(first_step),
      last_recorded_(first_step) {
  agree(world, [&] {
    if (!root_) return;
    const std::string path = cfg.run.dir + "/metrics.jsonl";
    KeptMetrics kept;
    if (resumed) kept = metrics_up_to(read_text(path), first_step);
    if (kept.unreadable > 0)
      std::printf(
          "note: %s: dropped %d unreadable line%s (a record cut short when a run ended "
          "while writing it)\n",
          path.c_str(), kept.unreadable, kept.unreadable > 1 ? "s" : "");
    write_text_atomically(path, kept.text);
    metrics_.open(path, /*create_new=*/false, "run.dir");
    if (!cfg.log.tensorboard.empty()) {
      const std::filesystem::path dir(cfg.log.tensorboard);
      events_ = std::make_unique<EventFileWriter>(
          dir.is_absolute() ? dir.string() : cfg.run.dir + "/" + dir.string(), first_step + 1);
      std::printf("TensorBoard events: %s\n", events_->path().c_str());
    }
  });
  t_start_ = t_last_ = Clock::now();
}

TrainingLog::~TrainingLog() = default;

void TrainingLog::add(const StepResult& r, int64_t tokens) {
  tokens_ += tokens;
  flops_ += r.flops;
  steps_ += 1;
  if (r.applied) {
    loss_ += r.loss;
    ++applied_;
  } else {
    ++skipped_;
  }
}

void TrainingLog::print(int64_t step, const StepResult& last) {
  const auto now = Clock::now();
  const double dt = std::chrono::duration<double>(now - t_last_).count();
  const double elapsed = std::chrono::duration<double>(now - t_start_).count();
  // The largest of any rank: host memory, and device memory in MiB (-1 on the CPU backend).
  const double mib = 1048576.0;
  const int64_t device = backend_.device_memory_used();
  double memory[2] = {peak_rss_mib(), device < 0 ? -1.0 : static_cast<double>(device) / mib};
  world_.all_reduce(memory, 2, ReduceOp::Max);
  const int max_steps = cfg_.train.max_steps;
  const double mean_loss = applied_ > 0 ? loss_ / applied_ : std::nan("");
  const double tokens_per_s = dt > 0 ? static_cast<double>(tokens_) / dt : 0.0;
  const Throughput& t = throughput_;
  const double mfu = dt > 0 && t.peak_flops > 0 ? flops_ / dt / t.peak_flops : std::nan("");
  step_ = step;
  line_ = {{"train_loss", mean_loss},
           {"lr", last.lr, Metric::Kind::kFloat},
           {"grad_norm", last.grad_norm},
           {"tokens_per_s", tokens_per_s},
           {"mfu", mfu},
           {"flops_per_token", t.flops_per_token},
           {"peak_rss_mb", memory[0]}};
  if (memory[1] >= 0) line_.push_back({"device_mem_mb", memory[1]});
  line_.push_back({"elapsed_s", elapsed});
  const double eta = step > first_step_ ? elapsed / static_cast<double>(step - first_step_) *
                                              static_cast<double>(max_steps - step)
                                        : 0.0;
  const std::string device_text =
      memory[1] >= 0 ? " | GPU mem " + json_number(memory[1], "%.0f") + " MiB" : "";
  std::printf(
      "step %6lld/%d | loss %.4f | lr %.2e | grad norm %.3f | %.0f tok/s | MFU %s | RSS %.0f "
      "MiB%s | %s elapsed | ETA %s\n",
      static_cast<long long>(step), max_steps, mean_loss, static_cast<double>(last.lr),
      last.grad_norm, tokens_per_s,
      std::isfinite(mfu) ? (json_number(100.0 * mfu, "%.1f") + "%").c_str() : "n/a", memory[0],
      device_text.c_str(), format_duration(elapsed).c_str(), format_duration(eta).c_str());
}

void TrainingLog::record(uint64_t consumed, const Metrics& extra) {
  agree(world_, [&] {
    if (!root_) return;
    Metrics fields = line_;
    fields.push_back({"consumed_samples", static_cast<double>(consumed), Metric::Kind::kInteger});
    fields.push_back({"skipped_steps", static_cast<double>(skipped_), Metric::Kind::kInteger});
    fields.insert(fields.end(), extra.begin(), extra.end());
    std::string record = "{\"step\": " + std::to_string(step_);
    std::vector<TbScalar> scalars;
    for (const Metric& f : fields) {
      std::string value;
      switch (f.kind) {
        case Metric::Kind::kInteger:
          value = std::to_string(static_cast<long long>(f.value));
          break;
        case Metric::Kind::kFloat:
          value = json_number(static_cast<float>(f.value));
          break;
        case Metric::Kind::kDouble:
          value = json_number(f.value);
          break;
      }
      record += ", \"" + f.name + "\": " + value;
      if (std::isfinite(f.value)) scalars.push_back({f.name, static_cast<float>(f.value)});
    }
    record += "}\n";
    const RecordFile::Failure failed = metrics_.append(record);
    if (!failed.why.empty())
      throw IoError("cannot write " + metrics_.path() + " at step " + std::to_string(step_) + ": " +
                    failed.why +
                    (failed.cut
                         ? "; it keeps the records up to step " + std::to_string(last_recorded_)
                         : "; its last line may be cut short"));
    last_recorded_ = step_;
    if (events_) events_->write(step_, scalars);
  });
  std::fflush(stdout);
  t_last_ = Clock::now();
  tokens_ = 0;
  flops_ = 0.0;
  steps_ = 0;
  loss_ = 0.0;
  applied_ = 0;
}

}  // namespace ph

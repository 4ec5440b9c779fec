#include "trainer/training_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "parallel/agreement.h"

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

TrainingLog::TrainingLog(const Config& cfg, Communicator& world, int64_t first_step, bool resumed)
    : cfg_(cfg),
      world_(world),
      root_(world.rank() == 0),
      first_step_(first_step),
      path_(cfg.run.dir + "/metrics.jsonl"),
      last_recorded_(first_step) {
  agree(world, [&] {
    if (!root_) return;
    KeptMetrics kept;
    if (resumed) kept = metrics_up_to(read_text(path_), first_step);
    if (kept.unreadable > 0)
      std::printf(
          "note: %s: dropped %d unreadable line%s (a record cut short when a run ended "
          "while writing it)\n",
          path_.c_str(), kept.unreadable, kept.unreadable > 1 ? "s" : "");
    write_text_atomically(path_, kept.text);
    bytes_ = kept.text.size();
    fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd_ < 0) throw InputError("run.dir: cannot write " + path_ + ": " + std::strerror(errno));
  });
  t_start_ = t_last_ = Clock::now();
}

TrainingLog::~TrainingLog() {
  if (fd_ >= 0) ::close(fd_);
}

void TrainingLog::add(const StepResult& r, int64_t tokens) {
  tokens_ += tokens;
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
  const int max_steps = cfg_.train.max_steps;
  line_ = Line{step,           applied_ > 0 ? loss_ / applied_ : std::nan(""),   last.lr,
               last.grad_norm, dt > 0 ? static_cast<double>(tokens_) / dt : 0.0, elapsed};
  const double eta = step > first_step_ ? elapsed / static_cast<double>(step - first_step_) *
                                              static_cast<double>(max_steps - step)
                                        : 0.0;
  std::printf(
      "step %6lld/%d | loss %.4f | lr %.2e | grad norm %.3f | %.0f tok/s | %s elapsed | ETA %s\n",
      static_cast<long long>(step), max_steps, line_.mean_loss, line_.lr, line_.grad_norm,
      line_.tokens_per_s, format_duration(elapsed).c_str(), format_duration(eta).c_str());
}

void TrainingLog::record(uint64_t consumed, const std::string& extra) {
  agree(world_, [&] {
    if (!root_) return;
    std::ostringstream r;
    r << "{\"step\": " << line_.step << ", \"train_loss\": " << json_number(line_.mean_loss, "%.6f")
      << ", \"lr\": " << json_number(line_.lr, "%.6e")
      << ", \"grad_norm\": " << json_number(line_.grad_norm, "%.6f")
      << ", \"tokens_per_s\": " << json_number(line_.tokens_per_s, "%.1f")
      << ", \"elapsed_s\": " << json_number(line_.elapsed, "%.3f")
      << ", \"consumed_samples\": " << consumed << ", \"skipped_steps\": " << skipped_ << extra
      << "}\n";
    const std::string record = r.str();
    // A short write is continued until it completes or fails with its reason (a full disk).
    size_t done = 0;
    std::string why;
    while (done < record.size() && why.empty()) {
      const ssize_t n = ::write(fd_, record.data() + done, record.size() - done);
      if (n > 0)
        done += static_cast<size_t>(n);
      else
        why = n < 0 ? std::strerror(errno) : "the write made no progress";
    }
    if (!why.empty()) {
      // Never leave half a record: cut the file back to the whole records before it.
      const bool cut = ::ftruncate(fd_, static_cast<off_t>(bytes_)) == 0;
      throw IoError("cannot write " + path_ + " at step " + std::to_string(line_.step) + ": " +
                    why +
                    (cut ? "; it keeps the records up to step " + std::to_string(last_recorded_)
                         : "; its last line may be cut short"));
    }
    bytes_ += record.size();
    last_recorded_ = line_.step;
  });
  std::fflush(stdout);
  t_last_ = Clock::now();
  tokens_ = 0;
  loss_ = 0.0;
  applied_ = 0;
}

}  // namespace ph

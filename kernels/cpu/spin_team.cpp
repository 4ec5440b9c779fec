#include "kernels/cpu/spin_team.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace ph::cpu {

namespace {

// True on a thread inside a run: the caller of spin_team_run during it, and a helper always
// (a task that asks for a run of its own runs it alone, rather than wait for the team it is in).
thread_local bool in_run = false;

class SpinTeam {
 public:
  SpinTeam() : pid_(getpid()) {}
  ~SpinTeam() {
    {
      const std::lock_guard<std::mutex> lock(sleep_mutex_);
      stop_.store(true);
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    for (std::thread& t : threads_) t.join();
  }
  SpinTeam(const SpinTeam&) = delete;
  SpinTeam& operator=(const SpinTeam&) = delete;

  bool forked() const { return getpid() != pid_; }

  void run(int tasks, int helpers, const std::function<void(int)>& fn) {
    const std::lock_guard<std::mutex> one_run(run_mutex_);
    // A new helper starts from the generation before this run's, so that it joins this run.
    while (static_cast<int>(threads_.size()) < helpers)
      threads_.emplace_back([this, seen = generation_.load()] { loop(seen); });
    fn_ = &fn;
    tasks_ = tasks;
    next_.store(0, std::memory_order_relaxed);
    open_.store(helpers, std::memory_order_release);  // places for helpers in this run
    {
      const std::lock_guard<std::mutex> lock(sleep_mutex_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    if (sleeping_.load() > 0) wake_.notify_all();
    work();
    // Close the run, then wait for every helper inside it: one that has not taken a place by
    // now finds none and leaves without reading fn_. Both are sequentially consistent, as the
    // helper's inside_ increment and open_ read are: with release/acquire the store could wait
    // in the store buffer while this thread reads inside_ == 0 and the helper reads a stale open_.
    open_.store(0);
    while (inside_.load() > 0) std::this_thread::yield();
  }

 private:
  void work() {
    for (int t = next_.fetch_add(1); t < tasks_; t = next_.fetch_add(1)) (*fn_)(t);
  }

  void loop(unsigned long seen) {
    omp_set_num_threads(1);  // an op run here opens no OpenMP team of its own
    in_run = true;
    for (;;) {
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
      while (generation_.load(std::memory_order_acquire) == seen &&
             std::chrono::steady_clock::now() < until)
        std::this_thread::yield();
      if (generation_.load(std::memory_order_acquire) == seen) {
        std::unique_lock<std::mutex> lock(sleep_mutex_);
        sleeping_.fetch_add(1);
        wake_.wait(lock, [&] { return generation_.load() != seen; });
        sleeping_.fetch_sub(1);
      }
      seen = generation_.load(std::memory_order_acquire);
      if (stop_.load()) return;
      inside_.fetch_add(1);
      int places = open_.load();
      while (places > 0 && !open_.compare_exchange_weak(places, places - 1)) {
      }
      if (places > 0) work();
      inside_.fetch_sub(1, std::memory_order_release);
    }
  }

  const pid_t pid_;
  std::vector<std::thread> threads_;
  std::mutex run_mutex_, sleep_mutex_;
  std::condition_variable wake_;
  std::atomic<unsigned long> generation_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int> sleeping_{0}, open_{0}, inside_{0}, next_{0};
  const std::function<void(int)>* fn_ = nullptr;
  int tasks_ = 0;
};

}  // namespace

void spin_team_run(int tasks, int helpers, const std::function<void(int)>& fn) {
  static SpinTeam team;
  helpers = std::min({helpers, omp_get_num_procs() - 1, tasks - 1});
  if (in_run || helpers <= 0 || team.forked()) {
    for (int t = 0; t < tasks; ++t) fn(t);
    return;
  }
  in_run = true;
  team.run(tasks, helpers, fn);
  in_run = false;
}

}  // namespace ph::cpu

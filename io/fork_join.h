// A fixed team of threads that runs one function on every member and waits for all of them: the
// parallel steps of the BPE trainer, which come thousands of times and must not start threads
// each time. Idle members sleep (no spinning) between runs.
#pragma once
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ph {

class ForkJoin {
 public:
  // A team of `threads` (at least 1): the caller and threads - 1 started workers.
  explicit ForkJoin(int threads);
  ~ForkJoin();
  ForkJoin(const ForkJoin&) = delete;
  ForkJoin& operator=(const ForkJoin&) = delete;

  int threads() const { return threads_; }

  // Calls fn(t) for every t in [0, threads()), t = 0 on the calling thread, and returns when
  // every call has returned. An exception thrown by any call is rethrown here (the first one).
  void run(const std::function<void(int)>& fn);

 private:
  void worker(int t);

  int threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_, done_;
  const std::function<void(int)>* fn_ = nullptr;
  unsigned long generation_ = 0;
  int running_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace ph

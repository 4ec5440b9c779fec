#include "trainer/signals.h"

#include <atomic>
#include <csignal>
#include <cstdint>

namespace ph {

namespace {

std::atomic<int> g_stop_signal{0};

void on_signal(int sig) {
  g_stop_signal.store(sig);
}

}  // namespace

void install_stop_handlers() {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
}

int agreed_stop_signal(Communicator& world) {
  int64_t sig = g_stop_signal.load();
  if (world.size() > 1) world.all_reduce(&sig, 1, ReduceOp::Max);
  return static_cast<int>(sig);
}

}  // namespace ph

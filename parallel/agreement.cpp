#include "parallel/agreement.h"

#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>

#include "io/config.h"

namespace ph {

void agree(Communicator& comm, const std::function<void()>& fn) {
  bool failed = false, input_error = false;
  std::string message;
  try {
    fn();
  } catch (const InputError& e) {
    failed = input_error = true;
    message = e.what();
  } catch (const std::exception& e) {
    failed = true;
    message = e.what();
  } catch (...) {
    failed = true;
    message = "unknown exception";
  }

  // The lowest failing rank, or size() when none failed.
  int64_t lowest = failed ? comm.rank() : comm.size();
  comm.all_reduce(&lowest, 1, ReduceOp::Min);
  if (lowest == comm.size()) return;

  const int root = static_cast<int>(lowest);
  int64_t kind = input_error ? 1 : 0;
  comm.broadcast(&kind, 1, root);
  comm.broadcast(message, root);
  if (kind == 1) throw InputError(message);
  throw std::runtime_error(message);
}

}  // namespace ph

#include "parallel/agreement.h"

#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>

#include "parallel/errors.h"

namespace ph {

void agree(Communicator& comm, const std::function<void()>& fn) {
  // What the lowest failing rank threw: 0 nothing, then the kinds rethrown alike everywhere.
  enum Kind : int64_t { kNone = 0, kInput = 1, kIo = 2, kArgument = 3, kOther = 4 };
  int64_t kind = kNone;
  std::string message;
  try {
    fn();
  } catch (const InputError& e) {
    kind = kInput;
    message = e.what();
  } catch (const IoError& e) {
    kind = kIo;
    message = e.what();
  } catch (const std::invalid_argument& e) {
    kind = kArgument;
    message = e.what();
  } catch (const std::exception& e) {
    kind = kOther;
    message = e.what();
  } catch (...) {
    kind = kOther;
    message = "unknown exception";
  }

  // The lowest failing rank, or size() when none failed.
  int64_t lowest = kind != kNone ? comm.rank() : comm.size();
  comm.all_reduce(&lowest, 1, ReduceOp::Min);
  if (lowest == comm.size()) return;

  const int root = static_cast<int>(lowest);
  comm.broadcast(&kind, 1, root);
  comm.broadcast(message, root);
  if (kind == kInput) throw InputError(message);
  if (kind == kIo) throw IoError(message);
  if (kind == kArgument) throw std::invalid_argument(message);
  throw std::runtime_error(message);
}

}  // namespace ph

// Agreement on failure: a step that may fail on some ranks only (reading a file, checking a
// shard) is run through agree() so that either every rank continues or every rank throws —
// never one rank throwing while the others wait in the next collective.
#pragma once
#include <functional>

#include "parallel/communicator.h"

namespace ph {

// Runs fn on every rank of `comm` (collective: every rank calls agree at the same point).
// If fn throws on any rank, every rank throws the same exception: an InputError, an IoError or
// a std::invalid_argument (a caller's bug) if the lowest failing rank's exception was one, else
// a std::runtime_error; each carries the lowest failing rank's message (what()) verbatim. So bad
// input found by any rank is printed once, by rank 0, like input every rank rejects. Costs one
// all-reduce when nothing fails.
void agree(Communicator& comm, const std::function<void()>& fn);

}  // namespace ph

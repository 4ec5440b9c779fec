#include "io/epoch_permutation.h"

#include <cstddef>
#include <numeric>
#include <utility>

#include "kernels/common/rng_streams.h"

namespace ph {

namespace {

// Uniform integer in [0, bound), bound >= 1, from the stream (seed, kShuffleA, epoch) starting
// at counter `next` (advanced past the draws used): Lemire's multiply-shift with rejection.
uint32_t uniform_below(uint32_t bound, uint64_t seed, uint32_t epoch, uint64_t& next) {
  const uint32_t threshold = static_cast<uint32_t>(-bound) % bound;  // 2^32 mod bound
  for (;;) {
    const uint64_t m =
        static_cast<uint64_t>(philox_bits(seed, rng::kShuffleA, epoch, next++)) * bound;
    if (static_cast<uint32_t>(m) >= threshold) return static_cast<uint32_t>(m >> 32);
  }
}

}  // namespace

void epoch_permutation(uint64_t seed, uint64_t epoch, std::vector<uint32_t>& perm) {
  std::iota(perm.begin(), perm.end(), 0u);
  const uint32_t stream_epoch = static_cast<uint32_t>(epoch);
  uint64_t counter = 0;
  for (size_t i = perm.size(); i-- > 1;) {
    const uint32_t j = uniform_below(static_cast<uint32_t>(i + 1), seed, stream_epoch, counter);
    std::swap(perm[i], perm[j]);
  }
}

}  // namespace ph

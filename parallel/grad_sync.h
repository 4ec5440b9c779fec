// Data-parallel gradient synchronisation: every rank's gradient arena summed over the
// data-parallel group, either in buckets started as soon as backward has finished a range of
// the arena (overlapping the rest of backward), or all at once after backward, or — ZeRO
// stage 1 — reduce-scattered so that each rank receives the sum of its own shard of the arena
// only, whose optimizer state it alone holds; after the update the shards are all-gathered.
//
// Sums, not means: the trainer scales the loss by the global count of target tokens, so the
// summed gradient is already the mean over the global batch.
#pragma once
#include <cstddef>
#include <functional>
#include <vector>

#include "kernels/backend.h"
#include "parallel/communicator.h"

namespace ph {

// Where the optimizer finds the synchronised gradient: grads[0] is arena element lo, and
// [lo, hi) is the range of the arena this rank updates.
struct GradView {
  float* grads = nullptr;
  size_t lo = 0, hi = 0;
};

class GradSync {
 public:
  struct Options {
    int dp = 1;            // data-parallel ranks
    int dp_rank = 0;       // this rank's place among them
    bool zero = false;     // ZeRO-1: reduce-scatter into shards (capacity divides by dp)
    bool overlap = false;  // start buckets during backward (ignored under ZeRO)
  };
  // grads: the gradient arena (device memory of be) of `capacity` elements, the first `size` of
  // them parameters; dp_comm carries device buffers of the data-parallel group (may be null
  // when dp == 1). Under ZeRO the shard buffer is allocated here, once.
  GradSync(Backend& be, Communicator* dp_comm, float* grads, size_t size, size_t capacity,
           Options options);

  // The model's gradient-ready hook for the last micro-batch of a step: starts the all-reduce of
  // each finished range. Empty when buckets do not overlap backward.
  std::function<void(size_t offset, size_t count)> ready_hook();
  // After the last backward of a step: completes the sum (or the reduce-scatter).
  GradView finish();
  // ZeRO: every rank receives the updated shards of the others (params: the whole arena).
  void gather_params(float* params);

  size_t lo() const { return lo_; }  // the arena range this rank's optimizer owns
  size_t hi() const { return hi_; }
  bool overlaps() const { return overlap_; }
  bool sharded() const { return zero_; }  // ZeRO: each rank holds the sum of its shard only

 private:
  void start(size_t offset, size_t count);

  Communicator* comm_;
  float* grads_;
  size_t size_;
  int dp_;
  bool zero_, overlap_;
  size_t shard_, lo_, hi_;
  DeviceBuffer<float> shard_grads_;  // ZeRO: the reduce-scattered gradient of this shard
  std::vector<Work> inflight_;
  bool started_ = false;  // this step's buckets have started (overlap)
};

}  // namespace ph

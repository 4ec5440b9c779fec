// The most likely token of each row of a model's vocab-parallel logits (the argmax over the
// real vocabulary; ties go to the lowest id): each tensor-parallel rank takes the maximum of
// its columns, and the (value, id) pairs of the group are gathered on the host. Greedy
// decoding and exact-match metrics both use it.
#pragma once
#include <cstdint>
#include <vector>

#include "model/model.h"
#include "parallel/communicator.h"

namespace ph {

class VocabArgmax {
 public:
  // Host buffers for up to max_rows rows of `model`, allocated once.
  VocabArgmax(const Model& model, int max_rows);
  // out [N] = the argmax of rows [row0, row0 + N) of model.logits() (N <= max_rows). tp_host:
  // the tensor-parallel group on host buffers (may be null when model.tp().size == 1); every
  // rank of it must call.
  void run(const Model& model, int row0, int N, Communicator* tp_host, int32_t* out);

 private:
  static constexpr int kRowsPerCopy = 64;  // logits rows downloaded at a time
  std::vector<float> best_, gathered_;     // (value, id) per row: this rank's, the group's
  std::vector<float> rows_;                // [kRowsPerCopy, local vocabulary]
};

}  // namespace ph

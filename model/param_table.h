// The parameter table: every parameter's global name, full shape, tensor-parallel split,
// place in the local arena, initialisation and weight-decay flag. Init, the optimizer,
// gradient sync, clipping and checkpoint I/O are all driven by it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ph {

// How a parameter is divided among tensor-parallel ranks: not at all, or into tp equal
// contiguous blocks along dimension 0 (rows: column-parallel linear outputs, vocabulary) or
// dimension 1 (columns: row-parallel linear inputs).
enum class Split { Replicated, Dim0, Dim1 };

enum class InitKind { Normal, Zeros, Ones };

struct Param {
  std::string name;            // global name, e.g. "h.0.attn.q.weight"
  std::vector<int64_t> shape;  // full shape, as in checkpoints
  Split split = Split::Replicated;
  InitKind init = InitKind::Zeros;
  float init_std = 0.0f;    // for InitKind::Normal
  bool decay = false;       // AdamW weight decay applies
  int64_t padded_rows = 0;  // > shape[0]: rows in memory include zero padding (vocab)

  // Local placement, set by ParamTable::place().
  std::vector<int64_t> local_shape;   // block held by this rank (padding rows included)
  std::vector<int64_t> block_offset;  // the block's start in the (padded) full tensor
  size_t offset = 0;                  // first element in the local arena
  size_t numel = 0;                   // elements in the local arena
};

class ParamTable {
 public:
  // Adds a parameter (full shape); returns its index. Order is arena order, without gaps:
  // parameters added one after the other are adjacent in the arena.
  int add(const std::string& name, std::vector<int64_t> shape, Split split, InitKind init,
          float init_std, bool decay, int64_t padded_rows = 0);
  // Computes every parameter's local block and arena offset for tensor-parallel rank
  // `tp_rank` of `tp`. Returns the arena size in floats.
  size_t place(int tp_rank, int tp);

  const std::vector<Param>& params() const { return params_; }
  const Param& operator[](int i) const { return params_[static_cast<size_t>(i)]; }
  int size() const { return static_cast<int>(params_.size()); }
  size_t total() const { return total_; }
  // Index of `name`; -1 if absent.
  int find(const std::string& name) const;
  // Number of elements of the full (unpadded) model.
  int64_t full_count() const;

  // Writes the initial value of every local element (seed, name, global index) into arena.
  void initialize(float* arena, uint64_t seed) const;

 private:
  std::vector<Param> params_;
  size_t total_ = 0;
};

}  // namespace ph

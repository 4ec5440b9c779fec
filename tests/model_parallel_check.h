// Shared by the multi-rank model tests: the sharded model on this rank's layout against the
// unsharded model computed on every rank, for logits, loss and every gradient.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "model/gpt.h"
#include "parallel/grid.h"
#include "tests/model_batch.h"
#include "tests/test_backend.h"

namespace ph::testing {

inline ModelConfig parallel_test_model() {
  ModelConfig m;
  m.vocab_size = 200;  // padded to 256 (and to 512 for tp=4): padding rows are exercised
  m.n_layers = 2;
  m.d_model = 32;
  m.n_heads = 4;
  m.seq_len = 12;
  m.init_std = 0.1f;
  m.dropout_embed = 0.1f;
  m.dropout_attn = 0.1f;
  m.dropout_resid = 0.1f;
  return m;
}

// Relative closeness of two values with an absolute floor for values near zero.
inline bool close(double a, double b, double rel) {
  return std::fabs(a - b) <= rel * std::max({std::fabs(a), std::fabs(b), 1e-3});
}

// Tensors are compared relative to their scale: the largest difference over the largest
// reference magnitude. (Elements that cancel to nearly zero carry the absolute rounding of
// their larger terms, so an element-wise relative test would measure cancellation, not the
// layout.)
struct Diff {
  double max_diff = 0.0, max_ref = 0.0;
  void add(double a, double ref) {
    max_diff = std::max(max_diff, std::fabs(a - ref));
    max_ref = std::max(max_ref, std::fabs(ref));
  }
  // Scales below 1e-3 are floored there: the key bias, for one, has an exactly zero gradient
  // (a constant added to every score of a softmax row changes nothing) and only rounding noise.
  double relative() const { return max_diff / std::max(max_ref, 1e-3); }
};

// Every replicated parameter is bitwise equal on the ranks of the tensor-parallel group whose
// host communicator is tp_host. Returns how many were compared.
inline int expect_replicated_equal(const Model& model, Communicator& tp_host) {
  std::vector<float> host(model.arena_capacity());
  model.download_params(host.data());
  int compared = 0;
  for (const Param& p : model.table().params()) {
    if (p.split != Split::Replicated) continue;
    std::vector<float> all(p.numel * static_cast<size_t>(tp_host.size()));
    tp_host.all_gather(host.data() + p.offset, all.data(), p.numel);
    for (int r = 1; r < tp_host.size(); ++r)
      EXPECT_EQ(0, std::memcmp(all.data(), all.data() + r * p.numel, p.numel * sizeof(float)))
          << p.name << " differs between tensor-parallel ranks 0 and " << r;
    ++compared;
  }
  return compared;
}

// Every gradient element the sharded model g holds (summed over data parallelism) against the
// same element of the unsharded model ref's gradient (1e-5 of the tensor's scale), and every
// tensor but the attention key biases (an exactly zero gradient) and vocabulary padding carries
// a gradient above `floor` (else the check would be vacuous).
inline void expect_gradients_match(Model& g, Model& ref, const ProcessGrid& grid, double floor) {
  for (const Param& p : g.table().params()) {
    const Param& rp = ref.table()[ref.table().find(p.name)];
    const int64_t rows = p.local_shape[0], cols = p.local_shape.size() > 1 ? p.local_shape[1] : 1;
    const int64_t full_cols = rp.local_shape.size() > 1 ? rp.local_shape[1] : 1;
    Diff diff;
    for (int64_t i = 0; i < rows && p.block_offset[0] + i < p.shape[0]; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        const int64_t gi = p.block_offset[0] + i;
        const int64_t gj = (p.block_offset.size() > 1 ? p.block_offset[1] : 0) + j;
        diff.add(g.grads()[p.offset + static_cast<size_t>(i * cols + j)],
                 ref.grads()[rp.offset + static_cast<size_t>(gi * full_cols + gj)]);
      }
    EXPECT_LE(diff.relative(), 1e-5)
        << p.name << " (tp rank " << grid.tp_rank << ", dp rank " << grid.dp_rank
        << "), largest difference " << diff.max_diff << " of scale " << diff.max_ref;
    const bool only_padding = p.block_offset[0] >= p.shape[0];  // tp=4: vocab rows 256..511
    if (p.name.find("k.bias") == std::string::npos && !only_padding) {
      EXPECT_GT(diff.max_ref, floor) << p.name << " has no gradient: the check would be vacuous";
    }
  }
}

// Runs one training micro-step of the global batch (global_B sequences) on `grid` and checks
// loss, logits and gradients against the unsharded model on the whole batch.
inline void check_layout_against_reference(const ModelConfig& mc, const ProcessGrid& grid,
                                           int global_B) {
  const int T = mc.seq_len;
  std::mt19937 rng(17);
  Batch all;
  all.B = global_B;
  all.T = T;
  all.tokens.resize(static_cast<size_t>(global_B) * T);
  all.targets.resize(all.tokens.size());
  for (size_t i = 0; i < all.tokens.size(); ++i) {
    all.tokens[i] = static_cast<int32_t>(rng() % static_cast<unsigned>(mc.vocab_size));
    all.targets[i] = static_cast<int32_t>(rng() % static_cast<unsigned>(mc.vocab_size));
  }
  all.targets[3] = kIgnoreIndex;
  int64_t counted = 0;
  for (int32_t t : all.targets) counted += t != kIgnoreIndex;
  const float dloss = 1.0f / static_cast<float>(counted);
  DropoutContext d;
  d.train = true;
  d.seed = 7;
  d.step = 2;

  // Reference: the whole batch on one model, computed redundantly on every rank.
  Gpt ref(ph::test::cpu(), mc, ph::test::setup(global_B));
  ref.initialize(11);
  ref.zero_grads();
  const double ref_loss = ref.forward_backward(all, dloss, d, nullptr);
  const double ref_forward = ref.loss(all, d, nullptr);
  EXPECT_NEAR(ref_forward, ref_loss, 1e-9 * std::fabs(ref_loss));
  std::vector<float> ref_logits(
      ref.logits(), ref.logits() + static_cast<size_t>(global_B) * T * ref.local_vocab());

  // This rank: its data-parallel slice of the batch, its tensor-parallel shard of the model.
  const int B = global_B / grid.dp;
  Gpt g(ph::test::cpu(), mc, ph::test::setup(B, grid));
  g.initialize(11);
  g.zero_grads();
  const size_t off = static_cast<size_t>(grid.dp_rank) * B * T;
  const Batch mine = ph::test::slice(all, grid.dp_rank * B, B);
  double loss = g.forward_backward(mine, dloss, d, nullptr);
  grid.dp_comm->all_reduce(&loss, 1, ReduceOp::Sum);
  grid.dp_comm->all_reduce(g.grads(), g.arena_size(), ReduceOp::Sum);
  EXPECT_TRUE(close(loss, ref_loss, 1e-5)) << loss << " vs " << ref_loss;

  // Logits of this rank's rows and vocabulary columns (recomputed: forward_backward turned
  // them into dlogits).
  g.loss(mine, d, nullptr);
  Diff logits;
  for (int r = 0; r < B * T; ++r)
    for (int j = 0; j < g.local_vocab() && g.vocab_start() + j < mc.vocab_size; ++j)
      logits.add(
          g.logits()[static_cast<size_t>(r) * g.local_vocab() + j],
          ref_logits[(off + static_cast<size_t>(r)) * ref.local_vocab() + g.vocab_start() + j]);
  EXPECT_LE(logits.relative(), 1e-5);

  // Every gradient element this rank holds against the same element of the full gradient.
  for (const Param& p : g.table().params()) {
    const Param& rp = ref.table()[ref.table().find(p.name)];
    const int64_t rows = p.local_shape[0], cols = p.local_shape.size() > 1 ? p.local_shape[1] : 1;
    const int64_t full_cols = rp.local_shape.size() > 1 ? rp.local_shape[1] : 1;
    Diff diff;
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t gi = p.block_offset[0] + i;
      if (gi >= p.shape[0]) break;  // vocabulary padding
      for (int64_t j = 0; j < cols; ++j) {
        const int64_t gj = (p.block_offset.size() > 1 ? p.block_offset[1] : 0) + j;
        const double a = g.grads()[p.offset + static_cast<size_t>(i * cols + j)];
        const double b = ref.grads()[rp.offset + static_cast<size_t>(gi * full_cols + gj)];
        diff.add(a, b);
      }
    }
    EXPECT_LE(diff.relative(), 1e-5)
        << p.name << " (tp rank " << grid.tp_rank << ", dp rank " << grid.dp_rank
        << "), largest difference " << diff.max_diff << " of scale " << diff.max_ref;
    const bool only_padding = p.block_offset[0] >= p.shape[0];  // tp=4: vocab rows 256..511
    if (p.name.find("attn.k.bias") == std::string::npos && !only_padding) {
      EXPECT_GT(diff.max_ref, 1e-4) << p.name << " has no gradient: the check would be vacuous";
    }
  }
}

}  // namespace ph::testing

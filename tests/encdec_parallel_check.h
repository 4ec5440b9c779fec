// Shared by the multi-rank encoder-decoder tests: a small encoder-decoder (dropout on, a
// vocabulary padded per tp) and the check of one training micro-step on this rank's layout
// against the unsharded model on the whole batch (loss, logits and every gradient, 1e-5).
#pragma once
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "model/encdec.h"
#include "tests/encdec_batch.h"
#include "tests/model_batch.h"
#include "tests/model_parallel_check.h"

namespace ph::testing {

inline ModelConfig encdec_model(ShareEmbeddings share, Norm norm) {
  ModelConfig m;
  m.type = ModelType::kEncDec;
  m.vocab_size = 200;  // padded to 256 with tp=2: padding rows are exercised
  m.encoder_layers = 2;
  m.decoder_layers = 2;
  m.d_model = 16;
  m.n_heads = 4;
  m.seq_len = 6;
  m.src_seq_len = 8;
  m.init_std = 0.1f;
  m.norm = norm;
  m.pos_encoding = norm == Norm::kPost ? PosEncoding::kSinusoidal : PosEncoding::kLearned;
  m.share_embeddings = share;
  m.dropout_embed = m.dropout_attn = m.dropout_resid = 0.1f;
  return m;
}

inline DropoutContext encdec_training() {
  DropoutContext d;
  d.train = true;
  d.seed = 7;
  d.step = 2;
  return d;
}

// One training micro-step of a global batch of global_B pairs on this rank's layout against
// the unsharded model on the whole batch: loss, logits and every gradient element.
inline void check_encdec_against_reference(const ModelConfig& mc, const ProcessGrid& grid,
                                           int global_B) {
  const Batch all = ph::test::encdec_batch(mc, global_B, 17, 4);
  int64_t counted = 0;
  for (int32_t t : all.targets) counted += t != kIgnoreIndex;
  const float dloss = 1.0f / static_cast<float>(counted);
  const DropoutContext d = encdec_training();

  EncDec ref(ph::test::cpu(), mc, ph::test::setup(global_B));
  ref.initialize(11);
  ref.zero_grads();
  const double ref_loss = ref.forward_backward(all, dloss, d, nullptr);
  ref.loss(all, d, nullptr);
  const std::vector<float> ref_logits(
      ref.logits(), ref.logits() + static_cast<size_t>(global_B * mc.seq_len * ref.local_vocab()));

  const int B = global_B / grid.dp;
  EncDec g(ph::test::cpu(), mc, ph::test::setup(B, grid));
  g.initialize(11);
  g.zero_grads();
  const Batch mine = ph::test::encdec_slice(all, grid.dp_rank * B, B);
  double loss = g.forward_backward(mine, dloss, d, nullptr);
  grid.dp_comm->all_reduce(&loss, 1, ReduceOp::Sum);
  grid.dp_comm->all_reduce(g.grads(), g.arena_size(), ReduceOp::Sum);
  EXPECT_TRUE(close(loss, ref_loss, 1e-5)) << loss << " vs " << ref_loss;

  g.loss(mine, d, nullptr);
  const size_t row0 = static_cast<size_t>(grid.dp_rank * B * mc.seq_len);
  Diff logits;
  for (int r = 0; r < B * mc.seq_len; ++r)
    for (int j = 0; j < g.local_vocab() && g.vocab_start() + j < mc.vocab_size; ++j)
      logits.add(
          g.logits()[static_cast<size_t>(r * g.local_vocab() + j)],
          ref_logits[(row0 + static_cast<size_t>(r)) * static_cast<size_t>(ref.local_vocab()) +
                     static_cast<size_t>(g.vocab_start() + j)]);
  EXPECT_LE(logits.relative(), 1e-5);

  expect_gradients_match(g, ref, grid, 1e-5);
}

}  // namespace ph::testing

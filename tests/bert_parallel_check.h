// Shared by the multi-rank BERT tests: a small BERT (dropout on, a vocabulary padded per tp,
// padding in every batch) and the check of one training micro-step on this rank's layout
// against the unsharded model on the whole batch: MLM loss, sentence loss, logits of the
// prediction slots and every gradient (1e-5).
#pragma once
#include <gtest/gtest.h>

#include <vector>

#include "model/bert.h"
#include "tests/bert_batch.h"
#include "tests/model_batch.h"
#include "tests/model_parallel_check.h"

namespace ph::testing {

constexpr int kBertSlots = 3;

inline ModelConfig bert_model(Norm norm, SentenceHead head) {
  ModelConfig m;
  m.type = ModelType::kBert;
  m.vocab_size = 200;  // padded to 256 (512 with tp=4): padding rows are exercised
  m.n_layers = 2;
  m.d_model = 16;
  m.n_heads = 4;
  m.seq_len = 8;
  m.init_std = 0.1f;
  m.norm = norm;
  m.activation = Activation::kGeluErf;
  m.layer_norm_eps = 1e-12f;
  m.type_vocab_size = 2;
  m.sentence_head = head;
  m.dropout_embed = m.dropout_attn = m.dropout_resid = 0.1f;
  return m;
}

inline ModelSetup bert_setup(ModelSetup s) {
  s.max_predictions = kBertSlots;
  return s;
}

inline DropoutContext bert_training() {
  DropoutContext d;
  d.train = true;
  d.seed = 7;
  d.step = 2;
  return d;
}

inline void check_bert_against_reference(const ModelConfig& mc, const ProcessGrid& grid,
                                         int global_B) {
  Batch all = ph::test::bert_batch(mc, global_B, kBertSlots, 17, 4);
  int64_t counted = 0, labelled = 0;
  for (int32_t t : all.targets) counted += t != kIgnoreIndex;
  for (int32_t t : all.sentence_labels) labelled += t != kIgnoreIndex;
  const float dloss = 1.0f / static_cast<float>(counted);
  all.sentence_dloss = 1.0f / static_cast<float>(labelled);
  const DropoutContext d = bert_training();

  Bert ref(ph::test::cpu(), mc, bert_setup(ph::test::setup(global_B)));
  ref.initialize(11);
  ref.zero_grads();
  const double ref_loss = ref.forward_backward(all, dloss, d, nullptr);
  const double ref_sentence = ref.sentence_stats().loss_sum;
  ref.loss(all, d, nullptr);
  const size_t Vr = static_cast<size_t>(ref.local_vocab());
  const std::vector<float> ref_logits(
      ref.logits(), ref.logits() + static_cast<size_t>(global_B * kBertSlots) * Vr);

  const int B = global_B / grid.dp;
  Bert g(ph::test::cpu(), mc, bert_setup(ph::test::setup(B, grid)));
  g.initialize(11);
  g.zero_grads();
  const Batch mine = ph::test::bert_slice(all, grid.dp_rank * B, B);
  double loss[2] = {g.forward_backward(mine, dloss, d, nullptr), g.sentence_stats().loss_sum};
  grid.dp_comm->all_reduce(loss, 2, ReduceOp::Sum);
  grid.dp_comm->all_reduce(g.grads(), g.arena_size(), ReduceOp::Sum);
  EXPECT_TRUE(close(loss[0], ref_loss, 1e-5)) << loss[0] << " vs " << ref_loss;
  EXPECT_TRUE(close(loss[1], ref_sentence, 1e-5)) << loss[1] << " vs " << ref_sentence;
  if (mc.sentence_head != SentenceHead::kNone) {
    EXPECT_GT(ref_sentence, 0.1);
  }

  g.loss(mine, d, nullptr);
  const size_t row0 = static_cast<size_t>(grid.dp_rank * B * kBertSlots);
  Diff logits;
  for (int r = 0; r < B * kBertSlots; ++r)
    for (int j = 0; j < g.local_vocab() && g.vocab_start() + j < mc.vocab_size; ++j)
      logits.add(g.logits()[static_cast<size_t>(r * g.local_vocab() + j)],
                 ref_logits[(row0 + static_cast<size_t>(r)) * Vr +
                            static_cast<size_t>(g.vocab_start() + j)]);
  EXPECT_LE(logits.relative(), 1e-5);
  expect_gradients_match(g, ref, grid, 1e-5);
}

}  // namespace ph::testing

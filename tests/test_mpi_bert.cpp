// BERT on two ranks, against the unsharded model computed on every rank:
// - tensor parallelism (tp=2: heads and FFN sharded, the embedding, the MLM decoder and
//   mlm.bias split by vocabulary) and data parallelism (dp=2) give the MLM and sentence losses,
//   the logits of the prediction slots and every gradient of one rank (1e-5), with dropout on
//   and padding, post- and pre-norm, with and without a sentence head;
// - replicated parameters (embedding LayerNorm, positions, token types, the MLM transform, the
//   pooler and classifier, LayerNorms, row-parallel biases) stay bitwise equal on the ranks of
//   the tensor-parallel group over 10 AdamW steps.
#include <gtest/gtest.h>

#include "model/bert.h"
#include "tests/bert_batch.h"
#include "tests/bert_parallel_check.h"
#include "tests/model_batch.h"
#include "tests/model_parallel_check.h"
#include "trainer/optimizer.h"

namespace ph {
namespace {

TEST(BertParallel, TensorParallelMatchesOneRank) {
  const ProcessGrid grid = make_grid(2);
  ASSERT_EQ(grid.tp, 2);
  testing::check_bert_against_reference(testing::bert_model(Norm::kPost, SentenceHead::kNsp), grid,
                                        3);
  testing::check_bert_against_reference(testing::bert_model(Norm::kPre, SentenceHead::kSop), grid,
                                        3);
  testing::check_bert_against_reference(testing::bert_model(Norm::kPost, SentenceHead::kNone), grid,
                                        3);
}

TEST(BertParallel, DataParallelMatchesOneRank) {
  const ProcessGrid grid = make_grid(1);
  ASSERT_EQ(grid.dp, 2);
  testing::check_bert_against_reference(testing::bert_model(Norm::kPost, SentenceHead::kNsp), grid,
                                        4);
}

TEST(BertParallel, ReplicatedParametersStayBitwiseEqualOver10Steps) {
  const ProcessGrid grid = make_grid(2);
  const ModelConfig mc = testing::bert_model(Norm::kPost, SentenceHead::kNsp);
  Bert model(test::cpu(), mc, testing::bert_setup(test::setup(3, grid)));
  model.initialize(9);
  OptimConfig oc;
  oc.decay_1d = true;  // the replicated parameters decay too
  AdamW opt(test::cpu(), oc, model.table());
  DropoutContext d = testing::bert_training();
  for (int s = 0; s < 10; ++s) {
    d.step = static_cast<uint32_t>(s);
    Batch b = test::bert_batch(mc, 3, testing::kBertSlots, 5 + static_cast<unsigned>(s), 3 * s);
    b.sentence_dloss = 0.5f;
    model.zero_grads();
    model.forward_backward(b, 0.05f, d, nullptr);
    opt.step(model.params(), model.grads(), 1e-2f, s + 1, 1.0f);
  }
  EXPECT_GE(testing::expect_replicated_equal(model, *grid.tp_comm), 20);
  // Not vacuous: training moved the replicated heads away from their initial values.
  for (const char* name : {"mlm.ln.weight", "pooler.bias", "emb_ln.weight"}) {
    const Param& p = model.table()[model.table().find(name)];
    EXPECT_NE(model.params()[p.offset], name[0] == 'p' ? 0.0f : 1.0f) << name;
  }
}

}  // namespace
}  // namespace ph

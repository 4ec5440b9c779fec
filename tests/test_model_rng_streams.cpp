// The registry of Philox streams (kernels/common/rng_streams.h): no two uses of the generator
// can draw the same bits. A draw is a function of (seed, index, a, b); the uses own disjoint
// sets of (a, b): dropout sites are never 0 nor kInitB, steps stay below the streams' `a` of
// data order and the tasks, the streams' `a` are distinct, and no parameter name of a model
// hashes to data order's `a` (the only `a` a parameter's initialisation could share with another
// use at b = kInitB).
#include <gtest/gtest.h>

#include <iterator>
#include <set>
#include <string>

#include "io/config.h"
#include "kernels/common/rng_streams.h"
#include "model/encdec.h"
#include "model/gpt.h"
#include "tests/model_batch.h"
#include "tests/test_backend.h"

namespace ph {
namespace {

TEST(RngStreams, DropoutSitesAreUniqueAndAvoidTheOtherStreams) {
  std::set<uint32_t> sites = {rng::kSiteEmbed, rng::kSiteEncoderEmbed};
  size_t expected = sites.size();
  for (auto stack :
       {rng::DropoutStack::kMain, rng::DropoutStack::kEncoder, rng::DropoutStack::kCross})
    for (int layer = 0; layer < rng::kMaxLayers; ++layer)
      for (auto slot : {rng::DropoutSlot::kAttentionProbs, rng::DropoutSlot::kAttentionOut,
                        rng::DropoutSlot::kFfnOut}) {
        sites.insert(rng::dropout_site(stack, layer, slot));
        ++expected;
      }
  EXPECT_EQ(sites.size(), expected);  // no two sites coincide
  EXPECT_FALSE(sites.contains(0u));   // b = 0: sampling and the task
  EXPECT_FALSE(sites.contains(rng::kInitB));
  // The GPT's sites are those it always had (its dropout masks did not change).
  EXPECT_EQ(rng::kSiteEmbed, 1u);
  EXPECT_EQ(rng::dropout_site(rng::DropoutStack::kMain, 3, rng::DropoutSlot::kAttentionProbs),
            16u + 4u * 3u);
  EXPECT_EQ(rng::dropout_site(rng::DropoutStack::kMain, 3, rng::DropoutSlot::kFfnOut),
            18u + 4u * 3u);
}

TEST(RngStreams, StepsStayBelowTheOtherStreams) {
  EXPECT_GE(rng::kShuffleA, rng::kMaxSteps);
  EXPECT_GE(rng::kAdditionA, rng::kMaxSteps);
  EXPECT_GE(rng::kCopiesA, rng::kMaxSteps);
  // Every use has its own `a`.
  EXPECT_EQ(std::set<uint32_t>(std::begin(rng::kStreamsA), std::end(rng::kStreamsA)).size(),
            std::size(rng::kStreamsA));
  EXPECT_TRUE(std::set<uint32_t>(std::begin(rng::kStreamsA), std::end(rng::kStreamsA))
                  .contains(rng::kCopiesA));
  // The config cannot ask for more steps than the dropout streams may number.
  EXPECT_THROW(parse_config("train: {max_steps: 1073741825}\n", {}, "t"), InputError);
  EXPECT_NO_THROW(parse_config("train: {max_steps: 1073741824}\n", {}, "t"));
}

void expect_names_clear(const ParamTable& table) {
  for (const Param& p : table.params()) {
    EXPECT_NE(hash_name(p.name.c_str()), rng::kShuffleA) << p.name;
    EXPECT_NE(hash_name(p.name.c_str()), rng::kMlmMasksA) << p.name;
  }
}

TEST(RngStreams, NoParameterNameHashesToAnotherStream) {
  ModelConfig m;
  m.n_layers = 48;
  m.tie_embeddings = false;
  expect_names_clear(Gpt(test::cpu(), m, test::setup(1)).table());
  ModelConfig s;
  s.type = ModelType::kEncDec;
  s.n_layers = 24;
  s.vocab_size = 16;
  s.d_model = 8;
  s.n_heads = 2;
  s.share_embeddings = ShareEmbeddings::kNone;
  s.pos_encoding = PosEncoding::kLearned;
  expect_names_clear(EncDec(test::cpu(), s, test::setup(1)).table());
}

}  // namespace
}  // namespace ph

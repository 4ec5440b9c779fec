// Sampling prompts as a batch (trainer/sampler.h): each prompt of a batch gets the tokens it gets
// alone, greedy and sampled, for prompts of different lengths (one longer than seq_len) whose
// samples slide past seq_len, with more prompts than the model's micro-batch; greedy tokens are
// those of full forward passes over the window; each prompt has its own random stream and stops
// on its own.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <vector>

#include "model/gpt.h"
#include "tests/test_backend.h"
#include "trainer/sampler.h"

namespace ph {
namespace {

using Tokens = std::vector<int32_t>;

constexpr int kVocab = 29, kSeqLen = 8;

std::unique_ptr<Gpt> small_gpt(int max_batch) {
  ModelConfig m;
  m.vocab_size = kVocab;
  m.n_layers = 2;
  m.d_model = 16;
  m.n_heads = 4;
  m.seq_len = kSeqLen;
  m.init_std = 0.3f;
  ModelSetup s;
  s.max_batch = max_batch;
  auto g = std::make_unique<Gpt>(test::cpu(), m, s);
  g->initialize(11);
  return g;
}

// Prompts of 1, 3, 6 and 11 tokens (the last longer than seq_len).
std::vector<Tokens> mixed_prompts() {
  std::mt19937 rng(5);
  std::vector<Tokens> prompts;
  for (int len : {3, 1, 11, 6}) {
    Tokens p;
    for (int i = 0; i < len; ++i) p.push_back(static_cast<int32_t>(rng() % kVocab));
    prompts.push_back(p);
  }
  return prompts;
}

// Each prompt of `prompts` sampled alone, prompt j with stream j.
std::vector<Tokens> one_at_a_time(Model& model, const std::vector<Tokens>& prompts,
                                  const SampleOptions& o) {
  std::vector<Tokens> out;
  for (size_t j = 0; j < prompts.size(); ++j)
    out.push_back(sample_batch(model, nullptr, {prompts[j]}, o, j)[0]);
  return out;
}

// Greedy decoding without a cache: one forward pass over the last seq_len tokens per token.
Tokens greedy_by_full_forward(Model& model, Tokens ctx, int max_tokens) {
  Tokens out;
  std::vector<float> row(static_cast<size_t>(model.local_vocab()));
  for (int g = 0; g < max_tokens; ++g) {
    Batch b;
    b.B = 1;
    b.T = std::min(kSeqLen, static_cast<int>(ctx.size()));
    b.tokens.assign(ctx.end() - b.T, ctx.end());
    model.forward(b, DropoutContext{});
    model.download_logits(row.data(), b.T - 1, 1);
    const auto next =
        static_cast<int32_t>(std::max_element(row.begin(), row.begin() + kVocab) - row.begin());
    out.push_back(next);
    ctx.push_back(next);
  }
  return out;
}

TEST(SampleBatch, GreedyBatchEqualsOneAtATimeAndTheFullForward) {
  const auto model = small_gpt(4);
  const std::vector<Tokens> prompts = mixed_prompts();
  SampleOptions o;
  o.temperature = 0.0f;
  o.max_tokens = 14;  // every context slides past seq_len = 8
  const std::vector<Tokens> batched = sample_batch(*model, nullptr, prompts, o, 0);
  ASSERT_EQ(batched.size(), prompts.size());
  const std::vector<Tokens> alone = one_at_a_time(*model, prompts, o);
  for (size_t j = 0; j < prompts.size(); ++j) {
    EXPECT_EQ(batched[j].size(), 14u) << "prompt " << j;
    EXPECT_EQ(batched[j], alone[j]) << "prompt " << j;
    EXPECT_EQ(batched[j], greedy_by_full_forward(*model, prompts[j], o.max_tokens))
        << "prompt " << j;
  }
  EXPECT_EQ(sample_tokens(*model, nullptr, prompts[0], o), batched[0]);
}

TEST(SampleBatch, SampledBatchEqualsOneAtATimeWithMorePromptsThanTheMicroBatch) {
  const auto model = small_gpt(2);  // windows past seq_len take two forward passes of 2 rows
  const std::vector<Tokens> prompts = mixed_prompts();
  for (int top_k : {0, 5}) {
    SampleOptions o;
    o.temperature = 1.5f;
    o.top_k = top_k;
    o.seed = 42;
    o.max_tokens = 13;
    const std::vector<Tokens> batched = sample_batch(*model, nullptr, prompts, o, 0);
    const std::vector<Tokens> alone = one_at_a_time(*model, prompts, o);
    for (size_t j = 0; j < prompts.size(); ++j) {
      EXPECT_EQ(batched[j].size(), 13u) << "top_k " << top_k << ", prompt " << j;
      EXPECT_EQ(batched[j], alone[j]) << "top_k " << top_k << ", prompt " << j;
    }
    // A batch that starts at stream 2 is prompts 2 and 3 of the whole batch.
    const std::vector<Tokens> tail = sample_batch(*model, nullptr, {prompts[2], prompts[3]}, o, 2);
    EXPECT_EQ(tail[0], batched[2]) << "top_k " << top_k;
    EXPECT_EQ(tail[1], batched[3]) << "top_k " << top_k;
  }
}

TEST(SampleBatch, EachPromptHasItsOwnStream) {
  const auto model = small_gpt(3);
  const Tokens prompt = {4, 9};
  SampleOptions o;
  o.seed = 3;
  o.max_tokens = 12;
  const std::vector<Tokens> same = sample_batch(*model, nullptr, {prompt, prompt, prompt}, o, 0);
  EXPECT_NE(same[0], same[1]);
  EXPECT_NE(same[1], same[2]);
  EXPECT_EQ(sample_tokens(*model, nullptr, prompt, o), same[0]);
  o.seed = 4;
  EXPECT_NE(sample_tokens(*model, nullptr, prompt, o), same[0]);
}

TEST(SampleBatch, EachPromptStopsOnItsOwn) {
  const auto model = small_gpt(4);
  const std::vector<Tokens> prompts = mixed_prompts();
  SampleOptions o;
  o.temperature = 0.0f;
  o.max_tokens = 12;
  const std::vector<Tokens> free_run = sample_batch(*model, nullptr, prompts, o, 0);
  o.stop_token = free_run[0][2];  // prompt 0 stops at its third token at the latest
  const std::vector<Tokens> stopped = sample_batch(*model, nullptr, prompts, o, 0);
  size_t shortest = 99, longest = 0;
  for (size_t j = 0; j < prompts.size(); ++j) {
    const auto stop = std::find(free_run[j].begin(), free_run[j].end(), o.stop_token);
    const Tokens want(free_run[j].begin(),
                      stop == free_run[j].end() ? stop : std::next(stop));  // the stop included
    EXPECT_EQ(stopped[j], want) << "prompt " << j;
    shortest = std::min(shortest, stopped[j].size());
    longest = std::max(longest, stopped[j].size());
  }
  EXPECT_LE(shortest, 3u);
  EXPECT_GT(longest, shortest);  // the others went on after the first stopped
}

TEST(SampleBatch, MisuseIsALogicError) {
  const auto model = small_gpt(1);
  SampleOptions o;
  EXPECT_THROW(sample_batch(*model, nullptr, {{1, 2}, {}}, o, 0), std::logic_error);
  EXPECT_TRUE(sample_batch(*model, nullptr, {}, o, 0).empty());
  // 9 sequences do not fit a decoder over micro-batches of 1 x 8 positions.
  EXPECT_THROW(sample_batch(*model, nullptr, std::vector<Tokens>(9, Tokens{1}), o, 0),
               std::logic_error);
}

}  // namespace
}  // namespace ph

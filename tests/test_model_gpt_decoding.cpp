// Incremental decoding of the GPT (model/gpt_decoder.h): step-by-step log-probabilities with the
// key/value caches equal those of the full forward over each sequence's history (teacher
// forcing), with sequences reordered by random parents every step (beam search) and without
// (sampling), in both norm placements; a second start() forgets the first; misuse is a logic
// error.
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <stdexcept>
#include <vector>

#include "model/gpt_decoder.h"
#include "tests/encdec_decoding_check.h"
#include "tests/test_backend.h"

namespace ph {
namespace {

ModelConfig decoding_gpt() {
  ModelConfig m;
  m.vocab_size = 29;
  m.n_layers = 3;
  m.d_model = 16;
  m.n_heads = 4;
  m.seq_len = 8;
  m.init_std = 0.2f;
  m.dropout_embed = m.dropout_attn = m.dropout_resid = 0.3f;  // off while decoding
  return m;
}

std::unique_ptr<Gpt> gpt_of(const ModelConfig& m, int max_batch) {
  ModelSetup s;
  s.max_batch = max_batch;
  auto g = std::make_unique<Gpt>(test::cpu(), m, s);
  g->initialize(17);
  return g;
}

// n sequences over the whole length; reorder: random parents every step. Returns the largest
// difference from the full forward.
double check(Gpt& model, GptDecoder& decoder, int n, bool reorder, unsigned seed) {
  const int V = model.config().vocab_size, T = model.config().seq_len;
  std::mt19937 rng(seed);
  decoder.start(n);
  std::vector<std::vector<int32_t>> history(static_cast<size_t>(n));
  std::vector<float> logprobs(static_cast<size_t>(n * V));
  double worst = 0.0;
  for (int pos = 0; pos < T; ++pos) {
    std::vector<int32_t> tokens(static_cast<size_t>(n)), parents(static_cast<size_t>(n));
    std::vector<std::vector<int32_t>> next(static_cast<size_t>(n));
    for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
      parents[i] = reorder ? static_cast<int32_t>(rng() % static_cast<unsigned>(n))
                           : static_cast<int32_t>(i);
      tokens[i] = static_cast<int32_t>(rng() % static_cast<unsigned>(V));
      if (pos > 0) next[i] = history[static_cast<size_t>(parents[i])];
      next[i].push_back(tokens[i]);
    }
    history = next;
    decoder.step(tokens.data(), reorder ? parents.data() : nullptr, logprobs.data());
    Batch b;
    b.B = n;
    b.T = pos + 1;
    for (const auto& h : history) b.tokens.insert(b.tokens.end(), h.begin(), h.end());
    b.targets.assign(b.tokens.size(), 0);
    model.forward(b, DropoutContext{});
    for (int i = 0; i < n; ++i) {
      const std::vector<double> want = test::full_log_softmax(model, i * (pos + 1) + pos, V);
      for (int v = 0; v < V; ++v) {
        const double got = logprobs[static_cast<size_t>(i * V + v)];
        worst = std::max(worst, std::fabs(got - want[static_cast<size_t>(v)]));
        EXPECT_NEAR(got, want[static_cast<size_t>(v)], 2e-5)
            << "position " << pos << ", sequence " << i << ", token " << v;
      }
    }
  }
  return worst;
}

TEST(GptDecoding, ReorderedSequencesMatchTheFullForward) {
  const auto model = gpt_of(decoding_gpt(), 5);
  const auto decoder = model->incremental_decoder(5);
  std::printf("largest difference: %.2e\n", check(*model, *decoder, 5, true, 1));
}

TEST(GptDecoding, PostNormSinusoidalSamplingAndARestart) {
  ModelConfig m = decoding_gpt();
  m.norm = Norm::kPost;
  m.pos_encoding = PosEncoding::kSinusoidal;
  m.tie_embeddings = false;
  const auto model = gpt_of(m, 4);
  const auto decoder = model->incremental_decoder(4);
  check(*model, *decoder, 4, false, 2);
  check(*model, *decoder, 3, true, 3);
  EXPECT_EQ(decoder->max_length(), 8);
  EXPECT_EQ(decoder->vocab_size(), 29);
}

TEST(GptDecoding, MisuseIsALogicError) {
  const auto model = gpt_of(decoding_gpt(), 1);
  EXPECT_THROW(model->incremental_decoder(9), std::logic_error);  // 9 rows > 1 x 8
  const auto decoder = model->incremental_decoder(2);
  std::vector<int32_t> tokens(2, 1), parents = {0, 2};
  std::vector<float> out(2 * 29);
  EXPECT_THROW(decoder->step(tokens.data(), nullptr, out.data()), std::logic_error);
  EXPECT_THROW(decoder->start(3), std::logic_error);
  decoder->start(2);
  decoder->step(tokens.data(), nullptr, out.data());
  EXPECT_THROW(decoder->step(tokens.data(), parents.data(), out.data()), std::logic_error);
  for (int pos = 1; pos < 8; ++pos) decoder->step(tokens.data(), nullptr, out.data());
  EXPECT_THROW(decoder->step(tokens.data(), nullptr, out.data()), std::logic_error);
}

}  // namespace
}  // namespace ph

// Incremental decoding of the encoder-decoder (model/encdec_decoder.h): step-by-step
// log-probabilities with the key/value caches equal those of the full forward (teacher forcing)
// with beams reordering every step, in both norm placements and position encodings; greedy
// (one beam); a second start() forgets the first; cross-attention folded into the memory; and
// misuse is a logic error.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <random>
#include <stdexcept>
#include <vector>

#include "model/encdec.h"
#include "tests/encdec_decoding_check.h"
#include "tests/test_backend.h"

namespace ph {
namespace {

ModelConfig decoding_model() {
  ModelConfig m;
  m.type = ModelType::kEncDec;
  m.vocab_size = 23;
  m.encoder_layers = 2;
  m.decoder_layers = 3;
  m.d_model = 16;
  m.n_heads = 4;
  m.seq_len = 7;
  m.src_seq_len = 6;
  m.init_std = 0.2f;
  m.dropout_embed = m.dropout_attn = m.dropout_resid = 0.3f;  // off while decoding
  return m;
}

std::unique_ptr<EncDec> model_of(const ModelConfig& m, int max_batch) {
  ModelSetup s;
  s.max_batch = max_batch;
  auto model = std::make_unique<EncDec>(test::cpu(), m, s);
  model->initialize(31);
  return model;
}

TEST(EncDecDecoding, PostNormSinusoidalBeamsMatchTheFullForward) {
  ModelConfig m = decoding_model();
  m.norm = Norm::kPost;
  m.pos_encoding = PosEncoding::kSinusoidal;
  m.embed_scale = true;
  m.activation = Activation::kRelu;
  const auto model = model_of(m, 6);
  auto decoder = model->incremental_decoder(2, 3);
  const double worst = test::check_incremental_decoding(*decoder, *model, 2, 3, 1);
  std::printf("largest difference: %.2e\n", worst);
}

// Beam search starts every hypothesis of a source from the same token: position 0 then runs
// one row per source, and the next steps read each hypothesis's parent from its source's row.
TEST(EncDecDecoding, BeamsFromOneStartTokenMatchTheFullForward) {
  const auto model = model_of(decoding_model(), 8);
  auto decoder = model->incremental_decoder(2, 4);
  test::check_incremental_decoding(*decoder, *model, 2, 4, 3, /*shared_start=*/true);
}

TEST(EncDecDecoding, PreNormLearnedUnsharedBeamsMatchTheFullForward) {
  ModelConfig m = decoding_model();
  m.share_embeddings = ShareEmbeddings::kNone;
  const auto model = model_of(m, 6);
  auto decoder = model->incremental_decoder(3, 2);
  test::check_incremental_decoding(*decoder, *model, 3, 2, 2);
}

// One beam (greedy) and fewer sources than the decoder was made for; then a new start() with
// other sources begins at position 0 with clean caches.
TEST(EncDecDecoding, GreedyAndARestart) {
  const ModelConfig m = decoding_model();
  const auto model = model_of(m, 8);  // the reference forward takes all 8 hypotheses
  auto decoder = model->incremental_decoder(4, 2);
  test::check_incremental_decoding(*decoder, *model, 3, 1, 3);
  test::check_incremental_decoding(*decoder, *model, 4, 2, 4);
  EXPECT_EQ(decoder->vocab_size(), 23);
  EXPECT_EQ(decoder->max_length(), 7);
  EXPECT_EQ(decoder->max_sources(), 4);
  EXPECT_EQ(decoder->max_beams(), 2);
}

// Cross-attention folded into the memory (model/attention.h, CrossFolding): the same
// log-probabilities as the full forward, with beams from one start token and reordered every
// step, greedy, and a restart; and where kAuto folds.
TEST(EncDecDecoding, FoldedCrossAttentionMatchesTheFullForward) {
  ModelConfig m = decoding_model();
  m.norm = Norm::kPost;
  m.pos_encoding = PosEncoding::kSinusoidal;
  const auto model = model_of(m, 8);
  auto decoder = model->incremental_decoder(4, 2, CrossFolding::kAlways);
  test::check_incremental_decoding(*decoder, *model, 2, 2, 5, /*shared_start=*/true);
  test::check_incremental_decoding(*decoder, *model, 3, 1, 6);
  test::check_incremental_decoding(*decoder, *model, 4, 2, 7);
  auto pre = model_of(decoding_model(), 6);
  test::set_vectors(*pre);  // biases that are not 0
  auto pre_decoder = pre->incremental_decoder(2, 3, CrossFolding::kAlways);
  test::check_incremental_decoding(*pre_decoder, *pre, 2, 3, 8);
  // kAuto: beam search over sources well shorter than a head folds; greedy search never.
  EXPECT_TRUE(folding_pays(6, 4, 64));
  EXPECT_TRUE(folding_pays(12, 4, 64));
  EXPECT_FALSE(folding_pays(13, 4, 64));
  EXPECT_FALSE(folding_pays(1, 1, 64));
  EXPECT_FALSE(folding_pays(1, 2, 4));
}

// Sources that leave the batch (retain) change nothing for the others: a second decoder on the
// same sources and random parents drops sources before steps 0, 2 and 4 (twice in a row), and
// its slots' log-probabilities equal those of the decoder that keeps them all. (To rounding
// only: OpenBLAS's sgemm rounds a row differently by its place in the kernel's row tiles, so a
// row's result depends on the rows around it, with or without retain.) With cross-attention
// folded, the kept sources read their own folds.
void check_retain(CrossFolding folding) {
  const ModelConfig m = decoding_model();
  const int n = 5, beams = 2, S = m.source_len(), T = m.seq_len, V = m.vocab_size;
  const auto model = model_of(m, n * beams);
  auto full = model->incremental_decoder(n, beams, folding);
  auto part = model->incremental_decoder(n, beams, folding);
  std::mt19937 rng(7);
  std::vector<int32_t> source(static_cast<size_t>(n * S)), lengths;
  for (int32_t& t : source) t = static_cast<int32_t>(rng() % static_cast<unsigned>(V));
  for (int j = 0; j < n; ++j) lengths.push_back(S - j % S);
  full->start(source.data(), lengths.data(), n, S, beams);
  part->start(source.data(), lengths.data(), n, S, beams);
  std::vector<int> kept = {0, 1, 2, 3, 4};  // part's sources, numbered as full's
  const auto retain = [&](const std::vector<int32_t>& keep) {
    part->retain(keep.data(), static_cast<int>(keep.size()));
    std::vector<int> next;
    for (int32_t a : keep) next.push_back(kept[static_cast<size_t>(a)]);
    kept = next;
  };
  std::vector<float> want(static_cast<size_t>(n * beams * V)), got(want.size());
  for (int pos = 0; pos < T; ++pos) {
    if (pos == 0) retain({0, 1, 2, 3});
    if (pos == 2) retain({0, 2, 3});
    if (pos == 4) {
      retain({1, 2});
      retain({1});
    }
    std::vector<int32_t> tokens, parents;
    for (int i = 0; i < n * beams; ++i) {
      tokens.push_back(static_cast<int32_t>(rng() % static_cast<unsigned>(V)));
      parents.push_back(i / beams * beams + static_cast<int32_t>(rng() % 2u));
    }
    std::vector<int32_t> part_tokens, part_parents;
    for (size_t a = 0; a < kept.size(); ++a) {
      for (int b = 0; b < beams; ++b) {
        const size_t i = static_cast<size_t>(kept[a] * beams + b);
        part_tokens.push_back(tokens[i]);
        part_parents.push_back(parents[i] - (kept[a] - static_cast<int>(a)) * beams);
      }
    }
    full->step(tokens.data(), pos == 0 ? nullptr : parents.data(), want.data());
    part->step(part_tokens.data(), pos == 0 ? nullptr : part_parents.data(), got.data());
    for (size_t a = 0; a < kept.size(); ++a) {
      for (int b = 0; b < beams; ++b) {
        const size_t i = static_cast<size_t>(kept[a] * beams + b);
        const size_t k = a * static_cast<size_t>(beams) + static_cast<size_t>(b);
        for (int v = 0; v < V; ++v)
          ASSERT_NEAR(got[k * static_cast<size_t>(V) + static_cast<size_t>(v)],
                      want[i * static_cast<size_t>(V) + static_cast<size_t>(v)], 2e-5)
              << "position " << pos << ", source " << kept[a] << ", beam " << b;
      }
    }
  }
  ASSERT_EQ(kept, std::vector<int>{3});
  const int32_t bad[] = {1, 0};
  EXPECT_THROW(part->retain(bad, 2), std::logic_error);  // one source left; not increasing
}

TEST(EncDecDecoding, RetainedSourcesDecodeAsIfNoneLeft) {
  check_retain(CrossFolding::kNever);
}

TEST(EncDecDecoding, RetainedSourcesDecodeAsIfNoneLeftFolded) {
  check_retain(CrossFolding::kAlways);
}

TEST(EncDecDecoding, MisuseIsALogicError) {
  const ModelConfig m = decoding_model();
  const auto model = model_of(m, 2);
  EXPECT_THROW(model->incremental_decoder(3, 1), std::logic_error);  // more sources than B
  EXPECT_THROW(model->incremental_decoder(2, 8), std::logic_error);  // 16 slots > 2 x 7 rows
  auto decoder = model->incremental_decoder(2, 2);
  std::vector<int32_t> source(12, 1), lengths = {6, 7}, tokens(4, 0), parents = {0, 1, 3, 2};
  std::vector<float> out(4 * 23);
  EXPECT_THROW(decoder->step(tokens.data(), nullptr, out.data()), std::logic_error);  // no start
  EXPECT_THROW(decoder->start(source.data(), lengths.data(), 2, 6, 2), std::logic_error);
  lengths[1] = 6;
  decoder->start(source.data(), lengths.data(), 2, 6, 2);
  decoder->step(tokens.data(), nullptr, out.data());
  parents = {1, 2, 3, 2};  // slot 1 cannot continue a hypothesis of the other source
  EXPECT_THROW(decoder->step(tokens.data(), parents.data(), out.data()), std::logic_error);
  parents = {1, 1, 3, 2};
  for (int pos = 1; pos < 7; ++pos) decoder->step(tokens.data(), parents.data(), out.data());
  EXPECT_THROW(decoder->step(tokens.data(), parents.data(), out.data()), std::logic_error);
}

}  // namespace
}  // namespace ph

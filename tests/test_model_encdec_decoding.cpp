// Incremental decoding of the encoder-decoder (model/encdec_decoder.h): step-by-step
// log-probabilities with the key/value caches equal those of the full forward (teacher forcing)
// with beams reordering every step, in both norm placements and position encodings; greedy
// (one beam); a second start() forgets the first; and misuse is a logic error.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
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

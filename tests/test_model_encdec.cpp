// The encoder-decoder (model/encdec.h): whole-model gradients against central finite
// differences for every option (pre/post-norm, share_embeddings none/tgt_out/all, learned and
// sinusoidal positions, dropout), always with padding in the source and the target; the padding
// of the source is invisible; a micro-batch padded to fewer positions draws the same dropout
// masks; a training step on the real positions only (packed rows) equals the padded one; the
// parameter names of DESIGN.md per sharing mode; the loss at initialisation; and the parameter
// count of the paper's base model against the closed formula.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "model/encdec.h"
#include "tests/encdec_batch.h"
#include "tests/model_gradient_check.h"
#include "tests/test_backend.h"
#include "tests/test_paths.h"

namespace ph {
namespace {

ModelConfig tiny_encdec() {
  ModelConfig m;
  m.type = ModelType::kEncDec;
  m.vocab_size = 11;
  m.encoder_layers = 2;
  m.decoder_layers = 1;
  m.d_model = 8;
  m.n_heads = 2;
  m.seq_len = 4;
  m.src_seq_len = 6;
  m.init_std = 0.3f;  // large enough that every path carries a visible gradient
  return m;
}

EncDec encdec(const ModelConfig& m, int B, float smoothing = 0.0f, bool pack = true) {
  ModelSetup s;
  s.max_batch = B;
  s.label_smoothing = smoothing;
  s.pack_rows = pack;
  return EncDec(test::cpu(), m, s);
}

double mean_loss(EncDec& model, const Batch& b, const DropoutContext& d) {
  int64_t n = 0;
  const double s = model.loss(b, d, &n);
  return s / static_cast<double>(n);
}

DropoutContext with_dropout() {
  DropoutContext d;
  d.train = true;
  d.seed = 5;
  d.step = 7;
  return d;
}

// d(mean loss)/d(param) from backward against central differences for a spread of elements of
// every parameter tensor.
void check_gradients(const ModelConfig& mc, const DropoutContext& d, float eps = 1e-2f) {
  const int B = 3;
  EncDec model = encdec(mc, B);
  model.initialize(21);
  const Batch batch = test::encdec_batch(mc, B, 4, 1);
  int64_t counted = 0;
  for (int32_t t : batch.targets) counted += t != kIgnoreIndex;
  model.zero_grads();
  model.forward_backward(batch, 1.0f / static_cast<float>(counted), d, nullptr);
  const std::vector<float> grad(model.grads(), model.grads() + model.arena_size());
  testing::expect_gradients_match_differences(
      model, grad, [&] { return mean_loss(model, batch, d); }, eps);
  // The encoder and cross-attention carry gradient.
  for (const char* name : {"enc.h.0.attn.q.weight", "dec.h.0.cross.k.weight"})
    EXPECT_GT(testing::gradient_mass(model, grad, name), 1e-5) << name;
}

TEST(EncDecGradients, PreNormLearnedSharedAll) {
  check_gradients(tiny_encdec(), DropoutContext{}, 2e-3f);
}

// The paper's choices: post-norm, sinusoidal positions, embeddings scaled by sqrt(d), ReLU (its
// kinks want a smaller step).
TEST(EncDecGradients, PostNormSinusoidalScaledReluTgtOut) {
  ModelConfig m = tiny_encdec();
  m.norm = Norm::kPost;
  m.pos_encoding = PosEncoding::kSinusoidal;
  m.embed_scale = true;
  m.activation = Activation::kRelu;
  m.share_embeddings = ShareEmbeddings::kTgtOut;
  check_gradients(m, DropoutContext{}, 2e-3f);
}

TEST(EncDecGradients, PostNormUnsharedWithDropoutEverywhere) {
  ModelConfig m = tiny_encdec();
  m.norm = Norm::kPost;
  m.share_embeddings = ShareEmbeddings::kNone;
  m.dropout_embed = m.dropout_attn = m.dropout_resid = 0.2f;
  check_gradients(m, with_dropout());
}

TEST(EncDecGradients, PreNormSinusoidalUnsharedNoBias) {
  ModelConfig m = tiny_encdec();
  m.pos_encoding = PosEncoding::kSinusoidal;
  m.share_embeddings = ShareEmbeddings::kNone;
  m.bias = false;
  m.d_ff = 12;
  check_gradients(m, with_dropout());
}

// What the source holds past its length changes nothing: not the loss, not one gradient.
TEST(EncDecModel, SourcePaddingIsInvisible) {
  ModelConfig m = tiny_encdec();
  m.dropout_attn = m.dropout_resid = 0.1f;
  EncDec model = encdec(m, 3);
  model.initialize(3);
  std::vector<std::vector<float>> grads;
  std::vector<double> losses;
  for (int32_t pad : {0, 7}) {
    const Batch b = test::encdec_batch(m, 3, 9, 1, pad);
    model.zero_grads();
    losses.push_back(model.forward_backward(b, 0.1f, with_dropout(), nullptr));
    grads.emplace_back(model.grads(), model.grads() + model.arena_size());
  }
  EXPECT_EQ(losses[0], losses[1]);
  EXPECT_EQ(0, std::memcmp(grads[0].data(), grads[1].data(), grads[0].size() * sizeof(float)));
  // Not vacuous: the real source tokens matter.
  Batch other = test::encdec_batch(m, 3, 9, 1);
  other.source[0] = (other.source[0] + 1) % m.vocab_size;
  EXPECT_NE(model.loss(other, with_dropout(), nullptr),
            model.loss(test::encdec_batch(m, 3, 9, 1), with_dropout(), nullptr));
}

// A micro-batch padded to fewer source and target positions than configured draws the same
// dropout masks for the positions it has (the masks use the configured lengths as the strides of
// a sample): the loss is the same as with the full lengths.
TEST(EncDecModel, ShorterPaddingDrawsTheSameDropoutMasks) {
  ModelConfig m = tiny_encdec();
  m.dropout_embed = m.dropout_attn = m.dropout_resid = 0.5f;
  EncDec model = encdec(m, 3);
  model.initialize(8);
  Batch full = test::encdec_batch(m, 3, 12, 5);
  const int Ss = 4, Ts = 3;
  Batch part = full;
  part.S = Ss;
  part.T = Ts;
  part.source.clear();
  part.tokens.clear();
  part.targets.clear();
  for (int b = 0; b < 3; ++b) {
    full.source_lengths[static_cast<size_t>(b)] =
        std::min(full.source_lengths[static_cast<size_t>(b)], Ss);
    part.source_lengths[static_cast<size_t>(b)] = full.source_lengths[static_cast<size_t>(b)];
    for (int s = 0; s < Ss; ++s)
      part.source.push_back(full.source[static_cast<size_t>(b * full.S + s)]);
    for (int t = 0; t < m.seq_len; ++t) {
      const size_t i = static_cast<size_t>(b * m.seq_len + t);
      if (t < Ts) {
        part.tokens.push_back(full.tokens[i]);
        part.targets.push_back(full.targets[i]);
      } else {
        full.targets[i] = kIgnoreIndex;  // only the shared positions count
      }
    }
  }
  int64_t nf = 0, np = 0;
  const double lf = model.loss(full, with_dropout(), &nf),
               lp = model.loss(part, with_dropout(), &np);
  EXPECT_EQ(nf, np);
  EXPECT_NEAR(lp, lf, 1e-5 * std::fabs(lf));
  // The masks matter: another step draws other masks and another loss.
  DropoutContext other = with_dropout();
  other.step += 1;
  EXPECT_GT(std::fabs(model.loss(part, other, nullptr) - lp), 1e-3 * std::fabs(lp));
}

// A training step runs its layers on the real positions only (up to each sample's source length
// and last counted target): the loss, every gradient and every dropout mask are those of the
// step over all padded positions, in both LayerNorm placements, with label smoothing.
TEST(EncDecModel, PackedTrainingStepEqualsThePaddedOne) {
  for (Norm norm : {Norm::kPost, Norm::kPre}) {
    ModelConfig m = tiny_encdec();
    m.norm = norm;
    m.share_embeddings = ShareEmbeddings::kNone;
    m.dropout_embed = m.dropout_attn = m.dropout_resid = 0.3f;
    const int B = 4;
    const Batch b = test::encdec_batch(m, B, 17, 2, 5);
    std::vector<std::vector<float>> grads;
    std::vector<double> losses;
    std::vector<int> rows;
    for (bool pack : {false, true}) {
      EncDec model = encdec(m, B, 0.1f, pack);
      model.initialize(4);
      model.zero_grads();
      int64_t counted = 0;
      losses.push_back(model.forward_backward(b, 0.25f, with_dropout(), &counted));
      grads.emplace_back(model.grads(), model.grads() + model.arena_size());
      rows.push_back(model.source_rows() + model.target_rows());
      // Evaluation keeps one logits row per position, packed or not.
      model.loss(b, with_dropout(), nullptr);
      EXPECT_EQ(model.target_rows(), B * m.seq_len);
    }
    // Not vacuous: the packed step dropped rows (global samples 2..5: sources of 4, 6, 5, 4
    // positions, targets of 4, 3, 4, 3).
    EXPECT_EQ(rows[0], B * (m.src_seq_len + m.seq_len));
    EXPECT_EQ(rows[1], (4 + 6 + 5 + 4) + (4 + 3 + 4 + 3));
    EXPECT_NEAR(losses[1], losses[0], 1e-6 * std::fabs(losses[0]));
    double worst = 0, scale = 0;
    for (size_t i = 0; i < grads[0].size(); ++i) {
      worst = std::max(worst, static_cast<double>(std::fabs(grads[1][i] - grads[0][i])));
      scale = std::max(scale, static_cast<double>(std::fabs(grads[0][i])));
    }
    EXPECT_GT(scale, 1e-3);
    EXPECT_LT(worst, 1e-5 * scale) << "norm " << static_cast<int>(norm);
  }
}

TEST(EncDecModel, ParameterNamesFollowTheDesignInEverySharingMode) {
  ModelConfig m = tiny_encdec();
  for (ShareEmbeddings share :
       {ShareEmbeddings::kNone, ShareEmbeddings::kTgtOut, ShareEmbeddings::kAll}) {
    m.share_embeddings = share;
    EncDec model = encdec(m, 1);
    const ParamTable& t = model.table();
    for (const char* name :
         {"enc.wte", "enc.wpe", "enc.h.0.ln1.weight", "enc.h.1.attn.q.weight", "enc.h.0.ln2.bias",
          "enc.h.1.mlp.fc.weight", "enc.h.1.mlp.proj.bias", "enc.lnf.weight", "dec.wpe",
          "dec.h.0.attn.v.bias", "dec.h.0.ln1.weight", "dec.h.0.ln2.weight",
          "dec.h.0.cross.q.weight", "dec.h.0.cross.k.weight", "dec.h.0.cross.v.bias",
          "dec.h.0.cross.proj.weight", "dec.h.0.ln3.weight", "dec.h.0.mlp.proj.bias",
          "dec.lnf.bias"})
      EXPECT_GE(t.find(name), 0) << name;
    EXPECT_EQ(t.find("dec.wte") >= 0, share != ShareEmbeddings::kAll);
    EXPECT_EQ(t.find("lm_head.weight") >= 0, share == ShareEmbeddings::kNone);
    EXPECT_LT(t.find("enc.h.0.ln3.weight"), 0);
    EXPECT_LT(t.find("dec.h.1.ln1.weight"), 0);  // one decoder layer
    EXPECT_EQ(t[t.find("enc.wpe")].shape, (std::vector<int64_t>{6, 8}));
    EXPECT_EQ(t[t.find("dec.wpe")].shape, (std::vector<int64_t>{4, 8}));
    EXPECT_EQ(t[t.find("enc.wte")].shape, (std::vector<int64_t>{11, 8}));
    // Cross-attention's k and v are adjacent (one fused GEMM over the memory).
    EXPECT_EQ(t[t.find("dec.h.0.cross.v.weight")].offset,
              t[t.find("dec.h.0.cross.k.weight")].offset + 64);
  }
  m.norm = Norm::kPost;
  m.pos_encoding = PosEncoding::kSinusoidal;
  EncDec post = encdec(m, 1);
  for (const char* name : {"enc.lnf.weight", "dec.lnf.weight", "enc.wpe", "dec.wpe"})
    EXPECT_LT(post.table().find(name), 0) << name;
}

// configs/transformer-base.yaml, the paper's base model (6+6 layers, d 512, FFN 2048, 8 heads, a
// shared vocabulary of 37000, sinusoidal positions, post-norm), against the closed formula:
// embeddings V d, per encoder layer 4(d^2 + d) + 2 d f + f + d + 4 d (attention, FFN, two
// LayerNorms), per decoder layer that plus cross-attention 4(d^2 + d) and a LayerNorm 2 d.
TEST(EncDecModel, TransformerBaseHas63082496Parameters) {
  // Sinusoidal positions: the lengths add no parameter (short ones keep the arena small).
  const Config c = load_config(testing::source_dir() + "/configs/transformer-base.yaml",
                               {"model.seq_len=8", "model.src_seq_len=8", "train.micro_batch=1"});
  const ModelConfig& m = c.model;
  EXPECT_EQ(m.type, ModelType::kEncDec);
  EXPECT_EQ(m.encoder_depth(), 6);
  EXPECT_EQ(m.decoder_depth(), 6);
  EXPECT_EQ(m.share_embeddings, ShareEmbeddings::kAll);
  EXPECT_EQ(m.pos_encoding, PosEncoding::kSinusoidal);
  EXPECT_EQ(m.norm, Norm::kPost);
  const int64_t V = m.vocab_size, d = m.d_model, f = m.ffn_width(), L = 6;
  EXPECT_EQ(V, 37000);
  EXPECT_EQ(d, 512);
  EXPECT_EQ(f, 2048);
  EXPECT_EQ(m.n_heads, 8);
  const int64_t enc_layer = 4 * (d * d + d) + 2 * d * f + f + d + 4 * d;
  const int64_t dec_layer = enc_layer + 4 * (d * d + d) + 2 * d;
  const int64_t formula = V * d + L * enc_layer + L * dec_layer;
  EXPECT_EQ(formula, 63082496);
  EncDec model = encdec(m, 1);
  EXPECT_EQ(model.table().full_count(), formula);
  std::printf("transformer-base: %lld parameters\n",
              static_cast<long long>(model.table().full_count()));
  // The training recipe of the paper.
  EXPECT_FLOAT_EQ(c.train.label_smoothing, 0.1f);
  EXPECT_FLOAT_EQ(c.model.dropout_resid, 0.1f);
  EXPECT_EQ(c.optim.schedule, Schedule::kNoam);
  EXPECT_EQ(c.optim.warmup_steps, 4000);
  EXPECT_FLOAT_EQ(c.optim.beta2, 0.98f);
  EXPECT_FLOAT_EQ(c.optim.eps, 1e-9f);
}

// At initialisation the prediction is close to uniform: the loss is within 2% of ln V.
TEST(EncDecModel, InitialLossIsLnV) {
  ModelConfig m;
  m.type = ModelType::kEncDec;
  m.vocab_size = 1000;
  m.n_layers = 3;
  m.d_model = 128;
  m.n_heads = 4;
  m.seq_len = 32;
  m.src_seq_len = 40;
  m.norm = Norm::kPost;
  m.pos_encoding = PosEncoding::kSinusoidal;
  m.embed_scale = true;
  m.activation = Activation::kRelu;
  EncDec model = encdec(m, 2);
  model.initialize(1337);
  const double l = mean_loss(model, test::encdec_batch(m, 2, 11), DropoutContext{});
  EXPECT_NEAR(l, std::log(1000.0), 0.02 * std::log(1000.0));
}

TEST(EncDecModel, ABatchWithoutASourceIsALogicError) {
  ModelConfig m = tiny_encdec();
  EncDec model = encdec(m, 2);
  model.initialize(1);
  Batch b = test::encdec_batch(m, 2, 3);
  b.source_lengths[1] = 0;
  EXPECT_THROW(model.loss(b, DropoutContext{}, nullptr), std::logic_error);
  b = test::encdec_batch(m, 2, 3);
  b.S = m.src_seq_len + 1;
  EXPECT_THROW(model.loss(b, DropoutContext{}, nullptr), std::logic_error);
}

}  // namespace
}  // namespace ph

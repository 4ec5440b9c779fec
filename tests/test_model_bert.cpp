// BERT (model/bert.h): whole-model gradients of the pre-training objective (mean MLM loss plus
// mean sentence loss) against central finite differences for every option (sentence head
// none/nsp/sop, gelu_erf/gelu, post/pre-norm, dropout), always with padding; the padding is
// invisible; the unused prediction slots are; the parameter names of DESIGN.md; BERT-base has
// HF BertForPreTraining's 110,106,428 parameters; the loss at initialisation; bad batches.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "model/bert.h"
#include "tests/bert_batch.h"
#include "tests/model_gradient_check.h"
#include "tests/test_backend.h"

namespace ph {
namespace {

constexpr int kP = 3;

ModelConfig tiny_bert(SentenceHead head = SentenceHead::kNsp) {
  ModelConfig m;
  m.type = ModelType::kBert;
  m.vocab_size = 11;
  m.n_layers = 2;
  m.d_model = 8;
  m.n_heads = 2;
  m.seq_len = 6;
  m.norm = Norm::kPost;
  m.activation = Activation::kGeluErf;
  m.layer_norm_eps = 1e-12f;
  m.type_vocab_size = 2;
  m.sentence_head = head;
  m.init_std = 0.3f;  // large enough that every path carries a visible gradient
  return m;
}

Bert bert(const ModelConfig& m, int B, int P = kP, bool select = true) {
  ModelSetup s;
  s.max_batch = B;
  s.max_predictions = P;
  s.pack_rows = select;
  return Bert(test::cpu(), m, s);
}

DropoutContext with_dropout() {
  DropoutContext d;
  d.train = true;
  d.seed = 5;
  d.step = 7;
  return d;
}

int64_t counted_targets(const Batch& b) {
  int64_t n = 0;
  for (int32_t t : b.targets) n += t != kIgnoreIndex;
  return n;
}

int64_t counted_labels(const Batch& b) {
  int64_t n = 0;
  for (int32_t t : b.sentence_labels) n += t != kIgnoreIndex;
  return n;
}

// The objective: mean MLM loss plus (with a sentence head) mean sentence loss.
double objective(Bert& model, const Batch& b, const DropoutContext& d) {
  int64_t n = 0;
  const double mlm = model.loss(b, d, &n) / static_cast<double>(n);
  const SentenceStats s = model.sentence_stats();
  return s.counted > 0 ? mlm + s.loss_sum / static_cast<double>(s.counted) : mlm;
}

void check_gradients(const ModelConfig& mc, const DropoutContext& d, float eps = 2e-3f) {
  const int B = 3;
  Bert model = bert(mc, B);
  model.initialize(21);
  Batch batch = test::bert_batch(mc, B, kP, 1);
  batch.sentence_dloss = 1.0f / static_cast<float>(counted_labels(batch));
  model.zero_grads();
  model.forward_backward(batch, 1.0f / static_cast<float>(counted_targets(batch)), d, nullptr);
  const std::vector<float> grad(model.grads(), model.grads() + model.arena_size());
  testing::expect_gradients_match_differences(
      model, grad, [&] { return objective(model, batch, d); }, eps);
  std::vector<std::string> carry = {"wtt", "emb_ln.weight", "h.0.attn.q.weight", "mlm.bias",
                                    "mlm.dense.weight"};
  if (mc.sentence_head != SentenceHead::kNone) carry.push_back("pooler.weight");
  for (const std::string& name : carry)
    EXPECT_GT(testing::gradient_mass(model, grad, name), 1e-5) << name;
}

TEST(BertGradients, PostNormGeluErfNsp) {
  check_gradients(tiny_bert(SentenceHead::kNsp), DropoutContext{});
}

TEST(BertGradients, PreNormGeluSop) {
  ModelConfig m = tiny_bert(SentenceHead::kSop);
  m.norm = Norm::kPre;
  m.activation = Activation::kGelu;
  check_gradients(m, DropoutContext{});
}

TEST(BertGradients, NoSentenceHeadWithDropoutEverywhere) {
  ModelConfig m = tiny_bert(SentenceHead::kNone);
  m.dropout_embed = m.dropout_attn = m.dropout_resid = 0.2f;
  check_gradients(m, with_dropout());
}

TEST(BertGradients, PostNormNspDefaultEpsAndDropout) {
  ModelConfig m = tiny_bert(SentenceHead::kNsp);
  m.layer_norm_eps = 1e-5f;
  m.d_ff = 12;
  m.dropout_attn = m.dropout_resid = 0.1f;
  check_gradients(m, with_dropout());
}

// The last layer computes its output on the rows the heads read only (ModelSetup::pack_rows):
// the loss, the sentence loss and every gradient are those of the layer over all rows, with
// dropout, in both LayerNorm placements, with and without a sentence head.
TEST(BertModel, LastLayerOnTheHeadsRowsEqualsAllRows) {
  for (Norm norm : {Norm::kPost, Norm::kPre}) {
    for (SentenceHead head : {SentenceHead::kNsp, SentenceHead::kNone}) {
      ModelConfig m = tiny_bert(head);
      m.norm = norm;
      m.dropout_embed = m.dropout_attn = m.dropout_resid = 0.3f;
      const int B = 3;
      Batch b = test::bert_batch(m, B, kP, 8, 1);
      b.sentence_dloss = 0.5f;
      std::vector<std::vector<float>> grads;
      std::vector<double> losses, sentence, evals;
      std::vector<int> rows;
      for (bool select : {false, true}) {
        Bert model = bert(m, B, kP, select);
        model.initialize(6);
        model.zero_grads();
        losses.push_back(model.forward_backward(b, 0.2f, with_dropout(), nullptr));
        sentence.push_back(model.sentence_stats().loss_sum);
        rows.push_back(model.output_rows());
        grads.emplace_back(model.grads(), model.grads() + model.arena_size());
        evals.push_back(model.loss(b, DropoutContext{}, nullptr));
      }
      const std::string what = "norm " + std::to_string(static_cast<int>(norm)) + " head " +
                               std::to_string(static_cast<int>(head));
      // Not vacuous: the selection kept each sample's two predicted positions and position 0
      // (the unused slot's, and [CLS]).
      EXPECT_EQ(rows[0], B * m.seq_len) << what;
      EXPECT_EQ(rows[1], B * 3) << what;
      EXPECT_NEAR(losses[1], losses[0], 1e-6 * std::fabs(losses[0])) << what;
      EXPECT_NEAR(evals[1], evals[0], 1e-6 * std::fabs(evals[0])) << what;
      EXPECT_NEAR(sentence[1], sentence[0], 1e-6 * std::fabs(sentence[0]) + 1e-12) << what;
      double worst = 0, scale = 0;
      for (size_t i = 0; i < grads[0].size(); ++i) {
        worst = std::max(worst, static_cast<double>(std::fabs(grads[1][i] - grads[0][i])));
        scale = std::max(scale, static_cast<double>(std::fabs(grads[0][i])));
      }
      EXPECT_GT(scale, 1e-3) << what;
      EXPECT_LT(worst, 1e-5 * scale) << what;
    }
  }
}

// What the tokens and types hold past each length changes nothing: not the loss, not the
// sentence loss, not one gradient.
TEST(BertModel, PaddingIsInvisible) {
  ModelConfig m = tiny_bert();
  m.dropout_attn = m.dropout_resid = 0.1f;
  Bert model = bert(m, 3);
  model.initialize(3);
  std::vector<std::vector<float>> grads;
  std::vector<double> losses, sentence;
  for (int32_t pad : {0, 7}) {
    Batch b = test::bert_batch(m, 3, kP, 9, 1, pad);
    b.sentence_dloss = 0.5f;
    model.zero_grads();
    losses.push_back(model.forward_backward(b, 0.1f, with_dropout(), nullptr));
    sentence.push_back(model.sentence_stats().loss_sum);
    grads.emplace_back(model.grads(), model.grads() + model.arena_size());
  }
  EXPECT_EQ(losses[0], losses[1]);
  EXPECT_EQ(sentence[0], sentence[1]);
  EXPECT_EQ(0, std::memcmp(grads[0].data(), grads[1].data(), grads[0].size() * sizeof(float)));
  // Not vacuous: a real token matters.
  Batch other = test::bert_batch(m, 3, kP, 9, 1);
  other.tokens[1] = (other.tokens[1] + 1) % m.vocab_size;
  EXPECT_NE(model.loss(other, with_dropout(), nullptr),
            model.loss(test::bert_batch(m, 3, kP, 9, 1), with_dropout(), nullptr));
}

// The sentence statistics count the labelled sequences; the accuracy is the argmax's.
TEST(BertModel, SentenceStatsCountLabelledSequences) {
  const ModelConfig m = tiny_bert();
  Bert model = bert(m, 3);
  model.initialize(4);
  const Batch b = test::bert_batch(m, 3, kP, 2);
  model.loss(b, DropoutContext{}, nullptr);
  const SentenceStats s = model.sentence_stats();
  EXPECT_EQ(s.counted, 2);  // one of three labels is ignored
  EXPECT_GE(s.correct, 0);
  EXPECT_LE(s.correct, 2);
  EXPECT_GT(s.loss_sum, 0.0);
  Bert none = bert(tiny_bert(SentenceHead::kNone), 3);
  none.initialize(4);
  none.loss(b, DropoutContext{}, nullptr);
  EXPECT_EQ(none.sentence_stats().counted, 0);
  EXPECT_EQ(none.sentence_stats().loss_sum, 0.0);
}

TEST(BertModel, ParameterNamesFollowTheDesign) {
  Bert model = bert(tiny_bert(), 1);
  const ParamTable& t = model.table();
  const std::vector<std::pair<std::string, std::vector<int64_t>>> expected = {
      {"wte", {11, 8}},
      {"wpe", {6, 8}},
      {"wtt", {2, 8}},
      {"emb_ln.weight", {8}},
      {"emb_ln.bias", {8}},
      {"h.1.ln1.weight", {8}},
      {"h.0.attn.q.weight", {8, 8}},
      {"h.0.attn.proj.bias", {8}},
      {"h.1.ln2.bias", {8}},
      {"h.1.mlp.fc.weight", {32, 8}},
      {"mlm.dense.weight", {8, 8}},
      {"mlm.dense.bias", {8}},
      {"mlm.ln.weight", {8}},
      {"mlm.ln.bias", {8}},
      {"mlm.bias", {11}},
      {"pooler.weight", {8, 8}},
      {"pooler.bias", {8}},
      {"cls.weight", {2, 8}},
      {"cls.bias", {2}}};
  for (const auto& [name, shape] : expected) {
    const int i = t.find(name);
    ASSERT_GE(i, 0) << name;
    EXPECT_EQ(t[i].shape, shape) << name;
  }
  EXPECT_LT(t.find("lnf.weight"), 0);      // post-norm
  EXPECT_LT(t.find("lm_head.weight"), 0);  // tied decoder
  Bert none = bert(tiny_bert(SentenceHead::kNone), 1);
  EXPECT_LT(none.table().find("pooler.weight"), 0);
  EXPECT_LT(none.table().find("cls.weight"), 0);
}

// BERT-base (V 30522, L 12, d 768, 12 heads, FFN 3072, T 512, 2 types, NSP): HF
// BertForPreTraining's 110,106,428 parameters, and the closed formula: embeddings (V + T + 2) d
// + 2 d, per layer 4(d^2 + d) + 2 d f + f + d + 4 d, pooler d^2 + d, MLM head d^2 + 3 d + V,
// NSP classifier 2 d + 2.
TEST(BertModel, BertBaseHas110106428Parameters) {
  ModelConfig m = tiny_bert(SentenceHead::kNsp);
  m.vocab_size = 30522;
  m.n_layers = 12;
  m.d_model = 768;
  m.n_heads = 12;
  m.d_ff = 3072;
  m.seq_len = 512;
  Bert model = bert(m, 1, 1);
  const int64_t V = 30522, T = 512, d = 768, f = 3072, L = 12;
  const int64_t formula = (V + T + 2) * d + 2 * d + L * (4 * (d * d + d) + 2 * d * f + f + 5 * d) +
                          (d * d + d) + (d * d + 3 * d + V) + (2 * d + 2);
  EXPECT_EQ(formula, 110106428);
  EXPECT_EQ(model.table().full_count(), 110106428);
}

// At initialisation (init_std 0.02) the MLM prediction is close to uniform and so is the
// sentence prediction: the losses are within 2% of ln V and ln 2.
TEST(BertModel, InitialLossIsLnV) {
  ModelConfig m = tiny_bert();
  m.vocab_size = 1000;
  m.d_model = 64;
  m.n_heads = 4;
  m.seq_len = 32;
  m.init_std = 0.02f;
  Bert model = bert(m, 4, 5);
  model.initialize(1337);
  const Batch b = test::bert_batch(m, 4, 5, 11);
  int64_t n = 0;
  const double mlm = model.loss(b, DropoutContext{}, &n) / static_cast<double>(n);
  EXPECT_NEAR(mlm, std::log(1000.0), 0.02 * std::log(1000.0));
  const SentenceStats s = model.sentence_stats();
  EXPECT_NEAR(s.loss_sum / static_cast<double>(s.counted), std::log(2.0), 0.02 * std::log(2.0));
}

TEST(BertModel, BadBatchesAreLogicErrors) {
  const ModelConfig m = tiny_bert();
  Bert model = bert(m, 2);
  model.initialize(1);
  const Batch good = test::bert_batch(m, 2, kP, 3);
  EXPECT_NO_THROW(model.loss(good, DropoutContext{}, nullptr));
  Batch b = good;
  b.lengths[1] = 0;
  EXPECT_THROW(model.loss(b, DropoutContext{}, nullptr), std::logic_error);
  b = good;
  b.types[2] = 2;
  EXPECT_THROW(model.loss(b, DropoutContext{}, nullptr), std::logic_error);
  b = good;
  b.P = kP + 1;
  EXPECT_THROW(model.loss(b, DropoutContext{}, nullptr), std::logic_error);
  b = good;
  b.mlm_positions[1] = b.mlm_positions[0];  // two counted slots at one position
  EXPECT_THROW(model.loss(b, DropoutContext{}, nullptr), std::logic_error);
  b = good;
  b.sentence_labels[1] = 2;
  EXPECT_THROW(model.loss(b, DropoutContext{}, nullptr), std::logic_error);
}

}  // namespace
}  // namespace ph

// BERT against HF transformers (bench/hf_bert.py): a model trained a few steps here and saved
// as a polyhead HDF5 checkpoint gives, on the same padded batch with fixed masks, the same loss
// as HF's BertForPreTraining (sentence head nsp or sop: the mean MLM loss plus the mean sentence
// loss) or BertForMaskedLM (no sentence head) loaded with its weights, to 1e-5 relative — for
// the exact (erf) and the tanh GELU, LayerNorm eps 1e-12 and 1e-5. The comparison can fail: one
// weight changed in the checkpoint moves HF's loss far past the tolerance, and a pre-norm model
// (HF has none) is refused by the peer.
// The peer runs under /usr/bin/python3 (Debian's, with python3-torch, h5py, numpy, yaml;
// POLYHEAD_PYTHON overrides it) with transformers from .venv/hf, which launch/pyenv.sh installs
// (POLYHEAD_HF_PATH overrides it). Skipped when they cannot be imported.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "model/bert.h"
#include "tests/bert_batch.h"
#include "tests/test_backend.h"
#include "tests/test_util.h"
#include "trainer/checkpointing.h"
#include "trainer/optimizer.h"

namespace ph {
namespace {

using testing::run_command;
using testing::TempDir;

constexpr int kB = 4;
constexpr int kP = 4;

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v ? v : fallback;
}

const std::string kPython = env_or("POLYHEAD_PYTHON", "/usr/bin/python3");
const std::string kHfPath = env_or("POLYHEAD_HF_PATH", testing::source_dir() + "/.venv/hf");
const std::string kPeer = testing::source_dir() + "/bench/hf_bert.py";

std::string peer_command(const std::string& args) {
  return "PYTHONPATH='" + kHfPath + "' " + kPython + " " + kPeer + " " + args;
}

std::string python_missing() {
  const testing::RunResult r = run_command("PYTHONPATH='" + kHfPath + "' " + kPython +
                                           " -c 'import torch, h5py, numpy, yaml, transformers'");
  if (r.exit_code == 0) return "";
  return kPython + " with PYTHONPATH=" + kHfPath +
         " cannot import torch, h5py, numpy, yaml and transformers (Debian: apt-get install "
         "python3-torch python3-h5py python3-numpy python3-yaml; then launch/pyenv.sh installs "
         "transformers into .venv/hf):\n" +
         r.output;
}

std::string json_list(const std::vector<int32_t>& v) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < v.size(); ++i) o << (i ? "," : "") << v[i];
  o << "]";
  return o.str();
}

std::string batch_json(const Batch& b) {
  return "{\"T\": " + std::to_string(b.T) + ", \"P\": " + std::to_string(b.P) +
         ", \"tokens\": " + json_list(b.tokens) + ", \"types\": " + json_list(b.types) +
         ", \"lengths\": " + json_list(b.lengths) +
         ", \"mlm_positions\": " + json_list(b.mlm_positions) +
         ", \"targets\": " + json_list(b.targets) +
         ", \"sentence_labels\": " + json_list(b.sentence_labels) + "}\n";
}

// The peer's `loss X over N predictions and K sentences`.
struct PeerLoss {
  double loss = NAN;
  long long predictions = -1, sentences = -1;
};

PeerLoss peer_loss(const std::string& out) {
  static const std::regex re(
      R"((^|\n)loss ([0-9.eE+-]+) over ([0-9]+) predictions and ([0-9]+) sentences)");
  std::smatch m;
  PeerLoss p;
  if (!std::regex_search(out, m, re)) return p;
  p.loss = std::strtod(m[2].str().c_str(), nullptr);
  p.predictions = std::atoll(m[3].str().c_str());
  p.sentences = std::atoll(m[4].str().c_str());
  return p;
}

ModelConfig parity_model(SentenceHead head, Activation act, float eps) {
  ModelConfig m;
  m.type = ModelType::kBert;
  m.vocab_size = 40;
  m.n_layers = 2;
  m.d_model = 16;
  m.n_heads = 2;
  m.seq_len = 12;
  m.norm = Norm::kPost;
  m.activation = act;
  m.layer_norm_eps = eps;
  m.type_vocab_size = 2;
  m.sentence_head = head;
  m.init_std = 0.1f;
  m.dropout_embed = m.dropout_attn = m.dropout_resid = 0.1f;
  return m;
}

// A model a few AdamW steps away from its initialisation (LayerNorms and biases no longer 1
// and 0), saved; the loss it gives on `batch` without dropout.
struct Trained {
  ModelConfig mc;
  std::unique_ptr<Bert> model;
  double loss = 0;
  int64_t predictions = 0, sentences = 0;
};

Trained train_model(const ModelConfig& mc, const Batch& batch) {
  Trained t;
  t.mc = mc;
  ModelSetup s;
  s.max_batch = kB;
  s.max_predictions = kP;
  t.model = std::make_unique<Bert>(test::cpu(), mc, s);
  Bert& model = *t.model;
  model.initialize(3);
  OptimConfig oc;
  oc.decay_1d = true;
  AdamW opt(test::cpu(), oc, model.table());
  DropoutContext train;
  train.train = true;
  train.seed = 1;
  for (int step = 0; step < 5; ++step) {
    train.step = static_cast<uint32_t>(step);
    Batch b = test::bert_batch(mc, kB, kP, 40 + static_cast<unsigned>(step), kB * step);
    b.sentence_dloss = 1.0f / kB;
    model.zero_grads();
    model.forward_backward(b, 0.1f, train, nullptr);
    opt.step(model.params(), model.grads(), 1e-2f, step + 1, 1.0f);
  }
  const double mlm = model.loss(batch, DropoutContext{}, &t.predictions);
  const SentenceStats st = model.sentence_stats();
  t.sentences = st.counted;
  t.loss = mlm / static_cast<double>(t.predictions) +
           (st.counted > 0 ? st.loss_sum / static_cast<double>(st.counted) : 0.0);
  return t;
}

// Saves the model in `tmp`, runs the peer on it and `batch`.
testing::RunResult run_peer(const TempDir& tmp, const Trained& t, const Batch& batch,
                            const std::string& name) {
  Config cfg;
  cfg.model = t.mc;
  const ProcessGrid grid = make_grid(1);
  const std::string ckpt =
      save_training_checkpoint(tmp / name, cfg, Tokenizer(), *t.model, nullptr, TrainState{}, grid);
  const std::string batch_file = tmp / (name + ".json");
  testing::write_file(batch_file, batch_json(batch));
  return run_command(peer_command("--checkpoint " + ckpt + " --batch " + batch_file));
}

Batch parity_batch(const ModelConfig& mc) {
  // Padding (lengths T, T-1, T-2, T), an unused slot per sample, one unlabelled sentence.
  return test::bert_batch(mc, kB, kP, 99, 1, 5);
}

void expect_parity(const ModelConfig& mc) {
  if (const std::string why = python_missing(); !why.empty()) GTEST_SKIP() << why;
  const Batch batch = parity_batch(mc);
  const Trained t = train_model(mc, batch);
  TempDir tmp;
  const testing::RunResult peer = run_peer(tmp, t, batch, "ckpt");
  ASSERT_EQ(peer.exit_code, 0) << peer.output;
  const PeerLoss theirs = peer_loss(peer.output);
  ASSERT_TRUE(std::isfinite(theirs.loss)) << peer.output;
  EXPECT_EQ(theirs.predictions, t.predictions);
  EXPECT_EQ(theirs.sentences, t.sentences);
  EXPECT_NEAR(t.loss, theirs.loss, 1e-5 * std::fabs(theirs.loss)) << peer.output;
  std::printf("[ parity ] polyhead %.8f, HF %.8f over %lld predictions and %lld sentences\n",
              t.loss, theirs.loss, theirs.predictions, theirs.sentences);
}

TEST(HfBertParity, NoSentenceHeadGeluErf) {
  expect_parity(parity_model(SentenceHead::kNone, Activation::kGeluErf, 1e-12f));
}

TEST(HfBertParity, NspGeluErfEps12) {
  expect_parity(parity_model(SentenceHead::kNsp, Activation::kGeluErf, 1e-12f));
}

TEST(HfBertParity, SopGeluErfEps5) {
  expect_parity(parity_model(SentenceHead::kSop, Activation::kGeluErf, 1e-5f));
}

TEST(HfBertParity, NspGeluTanhEps5) {
  expect_parity(parity_model(SentenceHead::kNsp, Activation::kGelu, 1e-5f));
}

TEST(HfBertParity, NoSentenceHeadGeluTanhEps12) {
  expect_parity(parity_model(SentenceHead::kNone, Activation::kGelu, 1e-12f));
}

// The comparison sees one changed weight: the token-type table's, then the MLM bias'.
TEST(HfBertParity, APerturbedWeightIsSeen) {
  if (const std::string why = python_missing(); !why.empty()) GTEST_SKIP() << why;
  const ModelConfig mc = parity_model(SentenceHead::kNsp, Activation::kGeluErf, 1e-12f);
  const Batch batch = parity_batch(mc);
  const Trained t = train_model(mc, batch);
  TempDir tmp;
  for (const char* name : {"wtt", "mlm.bias"}) {
    const int i = t.model->table().find(name);
    ASSERT_GE(i, 0) << name;
    float* w = t.model->params() + t.model->table()[i].offset;
    const float saved = w[1];
    w[1] += 0.02f;
    const testing::RunResult peer = run_peer(tmp, t, batch, std::string("perturbed_") + name);
    w[1] = saved;
    ASSERT_EQ(peer.exit_code, 0) << peer.output;
    const PeerLoss theirs = peer_loss(peer.output);
    ASSERT_TRUE(std::isfinite(theirs.loss)) << peer.output;
    EXPECT_GT(std::fabs(t.loss - theirs.loss), 10 * 1e-5 * std::fabs(theirs.loss))
        << name << ": polyhead " << t.loss << ", HF with the perturbed weight " << theirs.loss;
  }
}

// HF has no pre-norm BERT: the peer refuses one instead of comparing another model.
TEST(HfBertParity, PreNormIsRefused) {
  if (const std::string why = python_missing(); !why.empty()) GTEST_SKIP() << why;
  ModelConfig mc = parity_model(SentenceHead::kNone, Activation::kGeluErf, 1e-12f);
  mc.norm = Norm::kPre;
  const Batch batch = parity_batch(mc);
  const Trained t = train_model(mc, batch);
  TempDir tmp;
  const testing::RunResult peer = run_peer(tmp, t, batch, "pre");
  EXPECT_NE(peer.exit_code, 0) << peer.output;
  EXPECT_NE(peer.output.find("model.norm pre"), std::string::npos) << peer.output;
}

}  // namespace
}  // namespace ph

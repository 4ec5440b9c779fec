// The encoder-decoder against its PyTorch peer (bench/torch_encdec.py, nn.Transformer layers):
// a model trained a few steps here and saved as a polyhead HDF5 checkpoint gives, on the same
// padded batch (padding in source and target), the same loss in both programs to 1e-5
// relative — post-LN with sinusoidal positions and all embeddings shared (the paper), pre-LN
// with learned positions and nothing shared, and the target embedding tied to the output layer.
// The peer runs under /usr/bin/python3 (Debian's, with python3-torch; POLYHEAD_PYTHON
// overrides it). Skipped when it lacks torch, h5py, numpy or yaml.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "model/encdec.h"
#include "tests/encdec_batch.h"
#include "tests/model_batch.h"
#include "tests/test_backend.h"
#include "tests/test_util.h"
#include "trainer/checkpointing.h"
#include "trainer/optimizer.h"

namespace ph {
namespace {

using testing::run_command;
using testing::TempDir;

const std::string kPython =
    std::getenv("POLYHEAD_PYTHON") ? std::getenv("POLYHEAD_PYTHON") : "/usr/bin/python3";
const std::string kPeer = testing::source_dir() + "/bench/torch_encdec.py";

std::string python_missing() {
  const testing::RunResult r = run_command(kPython + " -c 'import torch, h5py, numpy, yaml'");
  if (r.exit_code == 0) return "";
  return kPython +
         " cannot import torch, h5py, numpy and yaml (Debian: apt-get install "
         "python3-torch python3-h5py python3-numpy python3-yaml):\n" +
         r.output;
}

template <class T>
std::string json_list(const std::vector<T>& v) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < v.size(); ++i) o << (i ? "," : "") << v[i];
  o << "]";
  return o.str();
}

// `loss X over N tokens` of the peer.
double peer_loss(const std::string& out, long long* tokens) {
  static const std::regex re(R"((^|\n)loss ([0-9.eE+-]+) over ([0-9]+) tokens)");
  std::smatch m;
  if (!std::regex_search(out, m, re)) return NAN;
  *tokens = std::atoll(m[3].str().c_str());
  return std::strtod(m[2].str().c_str(), nullptr);
}

void expect_parity(const ModelConfig& mc) {
  if (const std::string why = python_missing(); !why.empty()) GTEST_SKIP() << why;
  const int B = 4;
  Config cfg;
  cfg.model = mc;
  EncDec model(test::cpu(), mc, test::setup(B));
  model.initialize(3);
  // A few steps away from the initialisation: LayerNorms and biases are no longer 1 and 0.
  OptimConfig oc;
  oc.decay_1d = true;
  AdamW opt(test::cpu(), oc, model.table());
  DropoutContext train;
  train.train = true;
  train.seed = 1;
  for (int s = 0; s < 5; ++s) {
    train.step = static_cast<uint32_t>(s);
    model.zero_grads();
    model.forward_backward(test::encdec_batch(mc, B, 40 + static_cast<unsigned>(s), B * s), 0.05f,
                           train, nullptr);
    opt.step(model.params(), model.grads(), 1e-2f, s + 1, 1.0f);
  }
  const Batch batch = test::encdec_batch(mc, B, 99, 1, 5);
  int64_t counted = 0;
  const double ours = model.loss(batch, DropoutContext{}, &counted) / static_cast<double>(counted);

  TempDir tmp;
  const ProcessGrid grid = make_grid(1);
  const std::string ckpt =
      save_training_checkpoint(tmp / "ckpt", cfg, Tokenizer(), model, nullptr, TrainState{}, grid);
  const std::string batch_file = tmp / "batch.json";
  testing::write_file(
      batch_file, "{\"S\": " + std::to_string(batch.S) + ", \"T\": " + std::to_string(batch.T) +
                      ", \"source\": " + json_list(batch.source) + ", \"source_lengths\": " +
                      json_list(batch.source_lengths) + ", \"tokens\": " + json_list(batch.tokens) +
                      ", \"targets\": " + json_list(batch.targets) + "}\n");
  const testing::RunResult peer =
      run_command(kPython + " " + kPeer + " --checkpoint " + ckpt + " --batch " + batch_file);
  ASSERT_EQ(peer.exit_code, 0) << peer.output;
  long long tokens = -1;
  const double theirs = peer_loss(peer.output, &tokens);
  ASSERT_TRUE(std::isfinite(theirs)) << peer.output;
  EXPECT_EQ(tokens, counted);
  EXPECT_NEAR(ours, theirs, 1e-5 * std::fabs(theirs)) << peer.output;
  std::printf("[ parity ] polyhead %.8f, torch %.8f over %lld tokens\n", ours, theirs, tokens);
}

ModelConfig parity_model() {
  ModelConfig m;
  m.type = ModelType::kEncDec;
  m.vocab_size = 50;
  m.encoder_layers = 2;
  m.decoder_layers = 3;
  m.d_model = 32;
  m.n_heads = 4;
  m.seq_len = 9;
  m.src_seq_len = 11;
  m.init_std = 0.1f;
  m.dropout_embed = m.dropout_attn = m.dropout_resid = 0.1f;
  return m;
}

TEST(TorchEncDecParity, ThePapersModel) {
  ModelConfig m = parity_model();
  m.norm = Norm::kPost;
  m.pos_encoding = PosEncoding::kSinusoidal;
  m.embed_scale = true;
  m.activation = Activation::kRelu;
  expect_parity(m);
}

TEST(TorchEncDecParity, PreNormLearnedGeluUnshared) {
  ModelConfig m = parity_model();
  m.share_embeddings = ShareEmbeddings::kNone;
  m.d_ff = 48;
  expect_parity(m);
}

TEST(TorchEncDecParity, PostNormLearnedTgtOut) {
  ModelConfig m = parity_model();
  m.norm = Norm::kPost;
  m.share_embeddings = ShareEmbeddings::kTgtOut;
  expect_parity(m);
}

}  // namespace
}  // namespace ph

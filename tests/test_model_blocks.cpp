// The shared building blocks and the machinery of a model: gradient readiness (a tied weight is
// ready only after both users), the activation plan (shared scratch sized by its largest
// request), and an encoder-decoder composed from the blocks (tests/seq2seq_blocks.h):
// gradients of every parameter against central finite differences — cross-attention with
// Tq != Tk and padded memory keys, a bidirectional encoder with per-sample lengths — and the
// padded source positions pass exactly no gradient.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "model/activation_plan.h"
#include "model/grad_readiness.h"
#include "tests/model_batch.h"
#include "tests/seq2seq_blocks.h"
#include "tests/test_backend.h"

namespace ph {
namespace {

TEST(GradReadiness, TiedParameterIsReadyAfterItsLastUserAndRangesMerge) {
  ParamTable t;
  const int wte = t.add("wte", {4, 2}, Split::Replicated, InitKind::Zeros, 0.0f, true);
  const int a = t.add("a", {3}, Split::Replicated, InitKind::Zeros, 0.0f, false);
  const int b = t.add("b", {5}, Split::Replicated, InitKind::Zeros, 0.0f, false);
  const int c = t.add("c", {1}, Split::Replicated, InitKind::Zeros, 0.0f, false);
  t.place(0, 1);
  GradReadiness r;
  for (int p : {wte, a, b, c}) r.use(p);
  r.use(wte);  // a tied head
  std::vector<std::pair<size_t, size_t>> fired;
  r.set_hook([&](size_t off, size_t n) { fired.emplace_back(off, n); });
  for (int pass = 0; pass < 2; ++pass) {  // begin() resets every count
    fired.clear();
    r.begin();
    r.release({c, wte}, t);  // the head: c is ready, wte waits for its other user
    ASSERT_EQ(fired.size(), 1u);
    EXPECT_EQ(fired[0], std::make_pair(size_t{16}, size_t{1}));
    r.release({b, a}, t);  // adjacent: one range [8, 16)
    ASSERT_EQ(fired.size(), 2u);
    EXPECT_EQ(fired[1], std::make_pair(size_t{8}, size_t{8}));
    r.release({wte}, t);
    ASSERT_EQ(fired.size(), 3u);
    EXPECT_EQ(fired[2], std::make_pair(size_t{0}, size_t{8}));
  }
  EXPECT_THROW(r.release({a}, t), std::logic_error);  // released more often than used
}

TEST(ActivationPlan, OwnedBuffersAreDistinctAndSharedOnesTakeTheLargestRequest) {
  ActivationPlan plan;
  float *x = nullptr, *y = nullptr, *s1 = nullptr, *s2 = nullptr, *none = nullptr;
  plan.own(&x, 10);
  plan.shared(&s1, "scratch", 100);
  plan.own(&y, 7);
  plan.shared(&s2, "scratch", 300);
  plan.own(&none, 0);
  DeviceBuffer<float> arena = plan.allocate(test::cpu());
  EXPECT_EQ(s1, s2);
  EXPECT_EQ(none, nullptr);
  // Disjoint, inside the arena, each large enough: x [10], scratch [300], y [7].
  std::vector<std::pair<float*, size_t>> parts = {{x, 10}, {s1, 300}, {y, 7}};
  for (auto& [p, n] : parts) {
    EXPECT_GE(p, arena.data());
    EXPECT_LE(p + n, arena.data() + arena.size());
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 256, 0u);
    for (auto& [q, m] : parts) {
      if (p != q) {
        EXPECT_TRUE(p + n <= q || q + m <= p);
      }
    }
  }
  EXPECT_THROW(plan.own(&x, 1), std::logic_error);
}

ModelConfig seq2seq_model() {
  ModelConfig m;
  m.vocab_size = 13;
  m.n_layers = 2;
  m.d_model = 8;
  m.n_heads = 2;
  m.seq_len = 4;  // the source is 6 long (tests/seq2seq_blocks.h)
  m.init_std = 0.3f;
  return m;
}

Batch seq2seq_batch(int B, const ModelConfig& m, unsigned seed) {
  std::mt19937 rng(seed);
  Batch b;
  b.B = B;
  b.T = m.seq_len;
  b.sample0 = 1;  // samples 1, 2, 3: source lengths 5, 4, 6
  for (int i = 0; i < B * m.seq_len; ++i) {
    // Token V - 1 pads the source; the batch never uses it.
    b.tokens.push_back(static_cast<int32_t>(rng() % static_cast<unsigned>(m.vocab_size - 1)));
    b.targets.push_back(static_cast<int32_t>(rng() % static_cast<unsigned>(m.vocab_size)));
  }
  b.targets[2] = kIgnoreIndex;
  return b;
}

void check_seq2seq_gradients(const ModelConfig& mc, const DropoutContext& d) {
  const int B = 3;
  test::Seq2SeqBlocks model(test::cpu(), mc, test::setup(B));
  model.initialize(21);
  const Batch batch = seq2seq_batch(B, mc, 4);
  int64_t counted = 0;
  for (int32_t t : batch.targets) counted += t != kIgnoreIndex;
  model.zero_grads();
  model.forward_backward(batch, 1.0f / static_cast<float>(counted), d, nullptr);
  const std::vector<float> grad(model.grads(), model.grads() + model.arena_size());
  auto mean_loss = [&] {
    int64_t n = 0;
    return model.loss(batch, d, &n) / static_cast<double>(n);
  };
  const float eps = 1e-2f;
  int checked = 0, nonzero = 0;
  for (const Param& p : model.table().params()) {
    const size_t real =
        p.padded_rows > p.shape[0] ? static_cast<size_t>(p.shape[0] * p.shape[1]) : p.numel;
    for (int k = 0; k < 5; ++k) {
      const size_t i = p.offset + (static_cast<size_t>(k) * 7919u) % real;
      float& w = model.params()[i];
      const float saved = w;
      w = saved + eps;
      const double lp = mean_loss();
      w = saved - eps;
      const double lm = mean_loss();
      w = saved;
      const double fd = (lp - lm) / (2.0 * eps);
      EXPECT_NEAR(grad[i], fd, 5e-4 + 3e-2 * std::fabs(fd))
          << p.name << " element " << i - p.offset;
      ++checked;
      nonzero += std::fabs(fd) > 1e-4;
    }
  }
  EXPECT_GT(nonzero, checked / 2);  // not vacuous
  // Cross-attention and the encoder carry gradient; the padding token (only at padded source
  // positions, keys no query may see) gets exactly none.
  const ParamTable& t = model.table();
  const Param& enc_wte = t[t.find("enc.wte")];
  double enc = 0.0;
  for (size_t i = 0; i < static_cast<size_t>((mc.vocab_size - 1) * mc.d_model); ++i)
    enc += std::fabs(grad[enc_wte.offset + i]);
  EXPECT_GT(enc, 1e-4);
  for (int j = 0; j < mc.d_model; ++j)
    EXPECT_EQ(grad[enc_wte.offset + static_cast<size_t>((mc.vocab_size - 1) * mc.d_model + j)],
              0.0f);
  const Param& kw = t[t.find("dec.h.1.cross.k.weight")];
  double cross = 0.0;
  for (size_t i = 0; i < kw.numel; ++i) cross += std::fabs(grad[kw.offset + i]);
  EXPECT_GT(cross, 1e-5);
}

TEST(Seq2SeqBlocks, GradientsMatchFiniteDifferences) {
  check_seq2seq_gradients(seq2seq_model(), DropoutContext{});
}

TEST(Seq2SeqBlocks, PostNormWithDropoutEverywhere) {
  ModelConfig m = seq2seq_model();
  m.norm = Norm::kPost;
  m.pos_encoding = PosEncoding::kSinusoidal;
  m.dropout_embed = m.dropout_attn = m.dropout_resid = 0.2f;
  DropoutContext d;
  d.train = true;
  d.seed = 3;
  d.step = 5;
  check_seq2seq_gradients(m, d);
}

TEST(Seq2SeqBlocks, ParameterNamesFollowTheDesign) {
  test::Seq2SeqBlocks model(test::cpu(), seq2seq_model(), test::setup(1));
  const ParamTable& t = model.table();
  for (const char* name :
       {"enc.wte", "enc.wpe", "enc.h.0.ln1.weight", "enc.h.1.attn.q.weight", "enc.h.0.ln2.bias",
        "enc.h.1.mlp.fc.weight", "enc.lnf.weight", "dec.wte", "dec.h.0.attn.v.bias",
        "dec.h.0.ln2.weight", "dec.h.1.cross.q.weight", "dec.h.1.cross.k.weight",
        "dec.h.1.cross.v.bias", "dec.h.0.cross.proj.weight", "dec.h.0.ln3.weight",
        "dec.h.1.mlp.proj.bias", "dec.lnf.bias"})
    EXPECT_GE(t.find(name), 0) << name;
  EXPECT_LT(t.find("lm_head.weight"), 0);  // tied to dec.wte
  EXPECT_LT(t.find("enc.h.0.ln3.weight"), 0);
  // Cross-attention's k and v are adjacent (one fused GEMM over the memory).
  EXPECT_EQ(t[t.find("dec.h.0.cross.v.weight")].offset,
            t[t.find("dec.h.0.cross.k.weight")].offset + 64);
}

}  // namespace
}  // namespace ph

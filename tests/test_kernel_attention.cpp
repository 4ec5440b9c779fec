// CPU attention (kernels/cpu/attention.h) against a straightforward double-precision reference
// and central finite differences of it: self-attention on a fused q|k|v buffer and
// cross-attention on separate q and kv buffers (Tq < Tk and Tq > Tk), causal (aligned at the
// end) and bidirectional, per-sample key lengths (a sample with none) and query lengths (the
// padding rows of a packed pass: zeros, no gradient) and selected query rows (computed alone),
// dropout at global
// coordinates (independent of the padded length of a micro-batch, of the split of heads and of
// samples), and bit-exactness across OpenMP thread counts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "kernels/common/attention_args.h"
#include "kernels/common/dropout_mask.h"
#include "kernels/cpu/attention.h"
#include "tests/attention_case.h"
#include "tests/reference_checks.h"

namespace ph {
namespace {

using testing::added;
using testing::bit_equal;
using testing::fd_grad;
using testing::FVec;
using testing::kFdTol;
using testing::kTol;
using testing::random_floats;
using testing::rel_err;
using testing::to_double;
using testing::Vec;
using testing::with_threads;

struct AttentionCase;
AttentionCase cross(int Tq, int Tk);

struct AttentionCase : test::AttentionShape {
  // Dropout multiplier of probability (b, h, i, j): 0 or 1 / (1 - p).
  double drop_factor(int b, int h, int i, int j) const {
    if (drop.p <= 0.0f) return 1.0;
    return dropout_keep(drop, drop_index(b, h, i, j)) ? static_cast<double>(dropout_scale(drop.p))
                                                      : 0.0;
  }
  double scale() const { return 1.0 / std::sqrt(static_cast<double>(hs())); }

  // Probabilities [B, H, Tq, Tk] before dropout; 0 where a key is not seen, a row of zeros
  // where no key is.
  Vec probs_ref(const Vec& x) const {
    Vec P(att_size(), 0.0);
    for (int b = 0; b < B; ++b) {
      for (int h = 0; h < H; ++h) {
        for (int i = 0; i < Tq; ++i) {
          Vec s(static_cast<size_t>(Tk), 0.0);
          double mx = -std::numeric_limits<double>::infinity();
          for (int j = 0; j < Tk; ++j) {
            if (!visible(b, i, j)) continue;
            for (int d = 0; d < hs(); ++d) s[j] += x[q_index(b, i, h, d)] * x[k_index(b, j, h, d)];
            s[j] *= scale();
            mx = std::max(mx, s[j]);
          }
          double sum = 0.0;
          for (int j = 0; j < Tk; ++j) {
            if (visible(b, i, j)) sum += std::exp(s[j] - mx);
          }
          for (int j = 0; j < Tk; ++j) {
            if (visible(b, i, j)) P[att_index(b, h, i, j)] = std::exp(s[j] - mx) / sum;
          }
        }
      }
    }
    return P;
  }

  Vec forward_ref(const Vec& x) const {
    const Vec P = probs_ref(x);
    Vec out(out_size(), 0.0);
    for (int b = 0; b < B; ++b) {
      for (int h = 0; h < H; ++h) {
        for (int i = 0; i < Tq; ++i) {
          for (int j = 0; j < Tk; ++j) {
            const double p = P[att_index(b, h, i, j)] * drop_factor(b, h, i, j);
            if (p == 0.0) continue;
            for (int d = 0; d < hs(); ++d) out[out_index(b, i, h, d)] += p * x[v_index(b, j, h, d)];
          }
        }
      }
    }
    return out;
  }

  // Reference backward: the gradient of L = sum g * out w.r.t. x (layout of x).
  Vec backward_ref(const Vec& x, const Vec& g) const {
    const Vec P = probs_ref(x);
    Vec dx(x.size(), 0.0);
    for (int b = 0; b < B; ++b) {
      for (int h = 0; h < H; ++h) {
        for (int i = 0; i < Tq; ++i) {
          Vec dp(static_cast<size_t>(Tk), 0.0);
          for (int j = 0; j < Tk; ++j) {
            const double p = P[att_index(b, h, i, j)], f = drop_factor(b, h, i, j);
            double dpd = 0.0;  // gradient w.r.t. the dropped-out probability
            for (int d = 0; d < hs(); ++d) {
              const double gi = g[out_index(b, i, h, d)];
              dpd += gi * x[v_index(b, j, h, d)];
              dx[v_index(b, j, h, d)] += p * f * gi;
            }
            dp[j] = dpd * f;
          }
          double dot = 0.0;
          for (int j = 0; j < Tk; ++j) dot += P[att_index(b, h, i, j)] * dp[j];
          for (int j = 0; j < Tk; ++j) {
            const double ds = P[att_index(b, h, i, j)] * (dp[j] - dot) * scale();
            if (ds == 0.0) continue;
            for (int d = 0; d < hs(); ++d) {
              dx[q_index(b, i, h, d)] += ds * x[k_index(b, j, h, d)];
              dx[k_index(b, j, h, d)] += ds * x[q_index(b, i, h, d)];
            }
          }
        }
      }
    }
    return dx;
  }

  void forward(FVec& out, FVec& att, const FVec& x) const {
    cpu::attention_forward(out.data(), att.data(), x.data(), x.data() + kv_offset(), dims(), drop,
                           coords);
  }
  void backward(FVec& dx, const FVec& dout, const FVec& x, const FVec& att) const {
    FVec datt(att_size());
    cpu::attention_backward(dx.data(), dx.data() + kv_offset(), datt.data(), dout.data(), x.data(),
                            x.data() + kv_offset(), att.data(), dims(), drop, coords);
  }

  std::string name() const {
    return "B " + std::to_string(B) + " Tq " + std::to_string(Tq) + " Tk " + std::to_string(Tk) +
           " C " + std::to_string(C) + " H " + std::to_string(H) + (fused ? " fused" : " cross") +
           (causal ? " causal" : "") + (key_len.empty() ? "" : " key lengths") +
           (q_rows.empty() ? "" : " selected rows") + (drop.p > 0 ? " dropout" : "");
  }
};

// Forward (output and probabilities) and backward (accumulated into dx) against the reference,
// optionally against finite differences of the reference forward; then the masks' exact
// promises: a probability of a key the query does not see is exactly 0, a row that sees no key
// outputs exactly 0, the gradient of a padded key's k and v is exactly nothing (dx keeps its
// bits there), and no pad column of the layout is written.
void check_attention(const AttentionCase& a, bool finite_differences) {
  SCOPED_TRACE(a.name());
  const FVec x = random_floats(a.x_size(), 41, -1.5f, 1.5f);
  const Vec xd = to_double(x);
  FVec out(a.out_size(), 7.0f), att(a.att_size(), 7.0f);
  a.forward(out, att, x);
  EXPECT_LT(rel_err(out, a.forward_ref(xd)), kTol) << "out";
  EXPECT_LT(rel_err(att, a.probs_ref(xd)), kTol) << "probabilities";
  const Vec g = to_double(random_floats(a.out_size(), 42));
  const FVec dout(g.begin(), g.end());
  const FVec d0 = random_floats(a.x_size(), 43);
  FVec dx = d0;
  a.backward(dx, dout, x, att);
  EXPECT_LT(rel_err(added(dx, d0), a.backward_ref(xd, g)), kTol) << "dq, dkv";
  if (finite_differences) {
    EXPECT_LT(
        rel_err(added(dx, d0), fd_grad(xd, g, [&](const Vec& v) { return a.forward_ref(v); })),
        kFdTol)
        << "dq, dkv against finite differences";
  }

  for (int b = 0; b < a.B; ++b) {
    for (int h = 0; h < a.H; ++h) {
      for (int i = 0; i < a.Tq; ++i) {
        bool any = false;
        for (int j = 0; j < a.Tk; ++j) {
          if (a.visible(b, i, j)) {
            any = true;
          } else {
            ASSERT_EQ(att[a.att_index(b, h, i, j)], 0.0f) << "hidden key " << b << h << i << j;
          }
        }
        if (any) continue;
        for (int d = 0; d < a.hs(); ++d) {
          ASSERT_EQ(out[a.out_index(b, i, h, d)], 0.0f) << "row without keys " << b << h << i;
          ASSERT_EQ(dx[a.q_index(b, i, h, d)], d0[a.q_index(b, i, h, d)]) << "its dq";
        }
      }
      for (int j = 0; j < a.Tk; ++j) {
        if (!a.padded_key(b, j)) continue;
        for (int d = 0; d < a.hs(); ++d) {
          const size_t k = a.k_index(b, j, h, d), v = a.v_index(b, j, h, d);
          ASSERT_TRUE(bit_equal(FVec{dx[k], dx[v]}, FVec{d0[k], d0[v]}))
              << "dk, dv of padded key " << j << " of sample " << b;
        }
      }
    }
  }
  const std::vector<bool> used = a.used();
  for (size_t e = 0; e < used.size(); ++e) {
    if (!used[e]) {
      ASSERT_TRUE(bit_equal(FVec{dx[e]}, FVec{d0[e]})) << "pad column " << e;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// self-attention on the fused q|k|v buffer

TEST(Attention, Causal) {
  AttentionCase a;
  check_attention(a, true);
}

TEST(Attention, NotCausal) {
  AttentionCase a;
  a.causal = false;
  check_attention(a, true);
}

TEST(Attention, CausalWithKeyLengths) {
  AttentionCase a;
  a.key_len = {3, 5};  // sample 0: keys 3 and 4 are padding
  check_attention(a, true);
}

TEST(Attention, BidirectionalWithKeyLengthsAndAnEmptySample) {
  AttentionCase a;
  a.B = 3;
  a.causal = false;
  a.key_len = {3, 5, 0};  // sample 2 has no key at all: its rows output zeros
  check_attention(a, true);
  a.key_len = {1, 7, 2};  // a length beyond Tk means every key
  check_attention(a, true);
}

// Query lengths: the rows past them see no key, as a packed pass's padding rows (zeros, no
// gradient), alone and with key lengths, causal or not, with dropout, and in rows past the
// first block.
TEST(Attention, QueryLengths) {
  AttentionCase a;
  a.B = 3;
  a.q_len = {3, 5, 0};
  check_attention(a, true);
  a.causal = false;
  a.key_len = {3, 4, 2};
  a.drop = DropoutSpec{0.3f, 21, 4, 6};
  check_attention(a, true);
  AttentionCase c = cross(6, 4);
  c.causal = false;
  c.key_len = {3, 4};
  c.q_len = {2, 6};
  check_attention(c, true);
  AttentionCase l;
  l.B = 2;
  l.Tq = l.Tk = 150;
  l.C = 16;
  l.H = 2;
  l.q_len = l.key_len = {131, 70};
  l.drop = DropoutSpec{0.2f, 8, 0, 1};
  check_attention(l, false);
}

// Selected query rows (AttentionDims::q_rows: BERT's last layer): the other rows see no key
// (zeros, no gradient) and the selected ones are computed alone, with key lengths, dropout,
// causal or not, and over more than one block of 64 selected rows.
TEST(Attention, SelectedQueryRows) {
  AttentionCase a;
  a.B = 3;
  a.causal = false;
  a.key_len = {4, 5, 2};
  a.q_rows = {0, -1, 1, -1, 2, -1, -1, -1, -1, -1, 3, 4, 5, 6, 7};
  check_attention(a, true);
  a.drop = DropoutSpec{0.3f, 21, 4, 6};
  check_attention(a, true);
  a.causal = true;
  check_attention(a, true);
  AttentionCase l;
  l.B = 2;
  l.Tq = l.Tk = 150;
  l.C = 16;
  l.H = 2;
  l.causal = false;
  l.key_len = {131, 150};
  for (int i = 0; i < l.B * l.Tq; ++i) l.q_rows.push_back(i % 3 == 1 ? -1 : i);
  l.drop = DropoutSpec{0.2f, 8, 0, 1};
  check_attention(l, false);
}

TEST(Attention, Dropout) {
  AttentionCase a;
  a.drop = DropoutSpec{0.3f, 77, 5, 9};
  a.coords.sample0 = 3;
  a.coords.head0 = 1;
  a.coords.H_total = 5;
  check_attention(a, true);
  a.causal = false;
  a.key_len = {4, 2};
  check_attention(a, true);
}

TEST(Attention, ZeroDropoutEqualsNoDropout) {
  AttentionCase a;
  a.key_len = {4, 5};
  const FVec x = random_floats(a.x_size(), 45);
  FVec out0(a.out_size()), att0(a.att_size()), out1(a.out_size()), att1(a.att_size());
  a.forward(out0, att0, x);
  a.drop.seed = 3;
  a.drop.p = 0.0f;  // a configured site with p = 0
  a.forward(out1, att1, x);
  EXPECT_TRUE(bit_equal(out0, out1));
  EXPECT_TRUE(bit_equal(att0, att1));
  // A tiny p drops nothing here and goes through the dropout path: same result.
  a.drop.p = 1e-9f;
  a.forward(out1, att1, x);
  EXPECT_LT(rel_err(out1, to_double(out0)), 1e-6);
  EXPECT_TRUE(bit_equal(att0, att1));
}

TEST(Attention, LongerSequencesCrossTheBlocks) {
  // T beyond the row block (64) and the dropout column tile (128); key lengths that end inside
  // a block and a tile.
  AttentionCase a;
  a.B = 2;
  a.Tq = a.Tk = 150;
  a.C = 16;
  a.H = 2;
  check_attention(a, false);
  a.drop = DropoutSpec{0.2f, 8, 0, 1};
  a.key_len = {131, 70};
  check_attention(a, false);
  a.causal = false;
  check_attention(a, false);
}

// ---------------------------------------------------------------------------------------------
// cross-attention: separate q and kv buffers with pad columns, Tq != Tk

AttentionCase cross(int Tq, int Tk) {
  AttentionCase a;
  a.fused = false;
  a.Tq = Tq;
  a.Tk = Tk;
  a.q_pad = 2;
  a.kv_pad = 3;
  return a;
}

TEST(Attention, CrossFewerQueriesThanKeys) {
  AttentionCase a = cross(3, 6);
  a.causal = false;
  check_attention(a, true);
  a.key_len = {6, 4};
  check_attention(a, true);
  a.causal = true;  // query i sees keys j <= i + 3
  check_attention(a, true);
  a.drop = DropoutSpec{0.25f, 11, 2, 7};
  a.coords.Tq_max = 4;
  a.coords.Tk_max = 9;
  check_attention(a, true);
}

TEST(Attention, CrossMoreQueriesThanKeysWithAnEmptySample) {
  AttentionCase a = cross(6, 4);
  a.causal = false;
  a.key_len = {3, 0};  // sample 1 has no key
  check_attention(a, true);
  a.causal = true;  // query i sees keys j <= i - 2: queries 0 and 1 see nothing
  a.key_len = {4, 2};
  check_attention(a, true);
  a.drop = DropoutSpec{0.4f, 12, 3, 8};
  a.coords.sample0 = 5;
  check_attention(a, true);
}

TEST(Attention, CrossMoreSamplesThanHeadsAndLongKeys) {
  AttentionCase a = cross(70, 140);
  a.B = 3;
  a.C = 8;
  a.H = 2;
  a.causal = false;
  a.key_len = {140, 65, 129};
  a.drop = DropoutSpec{0.1f, 13, 4, 2};
  check_attention(a, false);
}

TEST(Attention, NoKeysAtAllOutputsZeros) {
  AttentionCase a = cross(3, 0);
  a.causal = false;
  const FVec x = random_floats(a.x_size(), 50);
  FVec out(a.out_size(), 7.0f), att;
  a.forward(out, att, x);
  for (const float v : out) ASSERT_EQ(v, 0.0f);
  FVec dx = x;
  a.backward(dx, FVec(a.out_size(), 1.0f), x, att);
  EXPECT_TRUE(bit_equal(dx, x));
}

TEST(Attention, VisibleKeysFollowTheirDefinition) {
  // attention_visible_keys (shared by both backends) against the masks written out in the test.
  for (const bool causal : {false, true}) {
    for (const auto& [Tq, Tk] : {std::pair{5, 5}, std::pair{3, 7}, std::pair{7, 3}}) {
      AttentionCase a = cross(Tq, Tk);
      a.B = 4;
      a.causal = causal;
      a.key_len = {Tk, 0, 2, Tk + 5};
      const AttentionDims d = a.dims();
      for (int b = 0; b < a.B; ++b) {
        for (int i = 0; i < Tq; ++i) {
          int n = 0;
          while (n < Tk && a.visible(b, i, n)) ++n;
          for (int j = n; j < Tk; ++j) ASSERT_FALSE(a.visible(b, i, j)) << "a prefix";
          EXPECT_EQ(attention_visible_keys(d, b, i), n) << causal << Tq << Tk << b << i;
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// dropout at global coordinates

// With one-hot values (v of key j = e_j in every head) the output row of query i is its row of
// dropped-out probabilities exactly, and with one-hot output gradients (dout of query i = e_i)
// dv of key j is its column: both the forward and the backward mask can be read off. hs must
// be at least the longest Tq and Tk.
struct ExposedMasks {
  FVec out, dx;
};
ExposedMasks expose_masks(const AttentionCase& a) {
  FVec x = random_floats(a.x_size(), 51, -0.5f, 0.5f);
  FVec dout(a.out_size(), 0.0f);
  for (int b = 0; b < a.B; ++b) {
    for (int h = 0; h < a.H; ++h) {
      for (int j = 0; j < a.Tk; ++j) {
        for (int d = 0; d < a.hs(); ++d) x[a.v_index(b, j, h, d)] = d == j ? 1.0f : 0.0f;
      }
      for (int i = 0; i < a.Tq; ++i) dout[a.out_index(b, i, h, i)] = 1.0f;
    }
  }
  ExposedMasks m{FVec(a.out_size()), FVec(a.x_size(), 0.0f)};
  FVec att(a.att_size());
  a.forward(m.out, att, x);
  a.backward(m.dx, dout, x, att);
  return m;
}

// Calls that cover the first Tq queries and Tk keys of each sample (a micro-batch padded to
// less than the configured maximum lengths) draw the bits the full-length call draws.
void check_mask_independent_of_length(const AttentionCase& full, int Tq, int Tk) {
  AttentionCase part = full;
  part.Tq = Tq;
  part.Tk = Tk;
  part.coords.Tq_max = full.Tq;
  part.coords.Tk_max = full.Tk;
  SCOPED_TRACE(full.name() + ", shorter call Tq " + std::to_string(Tq) + " Tk " +
               std::to_string(Tk));
  const ExposedMasks f = expose_masks(full), p = expose_masks(part);
  int kept = 0, dropped = 0;
  for (int b = 0; b < full.B; ++b) {
    for (int h = 0; h < full.H; ++h) {
      for (int i = 0; i < Tq; ++i) {
        for (int j = 0; j < Tk; ++j) {
          if (!part.visible(b, i, j)) continue;
          ASSERT_TRUE(full.visible(b, i, j)) << "the shorter call sees a subset of the keys";
          const bool want = dropout_keep(full.drop, full.drop_index(b, h, i, j));
          const bool fwd = p.out[part.out_index(b, i, h, j)] != 0.0f;
          const bool bwd = p.dx[part.v_index(b, j, h, i)] != 0.0f;
          ASSERT_EQ(fwd, want) << "forward mask of the shorter call at " << b << h << i << j;
          ASSERT_EQ(bwd, want) << "backward mask of the shorter call at " << b << h << i << j;
          ASSERT_EQ(f.out[full.out_index(b, i, h, j)] != 0.0f, want) << "full call";
          (want ? kept : dropped)++;
        }
      }
    }
  }
  EXPECT_GT(kept, 10);
  EXPECT_GT(dropped, 10);
}

TEST(Attention, DropoutMaskDoesNotDependOnTheMicroBatchLength) {
  AttentionCase self;  // causal self-attention, T_max = 7, micro-batches of 4 and 6
  self.B = 3;
  self.Tq = self.Tk = 7;
  self.C = 16;
  self.H = 2;
  self.drop = DropoutSpec{0.5f, 31, 4, 5};
  self.coords.sample0 = 2;
  check_mask_independent_of_length(self, 4, 4);
  check_mask_independent_of_length(self, 6, 6);
  self.causal = false;
  self.key_len = {7, 3, 5};
  check_mask_independent_of_length(self, 4, 4);

  AttentionCase x = cross(5, 7);  // cross-attention, both lengths shorter
  x.B = 3;
  x.C = 16;
  x.H = 2;
  x.causal = false;
  x.drop = self.drop;
  check_mask_independent_of_length(x, 3, 4);
  check_mask_independent_of_length(x, 5, 2);
}

TEST(Attention, DropoutMaskFollowsGlobalCoordinates) {
  // The full layer in one call equals two tensor-parallel halves (heads) and two data-parallel
  // halves (samples), bit for bit.
  AttentionCase full;
  full.B = 2;
  full.H = 4;
  full.C = 16;
  full.Tq = full.Tk = 7;
  full.key_len = {7, 5};
  full.drop = DropoutSpec{0.4f, 21, 2, 6};
  const FVec qkv = random_floats(full.x_size(), 46);
  const FVec dout = random_floats(full.out_size(), 47);
  FVec out(full.out_size()), att(full.att_size()), dqkv(full.x_size(), 0.0f);
  full.forward(out, att, qkv);
  full.backward(dqkv, dout, qkv, att);

  const int T = full.Tq, C = full.C, Ch = C / 2;
  for (int part = 0; part < 2; ++part) {
    AttentionCase half = full;
    half.H = 2;
    half.C = Ch;
    half.coords.head0 = 2 * part;
    half.coords.H_total = 4;
    FVec q2(half.x_size()), o2(half.out_size()), a2(half.att_size()), d2(half.out_size()),
        dq2(half.x_size(), 0.0f);
    for (int bt = 0; bt < full.B * T; ++bt) {
      for (int s = 0; s < 3; ++s) {
        for (int c = 0; c < Ch; ++c)
          q2[bt * 3 * Ch + s * Ch + c] = qkv[bt * 3 * C + s * C + part * Ch + c];
      }
      for (int c = 0; c < Ch; ++c) d2[bt * Ch + c] = dout[bt * C + part * Ch + c];
    }
    half.forward(o2, a2, q2);
    half.backward(dq2, d2, q2, a2);
    for (int bt = 0; bt < full.B * T; ++bt) {
      for (int c = 0; c < Ch; ++c) ASSERT_EQ(o2[bt * Ch + c], out[bt * C + part * Ch + c]);
      for (int s = 0; s < 3; ++s) {
        for (int c = 0; c < Ch; ++c)
          ASSERT_EQ(dq2[bt * 3 * Ch + s * Ch + c], dqkv[bt * 3 * C + s * C + part * Ch + c]);
      }
    }
  }
  for (int b = 0; b < 2; ++b) {
    AttentionCase one = full;
    one.B = 1;
    one.key_len = {full.key_len[b]};
    one.coords.sample0 = b;
    const size_t qoff = static_cast<size_t>(b) * T * 3 * C, ooff = static_cast<size_t>(b) * T * C;
    const FVec q1(qkv.begin() + static_cast<long>(qoff),
                  qkv.begin() + static_cast<long>(qoff + one.x_size()));
    const FVec d1(dout.begin() + static_cast<long>(ooff),
                  dout.begin() + static_cast<long>(ooff + one.out_size()));
    FVec o1(one.out_size()), a1(one.att_size()), dq1(one.x_size(), 0.0f);
    one.forward(o1, a1, q1);
    one.backward(dq1, d1, q1, a1);
    EXPECT_TRUE(std::equal(o1.begin(), o1.end(), out.begin() + static_cast<long>(ooff)));
    EXPECT_TRUE(std::equal(dq1.begin(), dq1.end(), dqkv.begin() + static_cast<long>(qoff)));
  }
}

TEST(Attention, BackwardIsBitExactAcrossThreadCounts) {
  AttentionCase a = cross(70, 90);
  a.C = 32;
  a.H = 4;
  a.key_len = {90, 77};
  a.drop = DropoutSpec{0.1f, 4, 0, 1};
  const FVec x = random_floats(a.x_size(), 48), dout = random_floats(a.out_size(), 49);
  FVec out1(a.out_size()), att1(a.att_size()), dx1(a.x_size(), 0.25f);
  FVec out2 = out1, att2 = att1, dx2 = dx1;
  with_threads(1, [&] {
    a.forward(out1, att1, x);
    a.backward(dx1, dout, x, att1);
  });
  with_threads(2, [&] {
    a.forward(out2, att2, x);
    a.backward(dx2, dout, x, att2);
  });
  EXPECT_TRUE(bit_equal(out1, out2));
  EXPECT_TRUE(bit_equal(att1, att2));
  EXPECT_TRUE(bit_equal(dx1, dx2));
}

}  // namespace
}  // namespace ph

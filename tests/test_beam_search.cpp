// Beam search (trainer/beam_search.h) over a toy decoder whose log-probabilities are a hashed
// function of (source, prefix): greedy by hand, exhaustive search by brute force, the length
// penalty, the maximum length, n-best lists, batching, the parents passed to step(), the early
// stop, and the messages for bad options.
#include "trainer/beam_search.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

#include "parallel/errors.h"
#include "toy_decoder.h"

namespace ph {
namespace {

using testing::hashed_logprobs;
using testing::LogProbFn;
using testing::Tokens;
using testing::ToyDecoder;

constexpr int kV = 6, kS = 5;  // pad 0, bos 1, eos 2; the output tokens are 3, 4, 5
constexpr int32_t kPad = 0, kBos = 1, kEos = 2;

BeamOptions options(int beam, double A, double a, int b, int n_best) {
  BeamOptions o;
  o.beam = beam;
  o.length_penalty = A;
  o.max_len_a = a;
  o.max_len_b = b;
  o.n_best = n_best;
  o.bos = kBos;
  o.eos = kEos;
  o.pad = kPad;
  return o;
}

std::vector<Tokens> random_sources(int n, uint64_t seed) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::vector<Tokens> out;
  for (int j = 0; j < n; ++j) {
    Tokens s(static_cast<size_t>(1 + rng() % kS));
    for (int32_t& t : s) t = static_cast<int32_t>(3 + rng() % 3);
    out.push_back(s);
  }
  return out;
}

std::vector<std::vector<Hypothesis>> search(ToyDecoder& dec, const std::vector<Tokens>& sources,
                                            const BeamOptions& opt) {
  std::vector<int32_t> flat(sources.size() * kS, kPad), lengths;
  for (size_t j = 0; j < sources.size(); ++j) {
    std::copy(sources[j].begin(), sources[j].end(), flat.begin() + static_cast<long>(j * kS));
    lengths.push_back(static_cast<int32_t>(sources[j].size()));
  }
  return beam_search(dec, flat.data(), lengths.data(), static_cast<int>(sources.size()), kS, opt);
}

// The raw score of `tokens` followed by eos, computed from the toy's function directly.
double raw_score(const LogProbFn& fn, const Tokens& src, const Tokens& tokens) {
  std::vector<float> lp(kV);
  Tokens prefix{kBos};
  double sum = 0.0;
  for (size_t k = 0; k <= tokens.size(); ++k) {
    fn(src, prefix, lp.data());
    const int32_t next = k < tokens.size() ? tokens[k] : kEos;
    sum += lp[static_cast<size_t>(next)];
    prefix.push_back(next);
  }
  return sum;
}

double normalized(double raw, size_t n_tokens, double A) {
  return raw / std::pow(static_cast<double>(n_tokens + 1), A);
}

// The argmax at each step (ties to the lower id; bos and pad never), eos forced after L tokens.
Tokens greedy(const LogProbFn& fn, const Tokens& src, int L) {
  std::vector<float> lp(kV);
  Tokens prefix{kBos}, out;
  while (static_cast<int>(out.size()) < L) {
    fn(src, prefix, lp.data());
    int32_t best = kEos;
    for (int32_t v = kEos + 1; v < kV; ++v)
      if (lp[static_cast<size_t>(v)] > lp[static_cast<size_t>(best)] ||
          (lp[static_cast<size_t>(v)] == lp[static_cast<size_t>(best)] && v < best))
        best = v;
    if (best == kEos) break;
    out.push_back(best);
    prefix.push_back(best);
  }
  return out;
}

// Every sequence of output tokens of at most L tokens, ranked as the search ranks finished
// hypotheses (score, then shorter first); the first K.
std::vector<Hypothesis> exhaustive(const LogProbFn& fn, const Tokens& src, int L, double A, int K) {
  std::vector<Hypothesis> all;
  std::vector<Tokens> level{Tokens{}};
  for (int len = 0; len <= L; ++len) {
    std::vector<Tokens> longer;
    for (const Tokens& t : level) {
      Hypothesis h;
      h.tokens = t;
      h.logprob = raw_score(fn, src, t);
      h.score = normalized(h.logprob, t.size(), A);
      all.push_back(h);
      for (int32_t v = kEos + 1; v < kV; ++v) {
        longer.push_back(t);
        longer.back().push_back(v);
      }
    }
    level = std::move(longer);
  }
  std::stable_sort(all.begin(), all.end(),
                   [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
  all.resize(static_cast<size_t>(K));
  return all;
}

// Scores agree with the toy's function, and the final prefix of every hypothesis was fed to one
// slot: the parents the search passed rebuild the hypothesis.
void expect_consistent(const ToyDecoder& dec, const LogProbFn& fn, const Tokens& src,
                       const Hypothesis& h, double A) {
  Tokens fed{kBos};
  fed.insert(fed.end(), h.tokens.begin(), h.tokens.end());
  EXPECT_TRUE(dec.fed.count({src, fed})) << "the prefix of a hypothesis was never fed";
  EXPECT_NEAR(h.logprob, raw_score(fn, src, h.tokens), 1e-9);
  EXPECT_NEAR(h.score, normalized(h.logprob, h.tokens.size(), A), 1e-12);
}

TEST(BeamSearch, BeamOneIsGreedy) {
  const LogProbFn fn = hashed_logprobs(kV, kEos, 7, 2.0f, 0.0f);
  const std::vector<Tokens> sources = random_sources(40, 1);
  int differs_from_beam4 = 0;
  for (double A : {0.0, 1.0}) {
    ToyDecoder dec(kV, 12, 8, 4, fn);
    const auto got = search(dec, sources, options(1, A, 1.0, 3, 1));
    ToyDecoder dec4(kV, 12, 8, 4, fn);
    const auto wide = search(dec4, sources, options(4, A, 1.0, 3, 1));
    for (size_t j = 0; j < sources.size(); ++j) {
      const int L = static_cast<int>(sources[j].size()) + 3;
      ASSERT_EQ(got[j].size(), 1u);
      EXPECT_EQ(got[j][0].tokens, greedy(fn, sources[j], L)) << "source " << j;
      expect_consistent(dec, fn, sources[j], got[j][0], A);
      differs_from_beam4 += got[j][0].tokens != wide[j][0].tokens;
    }
  }
  EXPECT_GT(differs_from_beam4, 0) << "the toy does not tell greedy from beam search";
}

TEST(BeamSearch, WideBeamEqualsExhaustiveSearch) {
  const int L = 4, K = 5;  // 121 sequences of at most 4 tokens out of 3: a beam of 128 keeps all
  for (uint64_t seed : {3u, 4u, 5u}) {
    const LogProbFn fn = hashed_logprobs(kV, kEos, seed, 2.5f, -0.5f);
    const std::vector<Tokens> sources = random_sources(3, seed);
    for (double A : {0.0, 0.6, 1.0, 2.0, -0.5}) {
      ToyDecoder dec(kV, 16, 3, 128, fn);
      const auto got = search(dec, sources, options(128, A, 0.0, L, K));
      for (size_t j = 0; j < sources.size(); ++j) {
        const auto want = exhaustive(fn, sources[j], L, A, K);
        ASSERT_EQ(got[j].size(), want.size());
        for (int k = 0; k < K; ++k) {
          EXPECT_EQ(got[j][k].tokens, want[k].tokens) << "seed " << seed << " A " << A;
          EXPECT_NEAR(got[j][k].score, want[k].score, 1e-9);
          expect_consistent(dec, fn, sources[j], got[j][k], A);
        }
      }
    }
  }
}

// After bos: eos 0.5, token 3 0.45; after bos 3: eos 0.9. Raw: "" -0.69 beats "3" -0.80; per
// token (A = 1): "3" -0.40 beats "" -0.69.
TEST(BeamSearch, LengthPenaltyChangesTheWinner) {
  const LogProbFn fn = [](const Tokens&, const Tokens& prefix, float* out) {
    std::fill(out, out + kV, std::log(0.01f));
    if (prefix.size() == 1) {
      out[kEos] = std::log(0.5f);
      out[3] = std::log(0.45f);
    } else {
      out[kEos] = std::log(0.9f);
    }
  };
  const std::vector<Tokens> src{{3}};
  ToyDecoder raw_dec(kV, 8, 1, 2, fn), norm_dec(kV, 8, 1, 2, fn);
  const auto raw = search(raw_dec, src, options(2, 0.0, 0.0, 5, 2));
  const auto norm = search(norm_dec, src, options(2, 1.0, 0.0, 5, 2));
  ASSERT_EQ(raw[0].size(), 2u);
  ASSERT_EQ(norm[0].size(), 2u);
  EXPECT_EQ(raw[0][0].tokens, Tokens{});
  EXPECT_EQ(raw[0][1].tokens, Tokens{3});
  EXPECT_NEAR(raw[0][0].score, std::log(0.5), 1e-6);
  EXPECT_EQ(norm[0][0].tokens, Tokens{3});
  EXPECT_NEAR(norm[0][0].score, (std::log(0.45) + std::log(0.9)) / 2, 1e-6);
  EXPECT_EQ(norm[0][1].tokens, Tokens{});
}

// After bos: eos 0.9, token 3 0.05; then 3 at 0.999 until 9 tokens, then eos at 0.999. Under
// length^2 the 9 tokens win; a live "3" (-3.0) can only tell so from the maximum length, since
// -3.0 / 2^2 is below "" (-0.105) while -3.0 / 31^2 is not.
TEST(BeamSearch, TheStopTestBoundsByTheMaximumLength) {
  const LogProbFn fn = [](const Tokens&, const Tokens& prefix, float* out) {
    std::fill(out, out + kV, std::log(1e-5f));
    if (prefix.size() == 1) {
      out[kEos] = std::log(0.9f);
      out[3] = std::log(0.05f);
      out[4] = std::log(0.01f);
    } else {
      out[prefix.size() < 10 ? 3 : kEos] = std::log(0.999f);
      out[kEos] = std::max(out[kEos], std::log(1e-4f));
    }
  };
  ToyDecoder dec(kV, 40, 1, 2, fn), raw_dec(kV, 40, 1, 2, fn);
  const auto got = search(dec, {{3}}, options(2, 2.0, 0.0, 30, 1));
  EXPECT_EQ(got[0][0].tokens, Tokens(9, 3));
  const auto raw = search(raw_dec, {{3}}, options(2, 0.0, 0.0, 30, 1));
  EXPECT_EQ(raw[0][0].tokens, Tokens{});
  EXPECT_EQ(raw_dec.total_steps, 1);
}

// Beam 2. Step 0: eos (rank 0) finishes "", "3" and "4" live. Step 1: eos after "3" (rank 0)
// finishes, "3 3" (rank 1) lives, eos after "4" is rank 2: not among the first 2, so it does not
// finish, although under length^3 it would beat "". Two hypotheses have finished: the search
// ends, although "3 3" would win if it went on.
TEST(BeamSearch, OnlyEosAmongTheFirstBeamCandidatesFinishes) {
  const LogProbFn fn = [](const Tokens&, const Tokens& prefix, float* out) {
    std::fill(out, out + kV, std::log(0.01f));
    if (prefix.size() == 1) {
      out[kEos] = std::log(0.5f);
      out[3] = std::log(0.3f);
      out[4] = std::log(0.1f);
    } else if (prefix == Tokens{kBos, 3}) {
      out[kEos] = std::log(0.5f);
      out[3] = std::log(0.45f);
    } else {
      out[kEos] = std::log(0.9f);
    }
  };
  // Raw scores (A = 0). Step 0: eos (log .5) ranks first and finishes ({}); 3 and 4 live.
  // Step 1: 3,eos (log .3 + log .5) ranks first and finishes, 3,3 (log .3 + log .45) second;
  // 4,eos (log .1 + log .9) ranks third: not among the first two, it does not finish. Then no
  // live hypothesis can beat {3}, the second finished: the search stops after 2 steps.
  ToyDecoder dec(kV, 12, 1, 2, fn);
  const auto got = search(dec, {{3}}, options(2, 0.0, 0.0, 8, 2));
  ASSERT_EQ(got[0].size(), 2u);
  EXPECT_EQ(got[0][0].tokens, Tokens{});
  EXPECT_EQ(got[0][1].tokens, Tokens{3});
  EXPECT_EQ(dec.total_steps, 2);
}

TEST(BeamSearch, MaxLengthIsASourcePlusBCappedByTheDecoder) {
  const LogProbFn fn = hashed_logprobs(kV, kEos, 11, 1.0f, -30.0f);  // eos is never chosen
  const std::vector<Tokens> sources{{3}, {3, 4}, {3, 4, 5, 3}, {5, 5, 5, 5, 5}};
  for (const auto& [a, b] : std::vector<std::pair<double, int>>{{1.5, 1}, {0.0, 0}, {0.5, 2}}) {
    ToyDecoder dec(kV, 7, 4, 3, fn);
    const auto got = search(dec, sources, options(3, 0.5, a, b, 3));
    for (size_t j = 0; j < sources.size(); ++j) {
      const int src = static_cast<int>(sources[j].size());
      const int want = std::min(static_cast<int>(std::floor(a * src + b)), 6);
      EXPECT_EQ(max_output_length(options(3, 0.5, a, b, 3), src, 7), want);
      for (const Hypothesis& h : got[j]) {
        EXPECT_EQ(static_cast<int>(h.tokens.size()), want) << "a " << a << " b " << b;
        expect_consistent(dec, fn, sources[j], h, 0.5);
      }
    }
  }
}

TEST(BeamSearch, NBestIsSortedAndDistinct) {
  const LogProbFn fn = hashed_logprobs(kV, kEos, 13, 2.0f, -0.3f);
  const std::vector<Tokens> sources = random_sources(6, 13);
  ToyDecoder dec(kV, 12, 6, 8, fn);
  const auto got = search(dec, sources, options(8, 0.7, 1.0, 4, 8));
  for (size_t j = 0; j < sources.size(); ++j) {
    ASSERT_EQ(got[j].size(), 8u);
    for (size_t k = 0; k < got[j].size(); ++k) {
      expect_consistent(dec, fn, sources[j], got[j][k], 0.7);
      if (k > 0) {
        EXPECT_GE(got[j][k - 1].score, got[j][k].score);
      }
      for (size_t m = 0; m < k; ++m) EXPECT_NE(got[j][m].tokens, got[j][k].tokens);
    }
  }
}

TEST(BeamSearch, BatchesEqualOneSourceAtATime) {
  const LogProbFn fn = hashed_logprobs(kV, kEos, 17, 2.0f, -0.2f);
  const std::vector<Tokens> sources = random_sources(7, 17);
  const BeamOptions opt = options(3, 0.6, 1.2, 2, 2);
  ToyDecoder batched(kV, 12, 3, 3, fn);
  const auto all = search(batched, sources, opt);
  EXPECT_EQ(batched.starts, 3);  // groups of max_sources() = 3
  ASSERT_EQ(all.size(), sources.size());
  for (size_t j = 0; j < sources.size(); ++j) {
    ToyDecoder single(kV, 12, 1, 3, fn);
    const auto one = search(single, {sources[j]}, opt);
    ASSERT_EQ(one[0].size(), all[j].size());
    for (size_t k = 0; k < one[0].size(); ++k) {
      EXPECT_EQ(one[0][k].tokens, all[j][k].tokens) << "source " << j;
      EXPECT_EQ(one[0][k].score, all[j][k].score);
    }
  }
}

// Sources that finish at different steps (lengths 1..5, at most a * length + b output tokens)
// leave the batch when their search is over: each source is stepped exactly as often as when it
// is searched alone, and the hypotheses are the same.
TEST(BeamSearch, FinishedSourcesLeaveTheBatch) {
  const LogProbFn fn = hashed_logprobs(kV, kEos, 23, 2.0f, -1.0f);
  const std::vector<Tokens> sources = random_sources(8, 29);
  const BeamOptions opt = options(3, 0.6, 1.0, 1, 1);
  ToyDecoder batched(kV, 12, 8, 3, fn);
  const auto all = search(batched, sources, opt);
  EXPECT_EQ(batched.starts, 1);
  EXPECT_GT(batched.retains, 0);
  long alone_slots = 0;
  int longest = 0;
  for (size_t j = 0; j < sources.size(); ++j) {
    ToyDecoder single(kV, 12, 1, 3, fn);
    const auto one = search(single, {sources[j]}, opt);
    alone_slots += single.total_slots;
    longest = std::max(longest, single.total_steps);
    ASSERT_EQ(one[0].size(), all[j].size());
    for (size_t k = 0; k < one[0].size(); ++k) {
      EXPECT_EQ(one[0][k].tokens, all[j][k].tokens) << "source " << j;
      EXPECT_EQ(one[0][k].score, all[j][k].score);
    }
  }
  EXPECT_EQ(batched.total_steps, longest);
  EXPECT_EQ(batched.total_slots, alone_slots);
  EXPECT_LT(batched.total_slots, static_cast<long>(longest) * 8 * 3);
}

// eos right away is far likelier than anything else: nothing live can beat it after one step.
TEST(BeamSearch, StopsWhenNoLiveHypothesisCanWin) {
  const LogProbFn fn = hashed_logprobs(kV, kEos, 19, 0.5f, 12.0f);
  for (double A : {0.0, 1.0}) {
    ToyDecoder dec(kV, 12, 1, 4, fn);
    const auto got = search(dec, {{3, 4}}, options(4, A, 0.0, 10, 1));
    EXPECT_EQ(dec.total_steps, 1) << "A " << A;
    EXPECT_EQ(got[0][0].tokens, Tokens{});
  }
}

std::string error_of(const BeamOptions& opt, int32_t length = 2) {
  ToyDecoder dec(kV, 8, 2, 4, hashed_logprobs(kV, kEos, 1, 1.0f, 0.0f));
  const Tokens src(kS, 3);
  try {
    beam_search(dec, src.data(), &length, 1, kS, opt);
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

TEST(BeamSearch, BadOptionsAreRefusedWithAMessage) {
  BeamOptions o = options(4, 0.0, 0.0, 5, 1);
  EXPECT_EQ(error_of(options(0, 0.0, 0.0, 5, 1)),
            "beam search: --beam must be between 1 and 4, got 0");
  EXPECT_EQ(error_of(options(5, 0.0, 0.0, 5, 1)),
            "beam search: --beam must be between 1 and 4, got 5");
  EXPECT_EQ(error_of(options(2, 0.0, 0.0, 5, 3)),
            "beam search: --n-best must be between 1 and the beam size 2, got 3");
  EXPECT_EQ(error_of(options(2, 0.0, 0.0, 5, 0)),
            "beam search: --n-best must be between 1 and the beam size 2, got 0");
  EXPECT_EQ(error_of(options(2, NAN, 0.0, 5, 1)),
            "beam search: --length-penalty must be a finite number, got nan");
  EXPECT_EQ(error_of(options(2, 0.0, -1.0, 5, 1)),
            "beam search: --max-len-a must be a finite number >= 0, got -1");
  EXPECT_EQ(error_of(options(2, 0.0, INFINITY, 5, 1)),
            "beam search: --max-len-a must be a finite number >= 0, got inf");
  EXPECT_EQ(error_of(options(2, 0.0, 0.0, -3, 1)), "beam search: --max-len-b must be >= 0, got -3");
  o.eos = 6;
  EXPECT_EQ(error_of(o), "beam search: the eos id 6 is not in the vocabulary of 6 tokens");
  o = options(4, 0.0, 0.0, 5, 1);
  o.bos = -1;
  EXPECT_EQ(error_of(o), "beam search: the bos id -1 is not in the vocabulary of 6 tokens");
  o = options(4, 0.0, 0.0, 5, 1);
  o.pad = 9;
  EXPECT_EQ(error_of(o), "beam search: the pad id 9 is not in the vocabulary of 6 tokens");
  EXPECT_EQ(error_of(options(2, 0.0, 0.0, 5, 1), 0),
            "beam search: source 0 has 0 tokens; it must have between 1 and 5");
  EXPECT_EQ(error_of(options(2, 0.0, 0.0, 5, 1), 6),
            "beam search: source 0 has 6 tokens; it must have between 1 and 5");
}

}  // namespace
}  // namespace ph

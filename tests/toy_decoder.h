// A toy IncrementalDecoder for the beam search tests: the log-probabilities of the next token
// are a deterministic function of (source, prefix), where the prefix is what the slot was fed,
// bos included. The toy rebuilds each slot's prefix from the tokens and parents that step()
// receives, so a search that passes wrong parents gets the wrong scores; it also checks the
// interface's contract (throwing std::logic_error) and records every prefix it was fed.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <set>
#include <stdexcept>
#include <utility>
#include <vector>

#include "model/incremental_decoder.h"

namespace ph::testing {

using Tokens = std::vector<int32_t>;
// Writes the V log-probabilities of the token after `prefix` given `source`.
using LogProbFn = std::function<void(const Tokens& source, const Tokens& prefix, float* out)>;

inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Log-softmax of pseudo-random logits in [-spread, spread) hashed from (seed, source, prefix,
// token), plus eos_bias on eos.
inline LogProbFn hashed_logprobs(int V, int32_t eos, uint64_t seed, float spread, float eos_bias) {
  return [=](const Tokens& source, const Tokens& prefix, float* out) {
    uint64_t h = mix64(seed);
    for (int32_t t : source) h = mix64(h ^ static_cast<uint64_t>(t + 1));
    h = mix64(h ^ 0xABCDull);
    for (int32_t t : prefix) h = mix64(h ^ static_cast<uint64_t>(t + 1));
    double mx = -1e30, sum = 0.0;
    std::vector<double> z(static_cast<size_t>(V));
    for (int v = 0; v < V; ++v) {
      const double u = static_cast<double>(mix64(h + static_cast<uint64_t>(v)) >> 11) * 0x1p-53;
      z[static_cast<size_t>(v)] = spread * (2.0 * u - 1.0) + (v == eos ? eos_bias : 0.0);
      mx = std::max(mx, z[static_cast<size_t>(v)]);
    }
    for (double x : z) sum += std::exp(x - mx);
    for (int v = 0; v < V; ++v)
      out[v] = static_cast<float>(z[static_cast<size_t>(v)] - mx - std::log(sum));
  };
}

class ToyDecoder : public IncrementalDecoder {
 public:
  ToyDecoder(int V, int T, int max_sources, int max_beams, LogProbFn fn)
      : V_(V), T_(T), max_sources_(max_sources), max_beams_(max_beams), fn_(std::move(fn)) {}

  void start(const int32_t* source, const int32_t* lengths, int n, int S, int beams) override {
    if (n < 1 || n > max_sources_ || beams < 1 || beams > max_beams_)
      throw std::logic_error("toy: start() out of range");
    sources_.clear();
    for (int j = 0; j < n; ++j) {
      if (lengths[j] < 1 || lengths[j] > S) throw std::logic_error("toy: bad source length");
      sources_.emplace_back(source + static_cast<size_t>(j) * S,
                            source + static_cast<size_t>(j) * S + lengths[j]);
    }
    beams_ = beams;
    steps_ = 0;
    prefixes_.assign(static_cast<size_t>(n * beams), Tokens{});
    ++starts;
  }

  void step(const int32_t* tokens, const int32_t* parents, float* logprobs) override {
    if (steps_ >= T_) throw std::logic_error("toy: more than max_length() steps");
    const int M = static_cast<int>(prefixes_.size());
    std::vector<Tokens> next(static_cast<size_t>(M));
    for (int i = 0; i < M; ++i) {
      const int j = i / beams_;
      if (steps_ > 0) {
        if (parents[i] < j * beams_ || parents[i] >= (j + 1) * beams_)
          throw std::logic_error("toy: a parent in another source's slots");
        next[static_cast<size_t>(i)] = prefixes_[static_cast<size_t>(parents[i])];
      }
      if (tokens[i] < 0 || tokens[i] >= V_) throw std::logic_error("toy: token out of range");
      next[static_cast<size_t>(i)].push_back(tokens[i]);
      fed.insert({sources_[static_cast<size_t>(j)], next[static_cast<size_t>(i)]});
      fn_(sources_[static_cast<size_t>(j)], next[static_cast<size_t>(i)],
          logprobs + static_cast<size_t>(i) * V_);
    }
    prefixes_ = std::move(next);
    ++steps_;
    ++total_steps;
    total_slots += M;
  }

  void retain(const int32_t* keep, int m) override {
    const int n = static_cast<int>(sources_.size());
    if (m < 1 || m > n) throw std::logic_error("toy: retain() of a bad count");
    std::vector<Tokens> sources, prefixes;
    for (int i = 0; i < m; ++i) {
      if (keep[i] < 0 || keep[i] >= n || (i > 0 && keep[i] <= keep[i - 1]))
        throw std::logic_error("toy: retain() of a bad source list");
      sources.push_back(sources_[static_cast<size_t>(keep[i])]);
      for (int b = 0; b < beams_; ++b)
        prefixes.push_back(prefixes_[static_cast<size_t>(keep[i] * beams_ + b)]);
    }
    sources_ = std::move(sources);
    prefixes_ = std::move(prefixes);
    ++retains;
  }

  int vocab_size() const override { return V_; }
  int max_length() const override { return T_; }
  int max_sources() const override { return max_sources_; }
  int max_beams() const override { return max_beams_; }

  std::set<std::pair<Tokens, Tokens>> fed;  // (source, prefix) of every slot of every step
  int starts = 0, total_steps = 0;
  int retains = 0;       // retain() calls that were made
  long total_slots = 0;  // slots stepped, over all steps

 private:
  int V_, T_, max_sources_, max_beams_;
  LogProbFn fn_;
  std::vector<Tokens> sources_;
  std::vector<Tokens> prefixes_;  // per slot, bos first
  int beams_ = 1, steps_ = 0;
};

}  // namespace ph::testing

// Incremental decoding of an EncDec against its full forward (teacher forcing): sources of
// different lengths, `beams` hypotheses per source whose caches are reordered every step by
// random parents of the same source (a parent may have several children, as in beam search);
// at every step each hypothesis's log-probabilities equal those of the full forward over its
// whole history (fp32 tolerance). Shared by the one-rank and the tensor-parallel tests (and
// full_log_softmax by the GPT's decoding test).
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "model/encdec.h"

namespace ph::test {

// Gives every vector parameter (biases, LayerNorm gains and shifts) a value of its full index
// and name, alike on any tensor-parallel layout: initialization leaves biases at 0, where a
// decoding test could not tell a bias added twice, or never, from a right one.
inline void set_vectors(Model& m) {
  std::vector<float> host(m.arena_capacity());
  m.download_params(host.data());
  for (const Param& p : m.table().params()) {
    if (p.shape.size() != 1) continue;
    const float base = p.name.size() >= 6 && p.name.ends_with("weight") ? 1.0f : 0.0f;
    const float phase = static_cast<float>(std::hash<std::string>()(p.name) % 97);
    const int64_t first = p.block_offset.empty() ? 0 : p.block_offset[0];
    for (size_t i = 0; i < p.numel; ++i) {
      const int64_t g = first + static_cast<int64_t>(i);
      host[p.offset + i] =
          g < p.shape[0] ? base + 0.3f * std::sin(0.37f * static_cast<float>(g) + phase) : 0.0f;
    }
  }
  m.upload_params(host.data());
}

// Log-softmax over the first V columns of row r of the model's logits (one rank: all columns).
inline std::vector<double> full_log_softmax(const Model& m, int r, int V) {
  std::vector<float> row(static_cast<size_t>(m.local_vocab()));
  m.download_logits(row.data(), r, 1);
  const double mx = *std::max_element(row.begin(), row.begin() + V);
  double sum = 0.0;
  for (int v = 0; v < V; ++v) sum += std::exp(row[static_cast<size_t>(v)] - mx);
  std::vector<double> out(static_cast<size_t>(V));
  for (int v = 0; v < V; ++v)
    out[static_cast<size_t>(v)] = row[static_cast<size_t>(v)] - mx - std::log(sum);
  return out;
}

// `decoder` decodes on `model`; `reference` (an unsharded model with the same parameters and
// max_batch >= n * beams) computes the full forwards. With `shared_start`, every hypothesis of a
// source takes the same token at position 0, as in beam search (the decoder may then run one
// row per source there). Returns the largest difference seen.
inline double check_incremental_decoding(IncrementalDecoder& decoder, EncDec& reference, int n,
                                         int beams, unsigned seed, bool shared_start = false) {
  const ModelConfig& mc = reference.config();
  const int V = mc.vocab_size, S = mc.source_len(), T = mc.seq_len, slots = n * beams;
  std::mt19937 rng(seed);
  std::vector<int32_t> source(static_cast<size_t>(n * S)), lengths(static_cast<size_t>(n));
  for (int j = 0; j < n; ++j) {
    lengths[static_cast<size_t>(j)] = S - (j % S);
    for (int s = 0; s < S; ++s)
      source[static_cast<size_t>(j * S + s)] =
          static_cast<int32_t>(rng() % static_cast<unsigned>(V));
  }
  decoder.start(source.data(), lengths.data(), n, S, beams);
  std::vector<std::vector<int32_t>> history(static_cast<size_t>(slots));
  std::vector<float> logprobs(static_cast<size_t>(slots * V));
  double worst = 0.0;
  for (int pos = 0; pos < T; ++pos) {
    std::vector<int32_t> tokens(static_cast<size_t>(slots)), parents(static_cast<size_t>(slots));
    std::vector<std::vector<int32_t>> next(static_cast<size_t>(slots));
    for (int i = 0; i < slots; ++i) {
      parents[static_cast<size_t>(i)] =
          i / beams * beams + static_cast<int32_t>(rng() % static_cast<unsigned>(beams));
      tokens[static_cast<size_t>(i)] = shared_start && pos == 0 && i % beams > 0
                                           ? tokens[static_cast<size_t>(i - 1)]
                                           : static_cast<int32_t>(rng() % static_cast<unsigned>(V));
      next[static_cast<size_t>(i)] =
          pos == 0 ? std::vector<int32_t>{}
                   : history[static_cast<size_t>(parents[static_cast<size_t>(i)])];
      next[static_cast<size_t>(i)].push_back(tokens[static_cast<size_t>(i)]);
    }
    history = next;
    decoder.step(tokens.data(), pos == 0 ? nullptr : parents.data(), logprobs.data());
    // Teacher forcing: every hypothesis's history in one full forward.
    Batch b;
    b.B = slots;
    b.T = pos + 1;
    b.S = S;
    for (int i = 0; i < slots; ++i) {
      const auto& h = history[static_cast<size_t>(i)];
      b.tokens.insert(b.tokens.end(), h.begin(), h.end());
      const int j = i / beams;
      b.source.insert(b.source.end(), source.begin() + j * S, source.begin() + (j + 1) * S);
      b.source_lengths.push_back(lengths[static_cast<size_t>(j)]);
    }
    b.targets.assign(b.tokens.size(), 0);
    reference.forward(b, DropoutContext{});
    for (int i = 0; i < slots; ++i) {
      const std::vector<double> want = full_log_softmax(reference, i * (pos + 1) + pos, V);
      for (int v = 0; v < V; ++v) {
        const double got = logprobs[static_cast<size_t>(i * V + v)];
        worst = std::max(worst, std::fabs(got - want[static_cast<size_t>(v)]));
        EXPECT_NEAR(got, want[static_cast<size_t>(v)], 2e-5)
            << "position " << pos << ", hypothesis " << i << ", token " << v;
      }
    }
  }
  return worst;
}

}  // namespace ph::test

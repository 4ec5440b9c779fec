#include "trainer/sampler.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <stdexcept>

#include "kernels/common/rng_streams.h"
#include "model/gpt.h"
#include "model/gpt_decoder.h"

namespace ph {

namespace {

size_t sz(int64_t v) {
  return static_cast<size_t>(v);
}

// The next-token scores (log-probabilities or logits: sampling is shift-invariant) of n sequences
// of a GPT, advanced together one position per call. The context of each is the last seq_len
// tokens. While it grows, the key/value cache makes each new token cost one position; once it
// slides (more than seq_len tokens), the positions of every token move, so the window is
// recomputed by a forward pass, as without a cache.
class NextTokens {
 public:
  NextTokens(Gpt& gpt, Communicator* tp_host, int n)
      : gpt_(gpt),
        tp_host_(tp_host),
        n_(n),
        dec_(gpt.incremental_decoder(n)),
        logprobs_(sz(n) * sz(gpt.config().vocab_size)),
        windows_(sz(n) * sz(gpt.padded_vocab())),
        local_(sz(gpt.local_vocab())),
        tokens_(sz(n)) {}

  // The c-th call (c = 1, 2, ...): every sequence has taken its first c tokens ctx[i][0, c).
  // want[i]: whether sequence i needs the scores after them (ctx[i] then holds c tokens; a
  // sequence that does not may hold fewer: its row is left unspecified). Returns row i's
  // scores at row(i) (vocab_size() entries, valid until the next call).
  void next(const std::vector<std::vector<int32_t>>& ctx, size_t c, const std::vector<bool>& want) {
    const size_t T = sz(dec_->max_length());
    windowed_ = c > T;
    if (windowed_) return window(ctx, c, T, want);
    if (c == 1) dec_->start(n_);
    for (size_t i = 0; i < sz(n_); ++i) tokens_[i] = ctx[i].size() >= c ? ctx[i][c - 1] : 0;
    dec_->step(tokens_.data(), nullptr, logprobs_.data());
  }
  const float* row(size_t i) const {
    return windowed_ ? windows_.data() + i * sz(gpt_.padded_vocab())
                     : logprobs_.data() + i * sz(gpt_.config().vocab_size);
  }

 private:
  // The wanted rows' windows ctx[i][c - T, c), max_batch of them per forward pass.
  void window(const std::vector<std::vector<int32_t>>& ctx, size_t c, size_t T,
              const std::vector<bool>& want) {
    std::vector<size_t> rows;
    for (size_t i = 0; i < sz(n_); ++i)
      if (want[i]) rows.push_back(i);
    const size_t per_pass = sz(gpt_.max_batch());
    for (size_t first = 0; first < rows.size(); first += per_pass) {
      Batch b;
      b.B = static_cast<int>(std::min(per_pass, rows.size() - first));
      b.T = static_cast<int>(T);
      for (size_t k = first; k < first + sz(b.B); ++k) {
        const auto end = ctx[rows[k]].begin() + static_cast<std::ptrdiff_t>(c);
        b.tokens.insert(b.tokens.end(), end - static_cast<std::ptrdiff_t>(T), end);
      }
      gpt_.forward(b, DropoutContext{});
      for (size_t k = first; k < first + sz(b.B); ++k) {
        gpt_.download_logits(local_.data(), static_cast<int>((k - first + 1) * T - 1), 1);
        float* out = windows_.data() + rows[k] * sz(gpt_.padded_vocab());
        if (gpt_.tp().size > 1) {  // the vocabulary is sharded: every rank gathers the whole row
          tp_host_->all_gather(local_.data(), out, local_.size());
        } else {
          std::copy(local_.begin(), local_.end(), out);
        }
      }
    }
  }

  Gpt& gpt_;
  Communicator* tp_host_;
  int n_;
  std::unique_ptr<GptDecoder> dec_;
  std::vector<float> logprobs_;  // [n, vocab_size] of the last decoder step
  std::vector<float> windows_;   // [n, padded_vocab] of the last windows
  std::vector<float> local_;
  std::vector<int32_t> tokens_;
  bool windowed_ = false;
};

// Draws the next token from `row` (V scores); bits: the draw's random bits (unused when greedy).
class TokenPicker {
 public:
  TokenPicker(int V, const SampleOptions& opt) : V_(V), opt_(opt), probs_(sz(V)), order_(sz(V)) {}

  int32_t operator()(const float* row, uint32_t bits) {
    if (opt_.temperature <= 0.0f)
      return static_cast<int32_t>(std::max_element(row, row + V_) - row);  // the first maximum
    std::iota(order_.begin(), order_.end(), 0);
    const int k = opt_.top_k > 0 ? std::min(opt_.top_k, V_) : V_;
    if (k < V_)
      std::partial_sort(order_.begin(), order_.begin() + k, order_.end(),
                        [&](int32_t a, int32_t b) { return row[a] > row[b]; });
    float mx = -INFINITY;
    for (int j = 0; j < k; ++j) mx = std::max(mx, row[order_[sz(j)]]);
    double total = 0.0;
    for (int j = 0; j < k; ++j) {
      const float p = std::exp((row[order_[sz(j)]] - mx) / opt_.temperature);
      probs_[sz(j)] = p;
      total += p;
    }
    const double u = uniform_from_bits(bits) * total;
    double acc = 0.0;
    for (int j = 0; j < k; ++j) {
      acc += probs_[sz(j)];
      if (u < acc) return order_[sz(j)];
    }
    return order_[sz(k - 1)];
  }

 private:
  int V_;
  const SampleOptions& opt_;
  std::vector<float> probs_;
  std::vector<int32_t> order_;
};

}  // namespace

std::vector<int32_t> sample_tokens(Model& model, Communicator* tp_host,
                                   const std::vector<int32_t>& prompt, const SampleOptions& opt) {
  return sample_batch(model, tp_host, {prompt}, opt, 0)[0];
}

std::vector<std::vector<int32_t>> sample_batch(Model& model, Communicator* tp_host,
                                               const std::vector<std::vector<int32_t>>& prompts,
                                               const SampleOptions& opt, uint64_t first_stream) {
  auto* gpt = dynamic_cast<Gpt*>(&model);
  if (gpt == nullptr) throw std::logic_error("sample_batch: the model is not a GPT");
  const size_t n = prompts.size();
  std::vector<std::vector<int32_t>> ctx = prompts, out(n);
  if (n == 0) return out;
  for (const std::vector<int32_t>& p : prompts)
    if (p.empty()) throw std::logic_error("sample_batch: an empty prompt");
  NextTokens scores(*gpt, tp_host, static_cast<int>(n));
  TokenPicker pick(model.config().vocab_size, opt);
  std::vector<bool> done(n, opt.max_tokens <= 0), want(n);
  // Step c feeds each sequence its token c - 1; a sequence whose context is then complete (its
  // prompt read, its last token drawn) draws the next one, the others are still in their prompt.
  for (size_t c = 1; std::find(done.begin(), done.end(), false) != done.end(); ++c) {
    for (size_t i = 0; i < n; ++i) want[i] = !done[i] && ctx[i].size() == c;
    scores.next(ctx, c, want);
    for (size_t i = 0; i < n; ++i) {
      if (!want[i]) continue;
      // Prompt j's token g: index (stream << 32) + g of the sampling stream, so the first
      // prompt (stream 0) draws exactly what a single prompt always has.
      const uint64_t index = ((first_stream + i) << 32) + out[i].size();
      const int32_t next = pick(scores.row(i), philox_bits(opt.seed, rng::kSamplingA, 0, index));
      out[i].push_back(next);
      ctx[i].push_back(next);
      done[i] = next == opt.stop_token || static_cast<int>(out[i].size()) >= opt.max_tokens;
    }
  }
  return out;
}

}  // namespace ph

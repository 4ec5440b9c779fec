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

// The next-token scores (log-probabilities or logits: sampling is shift-invariant) of a GPT. The
// context is the last seq_len tokens. While it grows, the key/value cache makes each new token
// cost one position; once it slides (more than seq_len tokens), the positions of every token
// move, so the window is recomputed by one forward pass, as without a cache.
class NextToken {
 public:
  NextToken(Gpt& gpt, Communicator* tp_host)
      : gpt_(gpt),
        tp_host_(tp_host),
        dec_(gpt.incremental_decoder(1)),
        row_(static_cast<size_t>(gpt.padded_vocab())),
        local_(static_cast<size_t>(gpt.local_vocab())) {}
  // ctx: every token so far, one more than at the previous call (the first call: the prompt).
  const float* next(const std::vector<int32_t>& ctx) {
    const size_t T = static_cast<size_t>(dec_->max_length());
    if (ctx.size() > T) return window(ctx, T);
    if (dec_->position() == 0 || !started_) {
      dec_->start(1);
      for (int32_t t : ctx) dec_->step(&t, nullptr, row_.data());
      started_ = true;
    } else {
      dec_->step(&ctx.back(), nullptr, row_.data());
    }
    return row_.data();
  }

 private:
  const float* window(const std::vector<int32_t>& ctx, size_t T) {
    Batch b;
    b.B = 1;
    b.T = static_cast<int>(T);
    b.tokens.assign(ctx.end() - static_cast<std::ptrdiff_t>(T), ctx.end());
    gpt_.forward(b, DropoutContext{});
    gpt_.download_logits(local_.data(), b.T - 1, 1);
    if (gpt_.tp().size > 1) {  // the vocabulary is sharded: every rank gathers the whole row
      tp_host_->all_gather(local_.data(), row_.data(), local_.size());
    } else {
      std::copy(local_.begin(), local_.end(), row_.begin());
    }
    return row_.data();
  }

  Gpt& gpt_;
  Communicator* tp_host_;
  std::unique_ptr<GptDecoder> dec_;
  std::vector<float> row_, local_;
  bool started_ = false;
};

}  // namespace

std::vector<int32_t> sample_tokens(Model& model, Communicator* tp_host,
                                   const std::vector<int32_t>& prompt, const SampleOptions& opt) {
  const int V = model.config().vocab_size;
  auto* gpt = dynamic_cast<Gpt*>(&model);
  if (gpt == nullptr) throw std::logic_error("sample_tokens: the model is not a GPT");
  NextToken scores(*gpt, tp_host);
  std::vector<int32_t> ctx = prompt, out;
  std::vector<float> probs(static_cast<size_t>(V));
  std::vector<int32_t> order(static_cast<size_t>(V));
  for (int i = 0; i < opt.max_tokens; ++i) {
    const float* row = scores.next(ctx);
    int32_t next = 0;
    if (opt.temperature <= 0.0f) {
      next = static_cast<int32_t>(std::max_element(row, row + V) - row);  // the first maximum
    } else {
      std::iota(order.begin(), order.end(), 0);
      int k = opt.top_k > 0 ? std::min(opt.top_k, V) : V;
      if (k < V)
        std::partial_sort(order.begin(), order.begin() + k, order.end(),
                          [&](int32_t a, int32_t b) { return row[a] > row[b]; });
      float mx = -INFINITY;
      for (int j = 0; j < k; ++j) mx = std::max(mx, row[order[static_cast<size_t>(j)]]);
      double total = 0.0;
      for (int j = 0; j < k; ++j) {
        const float p = std::exp((row[order[static_cast<size_t>(j)]] - mx) / opt.temperature);
        probs[static_cast<size_t>(j)] = p;
        total += p;
      }
      const double u =
          uniform_from_bits(philox_bits(opt.seed, rng::kSamplingA, 0, static_cast<uint64_t>(i))) *
          total;
      double acc = 0.0;
      next = order[static_cast<size_t>(k - 1)];
      for (int j = 0; j < k; ++j) {
        acc += probs[static_cast<size_t>(j)];
        if (u < acc) {
          next = order[static_cast<size_t>(j)];
          break;
        }
      }
    }
    out.push_back(next);
    ctx.push_back(next);
    if (next == opt.stop_token) break;
  }
  return out;
}

}  // namespace ph

#include "trainer/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "kernels/common/rng_streams.h"
#include "trainer/vocab_argmax.h"

namespace ph {

std::vector<int32_t> sample_tokens(Model& model, Communicator* tp_host,
                                   const std::vector<int32_t>& prompt, const SampleOptions& opt) {
  const int T = model.config().seq_len;
  const int V = model.config().vocab_size;
  const int Vl = model.local_vocab();
  std::vector<int32_t> ctx = prompt, out;
  std::vector<float> local_row(static_cast<size_t>(Vl));
  std::vector<float> full_row(static_cast<size_t>(model.padded_vocab()));
  std::vector<float> probs(static_cast<size_t>(V));
  std::vector<int32_t> order(static_cast<size_t>(V));
  VocabArgmax argmax(model, 1);
  Batch window;
  window.B = 1;
  const DropoutContext off;
  for (int i = 0; i < opt.max_tokens; ++i) {
    window.T = std::min<int>(T, static_cast<int>(ctx.size()));
    window.tokens.assign(ctx.end() - window.T, ctx.end());
    model.forward(window, off);
    int32_t next = 0;
    if (opt.temperature <= 0.0f) {
      argmax.run(model, window.T - 1, 1, tp_host, &next);
    } else {
      model.download_logits(local_row.data(), window.T - 1, 1);
      const float* row = local_row.data();
      if (model.tp().size > 1) {  // the vocabulary is sharded: every rank gathers the whole row
        tp_host->all_gather(row, full_row.data(), static_cast<size_t>(Vl));
        row = full_row.data();
      }
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

// A small encoder-decoder composed from the shared blocks, for the tests of the blocks that the
// GPT does not use: a bidirectional encoder with key padding by per-sample lengths, and a
// decoder whose layers cross-attend to the encoder's output (Tq != Tk, padded memory keys).
// The decoder's partial gradients of the memory are summed over the tensor-parallel group once,
// after every decoder layer has added its own, and only then does the encoder's backward run.
//
// The source of sample b is derived from its tokens: the first S = T + 2 positions of the
// tokens repeated, kept for source_length(b) = S - (b % 3) positions (the rest is padding, filled
// with token V - 1 so that padding is visible in the embedding's gradient).
#pragma once
#include <vector>

#include "model/block_specs.h"
#include "model/embedding.h"
#include "model/lm_head.h"
#include "model/model.h"
#include "model/transformer_stack.h"

namespace ph::test {

class Seq2SeqBlocks final : public Model {
 public:
  static int source_len(const ModelConfig& c) { return c.seq_len + 2; }
  static int source_length(const ModelConfig& c, int64_t sample) {
    return source_len(c) - static_cast<int>(sample % 3);
  }

  Seq2SeqBlocks(Backend& be, const ModelConfig& cfg, const ModelSetup& setup)
      : Model(be, cfg, setup),
        S_(source_len(cfg)),
        enc_embed_(core_, "enc.", embedding_spec(cfg, setup.max_batch, S_, rng::kSiteEncoderEmbed)),
        encoder_(core_, "enc.", cfg.n_layers, layer(cfg, setup, rng::DropoutStack::kEncoder, S_)),
        dec_embed_(core_, "dec.",
                   embedding_spec(cfg, setup.max_batch, cfg.seq_len, rng::kSiteEmbed)),
        decoder_(core_, "dec.", cfg.n_layers, layer(cfg, setup, rng::DropoutStack::kMain, S_)),
        head_(core_, dec_embed_.wte(), "lm_head", cfg.d_model, cfg.vocab_size,
              dec_embed_.padded_vocab(), cfg.init_std, setup.max_batch * cfg.seq_len) {
    const size_t rows = static_cast<size_t>(setup.max_batch) * static_cast<size_t>(S_);
    const size_t C = static_cast<size_t>(cfg.d_model);
    core_.plan().own(&dmem_, rows * C);
    core_.plan().shared(&dstream_, "stream.d", rows * C);
    core_.plan().shared(&dhead_, "branch.dy", rows * C);
    finish_construction();
    enc_embed_.prepare();
    dec_embed_.prepare();
    source_ = DeviceBuffer<int32_t>(be, rows);
    lengths_ = DeviceBuffer<int32_t>(be, static_cast<size_t>(setup.max_batch));
  }

  void forward(const Batch& batch, const DropoutContext& d) override {
    Pass dec = pass_of(batch, d);
    Pass enc = dec;
    enc.T = S_;
    std::vector<int32_t> src(static_cast<size_t>(batch.B) * static_cast<size_t>(S_));
    std::vector<int32_t> len(static_cast<size_t>(batch.B));
    for (int b = 0; b < batch.B; ++b) {
      len[static_cast<size_t>(b)] = source_length(cfg_, batch.sample0 + b);
      for (int s = 0; s < S_; ++s)
        src[static_cast<size_t>(b * S_ + s)] =
            s < len[static_cast<size_t>(b)]
                ? batch.tokens[static_cast<size_t>(b * batch.T + s % batch.T)]
                : cfg_.vocab_size - 1;
    }
    backend().upload(source_.data(), src.data(), src.size() * sizeof(int32_t));
    backend().upload(lengths_.data(), len.data(), len.size() * sizeof(int32_t));
    mem_.x = encoder_.forward(enc_embed_.forward(source_.data(), nullptr, enc), enc,
                              lengths_.data(), nullptr);
    mem_.Tk = S_;
    mem_.key_len = lengths_.data();
    mem_.dx = dmem_;
    tokens_ = upload_tokens(batch);
    out_ = decoder_.forward(dec_embed_.forward(tokens_, nullptr, dec), dec, nullptr, &mem_);
    head_.forward(out_, dec.rows());
  }
  float* logits() const override { return head_.logits(); }

 private:
  static LayerSpec layer(const ModelConfig& c, const ModelSetup& s, rng::DropoutStack stack,
                         int S) {
    const bool decoder = stack == rng::DropoutStack::kMain;
    LayerSpec l = layer_spec(c, s.max_batch, decoder ? c.seq_len : S);
    l.causal = l.cross = decoder;
    l.stack = stack;
    l.Tk_max = S;
    return l;
  }

  void backward(const Batch& batch, const DropoutContext& d) override {
    Pass dec = pass_of(batch, d);
    Pass enc = dec;
    enc.T = S_;
    const size_t mem_floats = static_cast<size_t>(enc.rows()) * static_cast<size_t>(cfg_.d_model);
    head_.backward(dhead_, out_, dec.rows());
    core_.ready().release(head_.params(), core_.table());
    backend().zero(dmem_, mem_floats * sizeof(float));
    decoder_.backward(dstream_, dhead_, dec, nullptr, &mem_);
    dec_embed_.backward(dstream_, tokens_, nullptr, dec);
    core_.ready().release(dec_embed_.params(), core_.table());
    // Every decoder layer has added its partial gradient of the memory: one sum over the group.
    copy_to_tp_region_backward(tp(), dmem_, mem_floats);
    encoder_.backward(dstream_, dmem_, enc, lengths_.data(), nullptr);
    enc_embed_.backward(dstream_, source_.data(), nullptr, enc);
    core_.ready().release(enc_embed_.params(), core_.table());
  }

  int S_;
  VocabParallelEmbedding enc_embed_;
  TransformerStack encoder_;
  VocabParallelEmbedding dec_embed_;
  TransformerStack decoder_;
  LmHead head_;
  Memory mem_;
  DeviceBuffer<int32_t> source_, lengths_;
  const int32_t* tokens_ = nullptr;
  const float* out_ = nullptr;
  float *dmem_ = nullptr, *dstream_ = nullptr, *dhead_ = nullptr;
};

}  // namespace ph::test

#include "model/gpt_decoder.h"

#include <stdexcept>
#include <string>

namespace ph {

namespace {

void require(bool ok, const std::string& what) {
  if (!ok) throw std::logic_error("GptDecoder: " + what);
}

int checked(const Gpt& model, int max_batch, int max_sequences) {
  const int T = model.config().seq_len;
  require(max_sequences >= 1 &&
              static_cast<int64_t>(max_sequences) <= static_cast<int64_t>(max_batch) * T,
          std::to_string(max_sequences) + " sequences do not fit a model of micro-batches of " +
              std::to_string(max_batch) + " x " + std::to_string(T));
  return max_sequences;
}

}  // namespace

std::unique_ptr<GptDecoder> Gpt::incremental_decoder(int max_sequences) {
  return std::make_unique<GptDecoder>(*this, max_sequences);
}

GptDecoder::GptDecoder(Gpt& model, int max_sequences)
    : m_(model),
      max_(checked(model, model.setup_.max_batch, max_sequences)),
      self_(model.backend(), model.stack_.depth(), max_sequences, model.config().seq_len,
            2 * static_cast<size_t>(model.config().d_model) / static_cast<size_t>(model.tp().size)),
      log_softmax_(model, max_sequences),
      tokens_(model.backend(), static_cast<size_t>(max_sequences)) {}

void GptDecoder::start(int n) {
  require(n >= 1 && n <= max_,
          "start of " + std::to_string(n) + " sequences, at most " + std::to_string(max_));
  n_ = n;
  pos_ = 0;
}

void GptDecoder::step(const int32_t* tokens, const int32_t* parents, float* logprobs) {
  require(n_ > 0, "step before start");
  require(pos_ < max_length(), "step " + std::to_string(pos_ + 1) + " exceeds the model's " +
                                   std::to_string(max_length()) + " positions");
  DecodeStep s;
  s.n = n_;
  s.pos = pos_;
  s.gather = self_.gather(parents, n_, pos_, n_);
  m_.backend().upload(tokens_.data(), tokens, static_cast<size_t>(n_) * sizeof(int32_t));
  Pass pass;  // no dropout
  pass.B = n_;
  pass.T = 1;
  const float* x = m_.embed_.forward(tokens_.data(), nullptr, pass, pos_);
  m_.head_.forward(m_.stack_.step(x, s, self_.layers()), n_);
  log_softmax_(n_, logprobs);
  ++pos_;
}

}  // namespace ph

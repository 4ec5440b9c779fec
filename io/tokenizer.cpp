#include "io/tokenizer.h"

#include "io/bpe.h"

namespace ph {

std::vector<int32_t> encode_bytes(std::string_view text) {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
  return ids;
}

std::string decode_bytes(const int32_t* ids, size_t n) {
  std::string text;
  text.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (ids[i] >= 0 && ids[i] < kByteVocabSize) {
      text.push_back(static_cast<char>(static_cast<unsigned char>(ids[i])));
    } else {
      text.push_back('<');
      text += std::to_string(ids[i]);
      text.push_back('>');
    }
  }
  return text;
}

Tokenizer::Tokenizer() = default;

Tokenizer Tokenizer::load(const std::string& path) {
  Tokenizer t;
  if (!path.empty()) t.bpe_ = std::make_shared<const BpeTokenizer>(BpeTokenizer::load(path));
  return t;
}

Tokenizer Tokenizer::from_stored(const std::string& kind, const std::string& vocab,
                                 const std::string& merges, const std::string& origin) {
  Tokenizer t;
  if (kind == "bytes") return t;
  if (kind != "bpe" && kind != "tiktoken")
    throw InputError(origin + ": unknown tokenizer kind '" + printable(kind) +
                     "' (expected bytes, bpe or tiktoken)");
  const BpeFormat format = kind == "bpe" ? BpeFormat::VocabMerges : BpeFormat::TiktokenRanks;
  t.bpe_ =
      std::make_shared<const BpeTokenizer>(BpeTokenizer::from_text(format, vocab, merges, origin));
  return t;
}

std::string Tokenizer::kind() const {
  if (!bpe_) return "bytes";
  return bpe_->format() == BpeFormat::VocabMerges ? "bpe" : "tiktoken";
}

int Tokenizer::size() const {
  return bpe_ ? bpe_->size() : kByteVocabSize;
}

std::optional<int32_t> Tokenizer::id_of(std::string_view text) const {
  if (!bpe_) return std::nullopt;
  return bpe_->id_of(text);
}

std::string Tokenizer::token_bytes(int32_t id) const {
  return bpe_ ? bpe_->token_bytes(id) : std::string(1, static_cast<char>(id));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, int threads) const {
  return bpe_ ? bpe_->encode(text, threads) : encode_bytes(text);
}

std::string Tokenizer::decode(const int32_t* ids, size_t n) const {
  return bpe_ ? bpe_->decode(ids, n) : decode_bytes(ids, n);
}

const std::string& Tokenizer::vocab_text() const {
  static const std::string none;
  return bpe_ ? bpe_->vocab_text() : none;
}

const std::string& Tokenizer::merges_text() const {
  static const std::string none;
  return bpe_ ? bpe_->merges_text() : none;
}

void Tokenizer::save(const std::string& dir) const {
  if (bpe_) bpe_->save(dir);
}

bool Tokenizer::same_as(const Tokenizer& other) const {
  return kind() == other.kind() && vocab_text() == other.vocab_text() &&
         merges_text() == other.merges_text();
}

std::string Tokenizer::describe() const {
  if (!bpe_) return "bytes (256 ids)";
  const std::string files =
      bpe_->format() == BpeFormat::VocabMerges ? "vocab.json + merges.txt" : "tiktoken ranks";
  return kind() + " (" + files + "), " + std::to_string(size()) + " tokens";
}

std::vector<SpecialToken> check_tokenizer(const Config& cfg, const Tokenizer& tokenizer,
                                          const std::string& name) {
  if (tokenizer.size() > cfg.model.vocab_size)
    throw InputError(name + " has " + std::to_string(tokenizer.size()) +
                     " tokens, more than model.vocab_size " + std::to_string(cfg.model.vocab_size) +
                     " (set model.vocab_size to at least " + std::to_string(tokenizer.size()) +
                     ")");
  std::vector<SpecialToken> out;
  for (const auto& [key, text] : special_tokens(cfg.data)) {
    const std::optional<int32_t> id = tokenizer.id_of(text);
    if (!id) throw InputError(key + " \"" + printable(text) + "\" is not a token of " + name);
    out.push_back({key, text, *id});
  }
  return out;
}

}  // namespace ph

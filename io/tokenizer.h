// The tokenizer of a run: bytes (token id = byte value, 256 ids) or byte-level BPE
// (io/bpe.h). A run names it with data.tokenizer; it is copied into the run directory and
// stored in every checkpoint (io/checkpoint.h: tokenizer, tokenizer_vocab, tokenizer_merges),
// so eval and sample decode with the tokenizer the model was trained with.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "io/config.h"

namespace ph {

class BpeTokenizer;

inline constexpr int kByteVocabSize = 256;

// One token per byte (0..255).
std::vector<int32_t> encode_bytes(std::string_view text);

// ids[0..n) back to bytes; an id outside [0, 256) (a padded vocabulary's unused rows)
// renders as "<id>".
std::string decode_bytes(const int32_t* ids, size_t n);

class Tokenizer {
 public:
  // The byte-level tokenizer.
  Tokenizer();
  // data.tokenizer: "" for bytes, else a BPE tokenizer's path (BpeTokenizer::load and its
  // errors).
  static Tokenizer load(const std::string& path);
  // As stored in a checkpoint: kind "bytes", "bpe" (vocab.json, merges.txt) or "tiktoken" (the
  // rank file as vocab). `origin` names the source in messages; an unknown kind is refused:
  //   ORIGIN: unknown tokenizer kind 'K' (expected bytes, bpe or tiktoken)
  static Tokenizer from_stored(const std::string& kind, const std::string& vocab,
                               const std::string& merges, const std::string& origin);

  // "bytes", "bpe" or "tiktoken" (what a checkpoint stores).
  std::string kind() const;
  bool is_bytes() const { return bpe_ == nullptr; }
  // Ids are [0, size()).
  int size() const;
  // The id of the token whose bytes are `text` (a special token), if any; bytes have none.
  std::optional<int32_t> id_of(std::string_view text) const;
  // The bytes of token `id` (0 <= id < size()): for bytes, the byte itself.
  std::string token_bytes(int32_t id) const;
  // Text as ordinary text (special tokens' texts are not recognised); decode(encode(x)) == x.
  std::vector<int32_t> encode(std::string_view text, int threads = 1) const;
  std::string decode(const int32_t* ids, size_t n) const;
  // The stored files' texts ("" for bytes; merges "" for tiktoken).
  const std::string& vocab_text() const;
  const std::string& merges_text() const;
  // Writes the tokenizer's files into dir (nothing for bytes). Throws IoError.
  void save(const std::string& dir) const;
  // Same kind and the same files, byte for byte.
  bool same_as(const Tokenizer& other) const;
  // "bytes (256 ids)", "bpe (vocab.json + merges.txt), 50257 tokens", ...
  std::string describe() const;

 private:
  std::shared_ptr<const BpeTokenizer> bpe_;  // null: bytes
};

// A special token of a config and its id.
struct SpecialToken {
  std::string key;   // "data.eot_token"
  std::string text;  // "<|endoftext|>"
  int32_t id = -1;
};

// Checks a run's tokenizer against its config and returns the special tokens with their ids.
// `name` says where the tokenizer came from ("data.tokenizer 'P'", "the checkpoint's
// tokenizer"). Throws InputError:
//   NAME has N tokens, more than model.vocab_size V (set model.vocab_size to at least N)
//   data.eot_token "<|x|>" is not a token of NAME
std::vector<SpecialToken> check_tokenizer(const Config& cfg, const Tokenizer& tokenizer,
                                          const std::string& name);

}  // namespace ph

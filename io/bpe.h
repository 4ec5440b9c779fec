// Byte-level BPE as GPT-2 defines it: text is pre-tokenized (io/pretokenizer.h), each piece's
// bytes start as one symbol per byte, and adjacent symbols merge by rank until no pair in the
// merge table remains; the leftmost of equally ranked pairs merges first. Token ids are those
// of the vocabulary. Byte strings are shown in files through GPT-2's bytes-to-unicode alphabet
// (io/byte_level.h).
//
// Two file formats load, and any byte string encodes and decodes back to itself:
//   - a directory with vocab.json (a JSON object: token in the byte-level alphabet -> id) and
//     merges.txt (an optional first line "#version: ..." then one merge "A B" per line, in
//     rank order), as GPT-2 and HF `tokenizers` write them. Pairs merge only if listed.
//   - a tiktoken rank file (one "base64(token bytes) rank" per line; ranks are the ids). As
//     tiktoken does, any two adjacent symbols whose concatenation is a token merge, with that
//     token's rank; `<|endoftext|>` is added after the last rank (GPT-2's 50256), as tiktoken's
//     gpt2 encoding defines it.
// Tokens the merges cannot produce from bytes (`<|endoftext|>` and other special tokens in
// vocab.json) are never produced by encode(): text is always encoded as ordinary text (as
// tiktoken's encode_ordinary), so a document cannot inject a special token.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ph {

enum class BpeFormat { VocabMerges, TiktokenRanks };

class BpeTokenizer {
 public:
  // Loads `path`: a directory holding vocab.json and merges.txt, or a tiktoken rank file.
  // Throws InputError naming the file, and the line (1-based) where there is one:
  //   tokenizer 'P': no such file or directory
  //   tokenizer 'P': cannot open: <strerror>        tokenizer 'F': cannot read: <strerror>
  //   tokenizer 'P': a directory needs vocab.json and merges.txt; F is missing
  //   tokenizer 'P/vocab.json' line L: <JSON syntax error>
  //   tokenizer 'P/vocab.json' line L: token "T" appears twice (first on line K)
  //   tokenizer 'P/vocab.json' line L: id I of token "T" is already token "U"
  //   tokenizer 'P/vocab.json' line L: id of token "T" must be an integer in [0, 2^31)
  //   tokenizer 'P/vocab.json': id I has no token (ids must be 0, 1, 2, ... up to the largest)
  //   tokenizer 'P/vocab.json': byte B (its symbol "c") has no token
  //   tokenizer 'P/merges.txt' line L: expected two tokens separated by one space, got "..."
  //   tokenizer 'P/merges.txt' line L: "A" is not in vocab.json
  //   tokenizer 'P/merges.txt' line L: the merge "A B" makes "AB", which is not in vocab.json
  //   tokenizer 'P/merges.txt' line L: merge "A B" appears twice (first on line K)
  //   tokenizer 'P' line L: expected "base64 rank", got "..."
  //   tokenizer 'P' line L: rank R is not the line's index I   (ranks must be 0, 1, 2, ...)
  //   tokenizer 'P' line L: token "base64" (bytes "...") appears twice (first on line K)
  //   tokenizer 'P': byte B has no rank
  // (T, U and the quoted lines are passed through printable() from io/config.h.)
  static BpeTokenizer load(const std::string& path);

  // The same from the files' contents (a checkpoint stores them); messages name
  // 'origin/vocab.json' and 'origin/merges.txt', or 'origin' for a rank file. For TiktokenRanks,
  // `merges` is empty.
  static BpeTokenizer from_text(BpeFormat format, const std::string& vocab,
                                const std::string& merges, const std::string& origin);

  BpeTokenizer(BpeTokenizer&&) noexcept;
  BpeTokenizer& operator=(BpeTokenizer&&) noexcept;
  ~BpeTokenizer();

  BpeFormat format() const;
  // Ids are [0, size()): one past the largest id (every id below it is a token).
  int size() const;
  // The id of a token given by its bytes (a special token's text, "<|endoftext|>"), if any.
  std::optional<int32_t> id_of(std::string_view token_bytes) const;
  // The bytes of token `id` (id in [0, size())).
  const std::string& token_bytes(int32_t id) const;

  // Encodes text (any bytes) as ordinary text. With threads > 1 the text is cut at
  // gpt2_safe_split points and the chunks encoded in parallel: the ids are the same for any
  // thread count. Safe to call from several threads at once: each thread keeps its own bounded
  // cache of the tokens of recent pieces (4 MiB).
  std::vector<int32_t> encode(std::string_view text, int threads = 1) const;
  // Appends the encoding of `text` to `out` (one thread; the form prepare streams through).
  // Text streamed in parts encodes as a whole only if cut at gpt2_safe_split points.
  void encode_into(std::string_view text, std::vector<int32_t>& out) const;
  // The bytes of ids[0..n); an id outside [0, size()) (a padded vocabulary's unused rows)
  // renders as "<id>". decode(encode(x)) == x for every byte string x.
  std::string decode(const int32_t* ids, size_t n) const;

  // The files this tokenizer was loaded from, byte for byte (what checkpoints embed and run
  // directories copy): vocab.json and merges.txt, or the rank file's text as vocab and an
  // empty merges.
  const std::string& vocab_text() const;
  const std::string& merges_text() const;
  // Writes the files into `dir` (created if needed): vocab.json + merges.txt, or
  // gpt2.tiktoken for a rank file; each written to a temporary and renamed. Throws IoError.
  void save(const std::string& dir) const;

 private:
  struct Impl;
  explicit BpeTokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ph

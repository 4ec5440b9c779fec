// Reading a byte-level BPE tokenizer's files (the formats of io/bpe.h) into its vocabulary and
// merge table, with every check and message that io/bpe.h lists.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ph {

// Adjacent symbols `left` and `right` merge into `result`; of the pairs present in a piece,
// the one of lowest rank merges first (the leftmost of equal ranks). Equal ranks always have
// the same result.
struct BpeMerge {
  int32_t left = 0;
  int32_t right = 0;
  int32_t result = 0;
  uint32_t rank = 0;
};

struct BpeVocab {
  std::vector<std::string> tokens;      // the bytes of token id, for every id in [0, tokens.size())
  std::array<int32_t, 256> byte_ids{};  // the token of each single byte
  std::vector<BpeMerge> merges;
  // Tokens [0, whole_piece_tokens) are also produced whole: a piece whose bytes are one of them
  // encodes as that token without merging (tiktoken's rule; 0 for vocab.json + merges.txt).
  int32_t whole_piece_tokens = 0;
};

// vocab.json + merges.txt (GPT-2 / HF `tokenizers`): a pair merges only if merges.txt lists it,
// its rank is its index in the list. Messages name `origin`/vocab.json and `origin`/merges.txt.
BpeVocab parse_vocab_merges(std::string_view vocab_json, std::string_view merges_txt,
                            const std::string& origin);

// A tiktoken rank file: token bytes with rank = id; any two tokens whose concatenation is a
// token merge with that token's rank; "<|endoftext|>" is appended after the last rank.
// Messages name `origin`.
BpeVocab parse_tiktoken_ranks(std::string_view text, const std::string& origin);

}  // namespace ph

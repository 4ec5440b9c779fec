// The texts of a byte-level BPE vocabulary's files in the GPT-2 / HF `tokenizers` format, as
// io/bpe.h reads them: vocab.json is one JSON object, token -> id in id order, every token shown
// through GPT-2's bytes-to-unicode alphabet (io/byte_level.h); merges.txt is the line
// "#version: 0.2" then one merge "A B" per line in rank order.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ph {

// tokens[id] holds the bytes of token id.
std::string gpt2_vocab_json(const std::vector<std::string>& tokens);

// Each merge is a pair of token ids (into `tokens`).
std::string gpt2_merges_txt(const std::vector<std::string>& tokens,
                            const std::vector<std::pair<int32_t, int32_t>>& merges);

}  // namespace ph

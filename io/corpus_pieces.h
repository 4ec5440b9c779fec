// Counts the GPT-2 pieces (io/pretokenizer.h) of text files, as BPE training needs them: each
// file is pre-tokenized whole (no piece crosses from one file into the next), read in blocks
// that end where a piece certainly begins, and each block is cut at such points into one part
// per thread. The pieces, and so the counts, are those of pre-tokenizing each file in one go,
// whatever the thread count and block size.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "io/piece_counts.h"

namespace ph {

struct CorpusPieceStats {
  uint64_t bytes = 0;   // bytes read
  uint64_t pieces = 0;  // pieces counted
};

// `block_bytes` is what each thread pre-tokenizes per round (memory: about threads times that;
// a block grows when it holds no point to end at). Checks that every path opens as a regular
// file before reading any. Throws InputError, with `command` ("tokenizer train") first:
//   COMMAND: input 'P': cannot open: <strerror>
//   COMMAND: input 'P': not a regular file
//   COMMAND: input 'P': cannot read: <strerror>
PieceCounts count_corpus_pieces(const std::vector<std::string>& paths, int threads,
                                size_t block_bytes, const std::string& command,
                                CorpusPieceStats* stats);

}  // namespace ph

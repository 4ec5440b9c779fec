// Trains a byte-level BPE tokenizer as GPT-2's was made: the text is pre-tokenized with
// GPT-2's pattern (io/pretokenizer.h), identical pieces are counted once with their
// frequency, and, starting from the 256 single bytes, the most frequent adjacent pair of
// symbols is merged into a new token until the vocabulary has its size.
//
// The vocabulary it makes: ids 0..255 the 256 bytes in the order of GPT-2's vocab.json (the
// bytes-to-unicode alphabet's order, so "!" is 0), then one token per merge in merge order,
// then the special tokens in the order given (so `--special "<|endoftext|>"` on a
// 50257-token vocabulary puts it at 50256, as GPT-2 has it). A pair whose bytes together spell
// a special token never merges, so no learned token equals a special one. vocab.json shows
// special tokens through the byte-level alphabet too ("<pad> x" as "<pad>Ġx").
//
// Ties are broken deterministically, whatever the thread count: among pairs of equal count
// the pair whose (left bytes, right bytes) is smallest lexicographically merges first.
// A pair merges only while its count is at least min_frequency; if no pair qualifies before
// the vocabulary is full, training stops early with a smaller vocabulary (the summary says
// so).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "io/bpe.h"

namespace ph {

struct BpeTrainOptions {
  int vocab_size = 0;          // bytes + merges + specials
  uint64_t min_frequency = 2;  // a pair merges only if it occurs at least this often
  std::vector<std::string> specials;
  int threads = 1;  // counting and pair statistics in parallel; the result does not depend on it
  // Called about once a second while merging and once at the end, with the merges done, the
  // merges wanted and the seconds since training started.
  std::function<void(int merges_done, int merges_target, double seconds)> progress;
};

struct BpeTrainResult {
  uint64_t bytes_read = 0;
  uint64_t pieces = 0;         // pre-tokenized pieces in the corpus
  uint64_t unique_pieces = 0;  // distinct pieces
  int merges = 0;              // may be fewer than requested (min_frequency)
  double seconds = 0;
};

// Trains on the concatenation of the input files (each read whole; they are not joined into
// one piece). Throws InputError:
//   tokenizer train: no input files given
//   tokenizer train: --vocab-size N is smaller than the 256 bytes plus S special token(s)
//   tokenizer train: special token "T" is given twice
//   tokenizer train: special token "T" is empty
//   tokenizer train: special token "T" is a single byte, which is already a token
//   tokenizer train: input 'P': cannot open: <strerror>      (also: not a regular file)
//   tokenizer train: the inputs are empty
// The tokenizer it returns has format VocabMerges and saves as vocab.json + merges.txt.
BpeTokenizer train_bpe(const std::vector<std::string>& inputs, const BpeTrainOptions& options,
                       BpeTrainResult* result = nullptr);

}  // namespace ph

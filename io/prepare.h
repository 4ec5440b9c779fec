// Turns text files into llm.c token shards for training (the CLI's `prepare`): byte-level, or
// through a BPE tokenizer with an end-of-text token before each document, as llm.c's data
// scripts write them.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/tokenizer.h"

namespace ph {

inline constexpr uint64_t kPrepareShardTokens = 100000000;  // 100M tokens per shard

struct PreparedText {
  uint64_t train_tokens = 0;
  uint64_t val_tokens = 0;
  uint64_t documents = 0;  // tokenized preparation: documents found (each led by the EOT)
  uint64_t input_bytes = 0;
  std::vector<std::string> train_files;  // in order
  std::vector<std::string> val_files;
};

// What a document is: each input file, or each block of lines between blank lines (lines
// that are empty or hold only spaces, tabs and '\r'; the blank lines themselves are dropped).
enum class DocSeparator { File, Blank };

struct PrepareOptions {
  double val_fraction = 0.1;
  uint64_t max_shard_tokens = kPrepareShardTokens;
  DocSeparator documents = DocSeparator::File;
  // The end-of-text token's text, written before each document; "" writes none.
  std::string eot = "<|endoftext|>";
  int threads = 1;  // encoding threads; the shards do not depend on it
};

// Byte-tokenizes `inputs` in order, as one concatenated stream of n tokens. The last
// round(n · val_fraction) tokens go to validation, the rest to training. Each split is
// written as out_dir/train.bin and out_dir/val.bin, or, when it holds more than
// max_shard_tokens tokens, as train_000.bin, train_001.bin, ... (val_000.bin, ...): the
// fewest shards of at most max_shard_tokens tokens, of balanced sizes (differing by at
// most one token, so none is a short tail). out_dir is created if needed; every shard is
// written atomically. Files of an earlier preparation that this one does not produce (say
// train_003.bin) are left alone. Inputs are streamed, never held in memory.
// Prints nothing. Every input is checked before anything is written. Throws InputError:
//   prepare: no input files given
//   prepare: val_fraction must be in (0, 1), got F
//   prepare: input 'P': cannot open: <strerror>
//   prepare: input 'P' is not a regular file
//   prepare: the inputs contain no text
//   prepare: N tokens with val_fraction F leave V for validation; need at least 2
//   prepare: N tokens with val_fraction F leave M for training; need at least 2
//   prepare: cannot create output directory 'D': <reason>
//   prepare: input 'P': read error: <strerror>
//   prepare: input 'P' changed while being read
// and the ShardWriter errors.
PreparedText prepare_text(const std::vector<std::string>& inputs, const std::string& out_dir,
                          double val_fraction, uint64_t max_shard_tokens = kPrepareShardTokens);

// The same through a BPE tokenizer: each document is encoded as ordinary text (io/bpe.h),
// preceded by the id of options.eot, and the ids are written in the shard layout of the
// tokenizer's size (io/shard.h: uint16 up to 65,536 ids, else uint32). The split into train and
// val counts tokens as above. Inputs are memory-mapped, not read into memory; the ids go
// through a temporary file in out_dir (".prepare-<pid>.ids", removed afterwards). Throws, besides
// the errors above:
//   prepare: the tokenizer has no end-of-text token "T" (name one with --eot TOKEN, or
//     --eot none)
PreparedText prepare_tokenized(const std::vector<std::string>& inputs, const std::string& out_dir,
                               const Tokenizer& tokenizer, const PrepareOptions& options);

}  // namespace ph

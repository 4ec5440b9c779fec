// Turns parallel text into pair files (the CLI's `prepare --src FILE --tgt FILE`): line i of the
// source file and line i of the target file are one pair, one sentence per line, as Marian and
// fairseq read them. Each line (without its '\n', and without a '\r' before it) is encoded with
// the tokenizer as ordinary text; special tokens are not stored (io/pair_dataset.h adds pad, bos
// and eos at batch time from the config).
#pragma once
#include <cstdint>
#include <string>

#include "io/tokenizer.h"

namespace ph {

struct PreparePairsOptions {
  double val_fraction = 0.1;  // the last round(N·F) pairs; 0: no validation file
  int threads = 1;            // encoding threads; the files do not depend on it
};

struct PreparedPairs {
  uint64_t train_pairs = 0, val_pairs = 0;
  uint64_t source_tokens = 0, target_tokens = 0;  // both splits
  uint64_t source_bytes = 0, target_bytes = 0;    // the input files' sizes
  std::string train_file, val_file;               // val_file "" when val_pairs is 0
};

// Writes out_dir/train.pairs and out_dir/val.pairs (io/pair_file.h), each atomically, creating
// out_dir if needed. A final line without '\n' counts; an empty file has no lines. Both inputs are
// checked in full before anything is written. Throws InputError:
//   prepare: input 'P': cannot open: <strerror>      (also: not a regular file; cannot map: ...)
//   prepare: --val-fraction must be in [0, 1), got F
//   prepare: 'A' has N lines but 'B' has M; parallel text needs one sentence per line in both
//   prepare: 'A' and 'B' are empty
//   prepare: 'P' line L is blank; parallel text needs a sentence on every line
//     (blank: nothing, or only spaces, tabs and '\r')
//   prepare: N pairs with --val-fraction F leave none for training
//   prepare: N pairs with --val-fraction F leave none for validation (use a larger fraction, or
//     --val-fraction 0 for no validation file)
//   prepare: cannot create output directory 'D': <reason>
// and PairWriter's IoError.
PreparedPairs prepare_pairs(const std::string& source, const std::string& target,
                            const std::string& out_dir, const Tokenizer& tokenizer,
                            const PreparePairsOptions& options);

}  // namespace ph

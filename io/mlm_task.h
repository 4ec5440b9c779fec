// BERT's synthetic tasks, byte lines where a masked byte can be recovered only from its context:
//   copies     (default) a random five-letter word written three times, "qwert qwert qwert\n"
//              (io/copies_task.h): a masked letter from the same place in the other copies
//   addition   the GPT's addition lines (io/addition_task.h), "123+456=9750\n" (the sum least
//              significant digit first): a masked digit only through the arithmetic of its line,
//              an operand digit from the sum and the other operand, a sum digit from the
//              operands and the carry (hard: a 4-layer BERT stays below 50% in minutes)
//
// generate() writes, into its directory:
//   train.bin, val.bin   the task's byte shards (its held-out split)
//   tokenizer/vocab.json, tokenizer/merges.txt
//       a byte-level BPE tokenizer without merges: ids 0..255 are the bytes (id = byte value, so
//       the byte shards are its tokens), then the special tokens in the order given (BERT's
//       [PAD] [CLS] [SEP] [MASK] by default: ids 256..259, so model.vocab_size >= 260).
// A sample is one chunk of the lines framed by [CLS] and [SEP] (io/mlm_dataset.h); with
// seq_len - 2 (one segment) or (seq_len - 3) / 2 (each of two segments) a multiple of the line
// length (line_length(): 18 for copies, 3 * digits + 4 for addition), every chunk starts at a
// line boundary and holds whole lines.
//
// Whole-word masking (data.mlm.whole_word, io/mlm_masking.h) sees a copies line as the words
// "qwert", " qwert", " qwert", "\n" (a word starts at a space, after a newline or after a special
// token), so it masks whole copies; an addition line has no space and is one word.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/addition_task.h"
#include "io/config.h"

namespace ph {

struct MlmTask {
  Task task = Task::kCopies;  // copies or addition
  AdditionTask addition;      // the addition lines' digits (task addition)

  int line_length() const;

  // vocab.json of the bytes followed by `specials` (texts; none of them one byte long).
  static std::string vocab_json(const std::vector<std::string>& specials);

  // Writes the files above into dir (created if needed), train_problems and val_problems lines;
  // files that already hold their content are left untouched. Call it from one process. Throws
  // the task's generate() errors (CopiesTask, AdditionTask), InputError for a special token that is
  // empty, one byte long or given twice:
  //   MLM task: special token "T" must be at least two bytes and unique
  // std::invalid_argument for task translation (no task of BERT), and IoError when a write
  // fails.
  void generate(const std::string& dir, uint64_t seed, int train_problems, int val_problems,
                const std::vector<std::string>& specials) const;
};

}  // namespace ph

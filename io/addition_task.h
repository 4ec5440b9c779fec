// The default synthetic dataset: multi-digit addition, one problem per line, byte tokens.
//
//   line(a, b) = A "+" B "=" R "\n"      (3·digits + 4 bytes)
//
// A and B are a and b zero-padded to `digits` digits; R is a + b zero-padded to digits + 1
// digits and written REVERSED (least significant digit first), the order in which a
// left-to-right model can compute the carries. digits = 4: line(1234, 987) =
// "1234+0987=12220\n" (1234 + 987 = 2221 → "02221" → reversed "12220").
//
// Not solvable by memorisation: a problem belongs to the validation split iff a fixed hash
// of the unordered pair {a, b} is 0 mod 10, so no validation problem (nor its commuted
// form b + a) ever appears in training, whatever the seed. Not solvable by bigram
// statistics: every answer digit depends on two operand digits and a carry.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ph {

struct TaskScore {
  int64_t correct = 0;
  int64_t total = 0;
};

struct AdditionProblem {
  long a = 0;
  long b = 0;
};

struct AdditionTask {
  int digits = 3;  // operand digits, 1..18 (the sum must fit in a long)

  long max_operand() const;  // 10^digits - 1
  int line_length() const { return 3 * digits + 4; }
  std::string prompt(long a, long b) const;  // "1234+0987="
  std::string line(long a, long b) const;    // "1234+0987=12220\n"

  // Whether (a, b) is a validation problem (symmetric in a and b; independent of the seed
  // and of digits).
  static bool is_val(long a, long b);

  // The first train_problems training and val_problems validation problems of the Philox
  // stream of `seed`: pairs (a, b) are drawn uniformly from [0, 10^digits)² and routed by
  // is_val; duplicates are possible (within either split).
  void draw(uint64_t seed, int train_problems, int val_problems,
            std::vector<AdditionProblem>& train, std::vector<AdditionProblem>& val) const;

  // Writes dir/train.bin and dir/val.bin (llm.c shards of byte tokens: the lines of draw()
  // concatenated), creating dir if needed. Files that already hold exactly that content are
  // left untouched; anything else is replaced atomically. Call it from one process.
  // Throws InputError:
  //   addition task: digits must be in [1, 18], got D
  //   addition task: train_problems must be >= 1, got N      (same for val_problems)
  //   addition task: N problems of L bytes exceed a shard's 2147483647 tokens
  //   addition task: cannot create directory 'D': <reason>
  // and the ShardWriter errors.
  void generate(const std::string& dir, uint64_t seed, int train_problems, int val_problems) const;

  // The task metric on one batch. inputs, targets, predictions: [N, T]; predictions are
  // the model's argmax at every position under teacher forcing. For every '=' at position
  // t of an input row, the answer span is positions t .. e whose TARGETS are the answer
  // digits and the '\n' ending the line (targets[e] is that '\n'). A problem is counted
  // only if it lies wholly inside the row: its span ends inside the row (e < T) and its
  // prompt starts inside it (t >= 2·digits + 1; a problem whose operands are cut off by
  // the window start cannot be answered). It is correct iff predictions == targets on the
  // whole span. Returns {correct, counted}.
  //
  // This is exact match under greedy decoding from the same preceding context: if every
  // teacher-forced argmax on the span equals its target, greedy decoding conditions each
  // step on exactly the teacher-forced prefix and so reproduces the target token by token,
  // '\n' included; conversely at the first position where the argmax differs, greedy
  // decoding has so far produced the true prefix, emits that wrong token, and the answer
  // is wrong. One teacher-forced forward pass therefore scores every problem in the batch.
  TaskScore score(const int32_t* inputs, const int32_t* targets, const int32_t* predictions, int N,
                  int T) const;

  // Reads a sampled answer: `generated` is the text after the '=', which must start with
  // exactly digits + 1 decimal digits followed by '\n' or the end of the text. On success
  // stores the (un-reversed) sum in value and returns true; otherwise returns false.
  bool parse_answer(std::string_view generated, long& value) const;
};

}  // namespace ph

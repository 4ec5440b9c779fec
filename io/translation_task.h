// The encoder-decoder's default synthetic task: numbers written in digits, translated into
// English words, one pair per line.
//
//   source  "427315"
//   target  "four hundred twenty-seven thousand three hundred fifteen"
//
// Numbers are drawn uniformly from [0, 10^digits). Words are American English without "and";
// tens and units join with a hyphen ("ninety-nine"); zero groups are left out ("two million
// five", "one thousand"); 0 is "zero". The decoder cannot produce a target without attending to
// the source: the target is a function of the source's digits alone, and no two numbers share a
// target.
//
// Held out: a number belongs to the validation split iff a fixed hash of it (keyed by
// hash_name("translation.validation"), independent of the seed and of digits) is 0 mod 10, so no
// validation number ever appears in training.
//
// generate() writes, into its directory:
//   train.src, train.tgt, val.src, val.tgt   the parallel text (one sentence per line)
//   tokenizer/vocab.json, tokenizer/merges.txt
//       a byte-level BPE tokenizer trained (io/bpe_trainer.h) on train.tgt, with the special
//       tokens "<pad>", "<s>", "</s>" as its last three ids. Trained on the words only, so digits
//       are never merged (every digit is one source token); merging stops once every word is one
//       token, below kMaxVocabSize ids (about 360 for 6 digits), so model.vocab_size 384 holds it.
//   train.pairs, val.pairs   the text encoded with that tokenizer (io/pair_file.h)
// All of it is a deterministic function of (digits, seed, counts).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/addition_task.h"

namespace ph {

struct TranslationTask {
  static constexpr int kMaxVocabSize = 384;  // the tokenizer's at most: bytes, merges, specials
  static constexpr const char* kPad = "<pad>";
  static constexpr const char* kBos = "<s>";
  static constexpr const char* kEos = "</s>";

  int digits = 6;  // numbers in [0, 10^digits), digits in 1..9

  long max_number() const;  // 10^digits - 1

  // The English words of n (0 <= n < 10^9).
  static std::string words(long n);
  // Whether n is a validation number (independent of the seed and of digits).
  static bool is_val(long n);

  // The first train_pairs training and val_pairs validation numbers of the Philox stream
  // (seed, rng::kTranslationA), routed by is_val; duplicates are possible within a split.
  void draw(uint64_t seed, int train_pairs, int val_pairs, std::vector<long>& train,
            std::vector<long>& val) const;

  // Writes the files above into dir (created if needed). A file that already holds exactly its
  // content is left untouched; anything else is replaced atomically. Call it from one process.
  // Throws InputError:
  //   translation task: digits must be in [1, 9], got D
  //   translation task: train_pairs must be >= 1, got N      (same for val_pairs)
  //   translation task: cannot create directory 'D': <reason>
  // and IoError when a write fails.
  void generate(const std::string& dir, uint64_t seed, int train_pairs, int val_pairs) const;

  // Exact match on one batch: targets and predictions [N, T] (the argmax at every position under
  // teacher forcing). A row counts if it has any target other than ignore_index; it is correct
  // iff the prediction equals the target at every such position (the eos included). That is
  // exact match under greedy decoding (the argument of AdditionTask::score).
  static TaskScore score(const int32_t* targets, const int32_t* predictions, int N, int T,
                         int32_t ignore_index);
};

}  // namespace ph

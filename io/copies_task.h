// BERT's default synthetic task: one random word of five lowercase letters written three times,
// one line each:
//
//   line(w) = W " " W " " W "\n"      (18 bytes: "qwert qwert qwert\n")
//
// A masked letter can be read from the same place in the other two copies (unless both are
// masked as well), so it is predictable from the context and only from it: alone, a letter is
// uniform. Words are indices in [0, 26^5), their letters the base-26 digits, most significant
// first ("aaaaa" is 0, "aaaab" is 1).
//
// Not solvable by memorisation: a word belongs to the validation split iff a hash of it keyed by
// hash_name("copies.val") is 0 mod 10, so no validation word ever appears in training, whatever
// the seed.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ph {

struct CopiesTask {
  static constexpr int kLetters = 5;
  static constexpr int kCopies = 3;
  static constexpr int kLineLength = kCopies * (kLetters + 1);  // 18
  static constexpr uint32_t kWords = 26u * 26u * 26u * 26u * 26u;

  static std::string word(uint32_t w);  // "qwert"; w < kWords
  static std::string line(uint32_t w);  // "qwert qwert qwert\n"

  // Whether word w is a validation word (independent of the seed).
  static bool is_val(uint32_t w);

  // The first train_lines training and val_lines validation words of the stream of `seed`
  // (rng::kCopiesA): words are drawn uniformly from [0, kWords), one Philox word per try (the
  // top partial block rejected: exactly uniform), and routed by is_val; duplicates are possible
  // (within either split).
  static void draw(uint64_t seed, int train_lines, int val_lines, std::vector<uint32_t>& train,
                   std::vector<uint32_t>& val);

  // Writes dir/train.bin and dir/val.bin (llm.c shards of byte tokens: the lines of draw()
  // concatenated), creating dir if needed. Files that already hold exactly that content are left
  // untouched; anything else is replaced atomically. Call it from one process. Throws InputError:
  //   copies task: train_problems must be >= 1, got N      (same for val_problems)
  //   copies task: N lines of 18 bytes exceed a shard's 2147483647 tokens
  //   copies task: cannot create directory 'D': <reason>
  // and the ShardWriter errors.
  static void generate(const std::string& dir, uint64_t seed, int train_lines, int val_lines);
};

}  // namespace ph

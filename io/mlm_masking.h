// BERT's masked-LM masks: which positions of a sequence are predicted, and what the model sees
// there instead. A pure function of (seed, global sample index s, the sequence): the same on
// every layout and after a resume; s also fixes the epoch (e = s div samples per epoch), so a
// sequence seen again in a later epoch gets fresh masks (dynamic masking, as RoBERTa).
//
// The rule, for a sequence tokens[0..n) (n real tokens, padding excluded):
//   candidates  the positions whose token is not special (io: [CLS], [SEP], [PAD], [MASK] and
//               the other configured special tokens); c of them.
//   units       without whole-word masking each candidate is a unit; with it a unit is a word:
//               a maximal run of candidates that starts at a word start and holds no other.
//               Position t starts a word if t is 0 or follows a special token, or the text of
//               its token begins with whitespace (' ', \t, \n, \v, \f, \r: byte-level BPE's "Ġ"
//               and "Ċ" tokens; for bytes, the space or newline itself), or the text of the token
//               before it ends with a newline. So "ab cd\nef" in bytes is the words "ab", " cd",
//               "\n", "ef", as GPT-2's BPE splits it into "ab", "Ġcd", "Ċ", "ef".
//   count       num = min(P, max(1, floor(c * prob + 0.5))) predictions (0 when c = 0), as
//               Google's create_pretraining_data (which rounds len * prob over all tokens).
//   choice      every position t draws four words w0..w3 = philox4x32(counter = (s mod 2^32,
//               s div 2^32, rng::kMlmMasksA, t), key = seed) (= philox_bits(seed, kMlmMasksA,
//               t, 4s + k) for word k; kernels/common/rng_streams.h). Units are visited in
//               increasing (w0 of their first position, first position), a random order; a unit
//               is taken if it fits in what is left of num (else skipped, as Google's), until num
//               positions are taken or no unit is left (whole words may then leave fewer).
//   replacement each taken position t, with d = floor(w1 * 10 / 2^32): d < 8 ([MASK], 80%),
//               d = 8 (a random ordinary token, 10%: the id r-th in increasing order among the
//               non-special ids of the vocabulary, r = floor(((w2 << 32) | w3) * K / 2^64) for
//               K such ids; uniform up to K / 2^64), d = 9 (unchanged, 10%).
//   slots       the taken positions in increasing order fill slots 0 .. num-1 (position and
//               original token); slots num .. P-1 hold position 0 and the ignore index.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ph {

class Tokenizer;

// floor(bits * bound / 2^64): 64 random bits scaled to [0, bound), uniform up to bound / 2^64.
uint64_t scale_bits(uint64_t bits, uint64_t bound);

struct MlmMaskingOptions {
  float prob = 0.15f;         // data.mlm.prob, in (0, 1]
  int predictions = 0;        // P, >= 1 (DataConfig::mlm_predictions)
  bool whole_word = false;    // data.mlm.whole_word
  int32_t mask = -1;          // the [MASK] id
  int32_t ignore_index = -1;  // targets of unused slots (the loss's kIgnoreIndex)
};

// Per token id: whether it is special, and the two word-boundary properties of its text.
enum MlmTokenClass : uint8_t {
  kMlmSpecial = 1,    // never predicted, never drawn as a random replacement
  kMlmWordStart = 2,  // its text begins with whitespace
  kMlmLineEnd = 4,    // its text ends with a newline
};

// The classes of every id of `tokenizer` ([tokenizer.size()]), `specials` (ids) marked special.
std::vector<uint8_t> mlm_token_classes(const Tokenizer& tokenizer,
                                       const std::vector<int32_t>& specials);

class MlmMasking {
 public:
  // classes: [V], one per id of the vocabulary (ids past it, which a tokenizer cannot produce,
  // count as ordinary tokens that start no word and are never drawn). Throws
  // std::invalid_argument for options out of range (the config checks them first) or a
  // vocabulary with no ordinary token.
  MlmMasking(const MlmMaskingOptions& options, std::vector<uint8_t> classes);

  int predictions() const { return o_.predictions; }
  const MlmMaskingOptions& options() const { return o_; }

  // Masks tokens[0..n) in place for sample s and fills positions[0..P) and targets[0..P) as
  // the rule above. Returns num. Allocates nothing once its scratch has grown to n; not
  // thread-safe (one instance per thread).
  int apply(uint64_t seed, uint64_t sample, int32_t* tokens, int n, int32_t* positions,
            int32_t* targets);

 private:
  struct Unit {
    uint32_t key;
    int32_t begin, size;
  };
  uint8_t class_of(int32_t id) const;
  int32_t random_ordinary(uint64_t bits) const;

  MlmMaskingOptions o_;
  std::vector<uint8_t> classes_;
  std::vector<int32_t> specials_;  // sorted special ids below V
  uint64_t ordinary_ = 0;          // K: the non-special ids below V
  std::vector<Unit> units_;        // scratch
  std::vector<uint8_t> taken_;     // scratch, [n]
};

}  // namespace ph

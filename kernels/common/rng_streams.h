// The registry of every use of the counter-based generator (kernels/common/philox.h). A draw is
// philox4x32(counter = (index lo, index hi, a, b), key = run seed): the element index fills the
// first two counter words, and each use of the generator owns a set of (a, b) pairs, listed
// here and nowhere else, so that no two uses can ever draw the same bits.
//
//   use                 a                              b                  index
//   parameter init      hash_name(parameter name)      kInitB             element (row-major)
//   dropout             optimizer step (< kMaxSteps)   dropout_site(...)  element (DropoutBlock,
//                                                                         AttentionCoords)
//   data order          kShuffleA                      epoch              draw counter
//   synthetic task      kAdditionA                     0                  draw counter
//   translation task    kTranslationA                  0                  draw counter
//   copies task         kCopiesA                       0                  draw counter
//   MLM masks           kMlmMasksA                     position t         4 * sample + word
//   MLM segments        kMlmSegmentsA                  0                  4 * sample + word
//   sampling            kSamplingA                     0                  prompt stream * 2^32
//                                                                         + generated position
//
// The MLM streams (io/mlm_masking.h, io/mlm_dataset.h) key each draw by the global sample index
// s (which also fixes the epoch) and, for masks, the position t in the sequence: one Philox call
// (four words) per (s, t), or per s for the segment choices.
//
// Why they are disjoint: dropout sites are never 0 and never kInitB, and steps stay below
// kMaxSteps, under every other `a` (static_assert below); sampling, the tasks (addition,
// translation, copies) and the MLM segments have b = 0, which no site and not kInitB equals, and
// distinct a (static_assert below, over every `a` of this table); the MLM masks have a
// `a` of their own; init has b = kInitB, which only data order (at epoch kInitB) and the MLM masks
// (at position kInitB) could also have, and no parameter name hashes to kShuffleA or kMlmMasksA.
// The model tests (tests/test_model_rng_streams.cpp) check each of these for the names and sites in
// use. The held-out split of a synthetic task is no stream of the run: a hash of the problem keyed
// by hash_name("addition.val") (io/addition_task.cpp), hash_name("translation.validation")
// (io/translation_task.cpp) or hash_name("copies.val") (io/copies_task.cpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <iterator>

#include "kernels/common/philox.h"

namespace ph::rng {

inline constexpr uint32_t kInitB = 0x1A17u;
inline constexpr uint32_t kSamplingA = 0x5A3Du;
inline constexpr uint32_t kShuffleA = hash_name("data.shuffle");
inline constexpr uint32_t kAdditionA = hash_name("addition.problems");
inline constexpr uint32_t kTranslationA = hash_name("translation.problems");
inline constexpr uint32_t kCopiesA = hash_name("copies.words");
inline constexpr uint32_t kMlmMasksA = hash_name("mlm.masks");
inline constexpr uint32_t kMlmSegmentsA = hash_name("mlm.segments");
// train.max_steps is limited to this (io/config.cpp), so a dropout `a` is below it.
inline constexpr uint32_t kMaxSteps = 1u << 30;
static_assert(kShuffleA >= kMaxSteps && kAdditionA >= kMaxSteps && kTranslationA >= kMaxSteps &&
              kCopiesA >= kMaxSteps && kMlmMasksA >= kMaxSteps && kMlmSegmentsA >= kMaxSteps);
// No two uses share their `a` (those at b = 0 need it; the rest keeps the argument simple).
inline constexpr uint32_t kStreamsA[] = {kSamplingA, kShuffleA,  kAdditionA,   kTranslationA,
                                         kCopiesA,   kMlmMasksA, kMlmSegmentsA};
static_assert(
    [] {
      for (size_t i = 0; i < std::size(kStreamsA); ++i)
        for (size_t j = 0; j < i; ++j)
          if (kStreamsA[i] == kStreamsA[j]) return false;
      return true;
    }(),
    "two generator streams share their `a`");

// Dropout sites (the `b` word of dropout, DropoutSpec::site).
//
// Embedding sites are small constants. A transformer stack's site of layer l is
//   16 + stack * kStackSites + 4 * l + slot
// with slot 0 the attention probabilities, 1 the attention output, 2 the FFN output (the
// residual branches). The cross-attention of an encoder-decoder is its own stack (slot 0:
// probabilities, 1: output). Slot 3 is never used, which keeps kInitB (= 16 + 4 * 1665 + 3)
// out of reach. The GPT decoder is stack kMain.
inline constexpr int kMaxLayers = 4096;
inline constexpr uint32_t kStackSites = 4u * kMaxLayers;

enum class DropoutStack : uint32_t { kMain = 0, kEncoder = 1, kCross = 2 };
enum class DropoutSlot : uint32_t { kAttentionProbs = 0, kAttentionOut = 1, kFfnOut = 2 };

inline constexpr uint32_t kSiteEmbed = 1;         // the decoder's (GPT's) embedding output
inline constexpr uint32_t kSiteEncoderEmbed = 2;  // an encoder's embedding output

inline constexpr uint32_t dropout_site(DropoutStack stack, int layer, DropoutSlot slot) {
  return 16u + static_cast<uint32_t>(stack) * kStackSites + 4u * static_cast<uint32_t>(layer) +
         static_cast<uint32_t>(slot);
}

}  // namespace ph::rng

#include "io/bpe_trainer.h"

#include <chrono>
#include <set>
#include <utility>

#include "io/bpe_merge_learner.h"
#include "io/bpe_vocab_files.h"
#include "io/byte_level.h"
#include "io/config.h"
#include "io/corpus_pieces.h"
#include "parallel/errors.h"

namespace ph {

namespace {

const std::string kCommand = "tokenizer train";
// Bytes each thread pre-tokenizes per round.
constexpr size_t kBlockBytes = size_t{4} << 20;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void check_options(const std::vector<std::string>& inputs, const BpeTrainOptions& options) {
  if (inputs.empty()) throw InputError(kCommand + ": no input files given");
  std::set<std::string> seen;
  for (const std::string& s : options.specials) {
    if (s.empty()) throw InputError(kCommand + ": special token \"\" is empty");
    if (s.size() == 1) {
      throw InputError(kCommand + ": special token \"" + printable(s) +
                       "\" is a single byte, which is already a token");
    }
    if (!seen.insert(s).second) {
      throw InputError(kCommand + ": special token \"" + printable(s) + "\" is given twice");
    }
  }
  const long needed = 256 + static_cast<long>(options.specials.size());
  if (options.vocab_size < needed) {
    throw InputError(kCommand + ": --vocab-size " + std::to_string(options.vocab_size) +
                     " is smaller than the 256 bytes plus " +
                     std::to_string(options.specials.size()) + " special token(s)");
  }
}

// The distinct pieces of two bytes or more as words of byte tokens (ids in GPT-2's byte order);
// a single byte has no pair to merge.
BpeWords words_of(const PieceCounts& pieces) {
  const std::array<uint8_t, 256>& order = gpt2_byte_order();
  std::array<uint32_t, 256> id_of{};
  for (uint32_t id = 0; id < 256; ++id) id_of[order[id]] = id;
  BpeWords words;
  std::vector<uint32_t> symbols;
  pieces.for_each([&](std::string_view piece, uint64_t count) {
    if (piece.size() < 2) return;
    symbols.clear();
    for (const char c : piece) symbols.push_back(id_of[static_cast<uint8_t>(c)]);
    words.add(symbols.data(), symbols.size(), count);
  });
  return words;
}

}  // namespace

BpeTokenizer train_bpe(const std::vector<std::string>& inputs, const BpeTrainOptions& options,
                       BpeTrainResult* result) {
  const auto start = std::chrono::steady_clock::now();
  check_options(inputs, options);

  CorpusPieceStats stats;
  uint64_t unique_pieces = 0;
  BpeWords words;
  {
    const PieceCounts pieces =
        count_corpus_pieces(inputs, options.threads, kBlockBytes, kCommand, &stats);
    if (stats.bytes == 0) throw InputError(kCommand + ": the inputs are empty");
    unique_pieces = pieces.size();
    words = words_of(pieces);
  }

  std::vector<std::string> initial;
  for (const uint8_t b : gpt2_byte_order()) initial.emplace_back(1, static_cast<char>(b));
  BpeMergeOptions merge_options;
  merge_options.max_new_tokens =
      options.vocab_size - 256 - static_cast<int>(options.specials.size());
  merge_options.min_frequency = options.min_frequency;
  merge_options.threads = options.threads;
  merge_options.reserved = options.specials;
  if (options.progress) {
    merge_options.progress = [&](int done, int target, double) {
      options.progress(done, target, seconds_since(start));
    };
  }
  BpeLearned learned = learn_bpe_merges(std::move(words), std::move(initial), merge_options);

  std::vector<std::pair<int32_t, int32_t>> merges;
  merges.reserve(learned.merges.size());
  for (const LearnedMerge& m : learned.merges) merges.emplace_back(m.left, m.right);
  std::vector<std::string>& tokens = learned.tokens;
  tokens.insert(tokens.end(), options.specials.begin(), options.specials.end());
  BpeTokenizer tokenizer =
      BpeTokenizer::from_text(BpeFormat::VocabMerges, gpt2_vocab_json(tokens),
                              gpt2_merges_txt(tokens, merges), "trained tokenizer");
  if (result) {
    result->bytes_read = stats.bytes;
    result->pieces = stats.pieces;
    result->unique_pieces = unique_pieces;
    result->merges = static_cast<int>(merges.size());
    result->seconds = seconds_since(start);
  }
  return tokenizer;
}

}  // namespace ph

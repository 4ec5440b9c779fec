#include "io/mlm_task.h"

#include <algorithm>
#include <stdexcept>

#include "io/bpe.h"
#include "io/bpe_vocab_files.h"
#include "io/config.h"
#include "io/copies_task.h"
#include "io/tokenizer.h"

namespace ph {

int MlmTask::line_length() const {
  return task == Task::kCopies ? CopiesTask::kLineLength : addition.line_length();
}

std::string MlmTask::vocab_json(const std::vector<std::string>& specials) {
  std::vector<std::string> tokens;
  tokens.reserve(static_cast<size_t>(kByteVocabSize) + specials.size());
  for (int b = 0; b < kByteVocabSize; ++b) tokens.emplace_back(1, static_cast<char>(b));
  for (const std::string& s : specials) {
    if (s.size() < 2 || std::count(specials.begin(), specials.end(), s) > 1)
      throw InputError("MLM task: special token \"" + printable(s) +
                       "\" must be at least two bytes and unique");
    tokens.push_back(s);
  }
  return gpt2_vocab_json(tokens);
}

void MlmTask::generate(const std::string& dir, uint64_t seed, int train_problems, int val_problems,
                       const std::vector<std::string>& specials) const {
  const std::string vocab = vocab_json(specials);
  if (task == Task::kCopies)
    CopiesTask::generate(dir, seed, train_problems, val_problems);
  else if (task == Task::kAddition)
    addition.generate(dir, seed, train_problems, val_problems);
  else
    throw std::invalid_argument("MLM task: " + name_of(task) + " is no task of BERT");
  const std::string tok_dir = dir + "/tokenizer";
  const BpeTokenizer tokenizer =
      BpeTokenizer::from_text(BpeFormat::VocabMerges, vocab, gpt2_merges_txt({}, {}), tok_dir);
  try {
    const BpeTokenizer old = BpeTokenizer::load(tok_dir);
    if (old.vocab_text() == tokenizer.vocab_text() && old.merges_text() == tokenizer.merges_text())
      return;
  } catch (const InputError&) {
    // absent or not this task's: written below
  }
  tokenizer.save(tok_dir);
}

}  // namespace ph

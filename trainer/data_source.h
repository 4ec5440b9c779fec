// Where a run's samples come from: the shards (GPT, BERT) or pair files (encoder-decoder) named
// by data.train / data.val, or, when the config names none, the family's synthetic task generated
// into <run.dir>/data: addition for the GPT, translation (with its own tokenizer) for the
// encoder-decoder, addition lines with a tokenizer of the bytes and BERT's special tokens for
// BERT (io/mlm_task.h).
#pragma once
#include <memory>
#include <optional>
#include <string>

#include "io/addition_task.h"
#include "io/config.h"
#include "io/tokenizer.h"
#include "io/translation_task.h"
#include "trainer/sample_source.h"

namespace ph {

struct DataSource {
  std::unique_ptr<SampleSource> train;
  std::unique_ptr<SampleSource> val;           // null when the config names no validation data
  std::optional<AdditionTask> task;            // the GPT's synthetic task (metric, prompts)
  std::optional<TranslationTask> translation;  // the encoder-decoder's synthetic task
};

// Writes the synthetic task's files into <run.dir>/data when the config uses it and they are
// not there yet. One process calls it (the others wait), before open_data.
void generate_task_data(const Config& cfg);

// The tokenizer of the run's data: data.tokenizer, or for the translation and BERT tasks the one
// they write into <run.dir>/data/tokenizer (after generate_task_data). "" = bytes.
std::string data_tokenizer_path(const Config& cfg);
// Whether the tokenizer is a task's (it exists only once the task is generated).
bool tokenizer_from_task(const Config& cfg);

// Opens and validates the datasets (every shard or pair file). `val_override`, if non-empty,
// replaces the validation files (polyhead eval --data). `need_train` false skips the training
// files. The encoder-decoder's pairs take their pad, bos and eos ids from `tokenizer`, BERT's
// samples their special ids and word boundaries (data.mlm.whole_word).
DataSource open_data(const Config& cfg, bool need_train, const std::string& val_override = "",
                     const Tokenizer& tokenizer = Tokenizer());

}  // namespace ph

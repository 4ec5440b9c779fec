// The samples a run prints when it ends: answers to held-out problems of the synthetic task
// (decoded greedily: one right answer), translations of held-out sources, BERT's fill-ins of
// held-out masked sequences, or text from the configured prompt.
#pragma once
#include "io/addition_task.h"
#include "io/config.h"
#include "io/tokenizer.h"
#include "model/model.h"
#include "parallel/communicator.h"
#include "trainer/sample_source.h"
#include "trainer/translator.h"

namespace ph {

// Held-out problems of the task, answered greedily, each marked ok or WRONG, and the count.
void print_task_samples(Model& model, Communicator* tp_host, const AdditionTask& task,
                        const Config& cfg);
// sample.count samples of sample.max_tokens tokens from sample.prompt (a newline if empty),
// encoded and decoded with the run's tokenizer; a sample ends early at data.eot_token.
void print_text_samples(Model& model, Communicator* tp_host, const Config& cfg,
                        const Tokenizer& tokenizer);

// The first sample.count held-out pairs translated greedily: source, translation, reference,
// each marked ok or WRONG.
void print_translation_samples(Translator& translator, const PairDataset& val, const Config& cfg);

// BERT: the first sample.count held-out sequences with the model's fill-ins: each predicted
// position shown as [guess] when right and [guess|original] when wrong, then the count right.
void print_mlm_samples(Model& model, Communicator* tp_host, SampleSource& val, const Config& cfg,
                       const Tokenizer& tokenizer);

// The token that ends generation: data.eot_token's id in the tokenizer, or -1.
int32_t stop_token_of(const Config& cfg, const Tokenizer& tokenizer);

}  // namespace ph

// The samples a run prints when it ends: answers to held-out problems of the synthetic task
// (decoded greedily: one right answer), or text from the configured prompt.
#pragma once
#include "io/addition_task.h"
#include "io/config.h"
#include "model/model.h"
#include "parallel/communicator.h"

namespace ph {

// Held-out problems of the task, answered greedily, each marked ok or WRONG, and the count.
void print_task_samples(Model& model, Communicator* tp_host, const AdditionTask& task,
                        const Config& cfg);
// sample.count samples of sample.max_tokens tokens from sample.prompt (a newline if empty).
void print_text_samples(Model& model, Communicator* tp_host, const Config& cfg);

}  // namespace ph

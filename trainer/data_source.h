// Where a run's tokens come from: the shards named by data.train / data.val, or, when the
// config names none, the synthetic addition task generated into <run.dir>/data.
#pragma once
#include <memory>
#include <optional>
#include <string>

#include "io/addition_task.h"
#include "io/config.h"
#include "io/dataset.h"

namespace ph {

struct DataSource {
  std::unique_ptr<TokenDataset> train;
  std::unique_ptr<TokenDataset> val;  // null when the config names no validation data
  std::optional<AdditionTask> task;   // set for the synthetic task (task metric, prompts)
};

// Writes the synthetic task's shards into <run.dir>/data when the config uses it and they are
// not there yet. One process calls it (the others wait), before open_data.
void generate_task_data(const Config& cfg);

// Opens and validates the datasets (every shard). `val_override`, if non-empty, replaces the
// validation shards (polyhead eval --data). `need_train` false skips the training shards.
DataSource open_data(const Config& cfg, bool need_train, const std::string& val_override = "");

}  // namespace ph

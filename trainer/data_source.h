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

// Opens (and for the synthetic task first generates) the datasets; validates every shard.
// `val_override`, if non-empty, replaces the validation shards (polyhead eval --data).
// `need_train` false skips the training shards (eval, sampling).
DataSource open_data(const Config& cfg, bool need_train, const std::string& val_override = "");

}  // namespace ph

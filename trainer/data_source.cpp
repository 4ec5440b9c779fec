#include "trainer/data_source.h"

namespace ph {

DataSource open_data(const Config& cfg, bool need_train, const std::string& val_override) {
  DataSource ds;
  const int V = cfg.model.vocab_size, T = cfg.model.seq_len;
  std::vector<std::string> train = cfg.data.train, val = cfg.data.val;
  if (train.empty()) {
    AdditionTask task(cfg.data.task_digits);
    const std::string dir = cfg.run.dir + "/data";
    // Generated only when something will read it (eval --data reads its own shard).
    if (need_train || (val.empty() && val_override.empty()))
      task.generate(dir, cfg.train.seed, cfg.data.task_train_problems, cfg.data.task_val_problems);
    train = {dir + "/train.bin"};
    if (val.empty()) val = {dir + "/val.bin"};
    ds.task = task;
  }
  if (!val_override.empty()) val = {val_override};
  if (need_train)
    ds.train = std::make_unique<TokenDataset>(train, V, T, cfg.data.shuffle, cfg.train.seed);
  // Evaluation always reads the same windows in order.
  if (!val.empty()) ds.val = std::make_unique<TokenDataset>(val, V, T, false, 0);
  return ds;
}

}  // namespace ph

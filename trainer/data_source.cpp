#include "trainer/data_source.h"

namespace ph {

namespace {

std::string task_dir(const Config& cfg) {
  return cfg.run.dir + "/data";
}

}  // namespace

void generate_task_data(const Config& cfg) {
  if (!cfg.data.train.empty()) return;
  AdditionTask(cfg.data.task_digits)
      .generate(task_dir(cfg), cfg.train.seed, cfg.data.task_train_problems,
                cfg.data.task_val_problems);
}

DataSource open_data(const Config& cfg, bool need_train, const std::string& val_override) {
  DataSource ds;
  const int V = cfg.model.vocab_size, T = cfg.model.seq_len;
  std::vector<std::string> train = cfg.data.train, val = cfg.data.val;
  if (train.empty()) {
    train = {task_dir(cfg) + "/train.bin"};
    if (val.empty()) val = {task_dir(cfg) + "/val.bin"};
    ds.task = AdditionTask(cfg.data.task_digits);
  }
  if (!val_override.empty()) val = {val_override};
  if (need_train)
    ds.train = std::make_unique<TokenDataset>(train, V, T, cfg.data.shuffle, cfg.train.seed);
  // Evaluation always reads the same windows in order.
  if (!val.empty()) ds.val = std::make_unique<TokenDataset>(val, V, T, false, 0);
  return ds;
}

}  // namespace ph

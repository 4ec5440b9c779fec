#include "trainer/data_source.h"

#include <cstdio>

#include "model/vocab_parallel_loss.h"

namespace ph {

namespace {

std::string task_dir(const Config& cfg) {
  return cfg.run.dir + "/data";
}

bool encdec(const Config& cfg) {
  return cfg.model.type == ModelType::kEncDec;
}

int32_t special_id(const Tokenizer& tokenizer, const std::string& key, const std::string& text) {
  const std::optional<int32_t> id = tokenizer.id_of(text);
  if (!id) throw InputError(key + " \"" + printable(text) + "\" is not a token of the tokenizer");
  return *id;
}

std::unique_ptr<SampleSource> open_pairs(const Config& cfg, const std::vector<std::string>& files,
                                         const Tokenizer& tokenizer, bool training) {
  PairDatasetOptions o;
  o.source_len = cfg.model.source_len();
  o.target_len = cfg.model.seq_len;
  o.vocab_size = cfg.model.vocab_size;
  o.pad = special_id(tokenizer, "data.pad_token", cfg.data.pad_token);
  o.bos = special_id(tokenizer, "data.bos_token", cfg.data.bos_token);
  o.eos = special_id(tokenizer, "data.eos_token", cfg.data.eos_token);
  o.ignore_index = kIgnoreIndex;
  o.crop = cfg.data.crop;
  // Evaluation always reads the same pairs in order.
  o.shuffle = training && cfg.data.shuffle;
  o.seed = training ? cfg.train.seed : 0;
  auto data = std::make_unique<PairDataset>(files, o);
  if (data->dropped() > 0 || data->cropped() > 0) std::printf("%s\n", data->summary().c_str());
  return pair_source(std::move(data));
}

}  // namespace

void generate_task_data(const Config& cfg) {
  if (!cfg.data.train.empty()) return;
  if (encdec(cfg)) {
    TranslationTask t;
    t.digits = cfg.data.task_digits;
    t.generate(task_dir(cfg), cfg.train.seed, cfg.data.task_train_problems,
               cfg.data.task_val_problems);
    return;
  }
  AdditionTask(cfg.data.task_digits)
      .generate(task_dir(cfg), cfg.train.seed, cfg.data.task_train_problems,
                cfg.data.task_val_problems);
}

bool tokenizer_from_task(const Config& cfg) {
  return encdec(cfg) && cfg.data.train.empty();
}

std::string data_tokenizer_path(const Config& cfg) {
  return tokenizer_from_task(cfg) ? task_dir(cfg) + "/tokenizer" : cfg.data.tokenizer;
}

DataSource open_data(const Config& cfg, bool need_train, const std::string& val_override,
                     const Tokenizer& tokenizer) {
  DataSource ds;
  const int V = cfg.model.vocab_size, T = cfg.model.seq_len;
  std::vector<std::string> train = cfg.data.train, val = cfg.data.val;
  const std::string ext = encdec(cfg) ? ".pairs" : ".bin";
  if (train.empty()) {
    train = {task_dir(cfg) + "/train" + ext};
    if (val.empty()) val = {task_dir(cfg) + "/val" + ext};
    if (encdec(cfg)) {
      ds.translation = TranslationTask();
      ds.translation->digits = cfg.data.task_digits;
    } else {
      ds.task = AdditionTask(cfg.data.task_digits);
    }
  }
  if (!val_override.empty()) val = {val_override};
  if (encdec(cfg)) {
    if (need_train) ds.train = open_pairs(cfg, train, tokenizer, true);
    if (!val.empty()) ds.val = open_pairs(cfg, val, tokenizer, false);
    return ds;
  }
  if (need_train)
    ds.train = window_source(
        std::make_unique<TokenDataset>(train, V, T, cfg.data.shuffle, cfg.train.seed));
  // Evaluation always reads the same windows in order.
  if (!val.empty()) ds.val = window_source(std::make_unique<TokenDataset>(val, V, T, false, 0));
  return ds;
}

}  // namespace ph

#include "trainer/data_source.h"

#include <cstdio>

#include "io/mlm_task.h"
#include "model/vocab_parallel_loss.h"
#include "trainer/mlm_source.h"

namespace ph {

namespace {

std::string task_dir(const Config& cfg) {
  return cfg.run.dir + "/data";
}

bool encdec(const Config& cfg) {
  return cfg.model.type == ModelType::kEncDec;
}

bool bert(const Config& cfg) {
  return cfg.model.type == ModelType::kBert;
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

// BERT's masked-LM samples of token shards (io/mlm_dataset.h), their special ids from
// `tokenizer`; every special token of the config is never masked nor drawn as a replacement.
std::unique_ptr<SampleSource> open_mlm(const Config& cfg, const std::vector<std::string>& files,
                                       const Tokenizer& tokenizer, bool training) {
  const DataConfig& d = cfg.data;
  MlmDatasetOptions o;
  o.seq_len = cfg.model.seq_len;
  o.vocab_size = cfg.model.vocab_size;
  o.sentence_head = cfg.model.sentence_head;
  o.cls = special_id(tokenizer, "data.cls_token", d.cls_token);
  o.sep = special_id(tokenizer, "data.sep_token", d.sep_token);
  o.pad = special_id(tokenizer, "data.pad_token", d.pad_token);
  if (!d.eot_token.empty()) o.eot = special_id(tokenizer, "data.eot_token", d.eot_token);
  // Evaluation always reads the same chunks in order, with the same masks.
  o.shuffle = training && d.shuffle;
  o.seed = training ? cfg.train.seed : 0;
  MlmMaskingOptions m;
  m.prob = d.mlm_prob;
  m.predictions = d.mlm_predictions(cfg.model.seq_len);
  m.whole_word = d.mlm_whole_word;
  m.mask = special_id(tokenizer, "data.mask_token", d.mask_token);
  m.ignore_index = kIgnoreIndex;
  std::vector<int32_t> specials;
  for (const auto& [key, text] : special_tokens(d))
    specials.push_back(special_id(tokenizer, key, text));
  return mlm_source(std::make_unique<MlmDataset>(
      files, o, MlmMasking(m, mlm_token_classes(tokenizer, specials))));
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
  if (bert(cfg)) {
    const DataConfig& d = cfg.data;
    MlmTask task;  // copies or addition lines (the config allows no other task for bert)
    task.task = d.task;
    task.addition.digits = d.task_digits;
    task.generate(task_dir(cfg), cfg.train.seed, d.task_train_problems, d.task_val_problems,
                  {d.pad_token, d.cls_token, d.sep_token, d.mask_token});
    return;
  }
  AdditionTask(cfg.data.task_digits)
      .generate(task_dir(cfg), cfg.train.seed, cfg.data.task_train_problems,
                cfg.data.task_val_problems);
}

bool tokenizer_from_task(const Config& cfg) {
  return (encdec(cfg) || bert(cfg)) && cfg.data.train.empty();
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
    } else if (!bert(cfg)) {
      ds.task = AdditionTask(cfg.data.task_digits);
    }
  }
  if (!val_override.empty()) val = {val_override};
  if (encdec(cfg)) {
    if (need_train) ds.train = open_pairs(cfg, train, tokenizer, true);
    if (!val.empty()) ds.val = open_pairs(cfg, val, tokenizer, false);
    return ds;
  }
  if (bert(cfg)) {
    if (need_train) ds.train = open_mlm(cfg, train, tokenizer, true);
    if (!val.empty()) ds.val = open_mlm(cfg, val, tokenizer, false);
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

#include "io/config_rules.h"

namespace ph::config_detail {

void apply_family_defaults(Config& c, const std::function<bool(const std::string&)>& given) {
  ModelConfig& m = c.model;
  DataConfig& d = c.data;
  if (m.type == ModelType::kEncDec) {
    if (!given("model.norm")) m.norm = Norm::kPost;
    if (!given("model.pos_encoding")) m.pos_encoding = PosEncoding::kSinusoidal;
    if (!given("model.embed_scale")) m.embed_scale = true;
    if (!given("model.activation")) m.activation = Activation::kRelu;
    // Its synthetic task, and the special tokens its data needs (the task's tokenizer has them).
    if (!given("data.task")) d.task = Task::kTranslation;
    if (!given("data.pad_token")) d.pad_token = "<pad>";
    if (!given("data.bos_token")) d.bos_token = "<s>";
    if (!given("data.eos_token")) d.eos_token = "</s>";
  } else if (m.type == ModelType::kBert) {
    if (!given("model.norm")) m.norm = Norm::kPost;
    if (!given("model.activation")) m.activation = Activation::kGeluErf;
    if (!given("model.layer_norm_eps")) m.layer_norm_eps = 1e-12f;
    if (!given("model.type_vocab_size")) m.type_vocab_size = 2;
    if (!given("data.task")) d.task = Task::kCopies;
    if (!given("data.pad_token")) d.pad_token = "[PAD]";
    if (!given("data.cls_token")) d.cls_token = "[CLS]";
    if (!given("data.sep_token")) d.sep_token = "[SEP]";
    if (!given("data.mask_token")) d.mask_token = "[MASK]";
  }
}

std::optional<Issue> check_family_keys(const Config& c) {
  const ModelConfig& m = c.model;
  const std::string type = "(model.type is " + name_of(m.type) + ")";
  if (m.type != ModelType::kGpt && !m.tie_embeddings)
    return Issue{"model.tie_embeddings",
                 {"model.type"},
                 m.type == ModelType::kEncDec
                     ? "is gpt only: an encdec model ties its embeddings with "
                       "model.share_embeddings"
                     : "is gpt only: a bert model's masked-LM decoder is always wte"};
  if (m.type != ModelType::kEncDec) {
    const std::string family = "only an encdec model has it " + type;
    if (m.encoder_layers != 0)
      return Issue{
          "model.encoder_layers", {"model.type"}, family + ", got " + str(m.encoder_layers)};
    if (m.decoder_layers != 0)
      return Issue{
          "model.decoder_layers", {"model.type"}, family + ", got " + str(m.decoder_layers)};
    if (m.src_seq_len != 0)
      return Issue{"model.src_seq_len", {"model.type"}, family + ", got " + str(m.src_seq_len)};
    if (m.share_embeddings != ShareEmbeddings::kAll)
      return Issue{"model.share_embeddings",
                   {"model.type"},
                   family + (m.type == ModelType::kGpt ? " (gpt: model.tie_embeddings)" : "") +
                       ", got " + name_of(m.share_embeddings)};
  }
  if (m.type != ModelType::kBert) {
    const std::string family = "only a bert model has it " + type;
    const DataConfig defaults;
    if (m.type_vocab_size != 0)
      return Issue{
          "model.type_vocab_size", {"model.type"}, family + ", got " + str(m.type_vocab_size)};
    if (m.sentence_head != SentenceHead::kNone)
      return Issue{
          "model.sentence_head", {"model.type"}, family + ", got " + name_of(m.sentence_head)};
    if (c.data.mlm_prob != defaults.mlm_prob)
      return Issue{"data.mlm.prob", {"model.type"}, family + ", got " + str(c.data.mlm_prob)};
    if (c.data.mlm_max_predictions != defaults.mlm_max_predictions)
      return Issue{"data.mlm.max_predictions",
                   {"model.type"},
                   family + ", got " + str(c.data.mlm_max_predictions)};
    if (c.data.mlm_whole_word != defaults.mlm_whole_word)
      return Issue{"data.mlm.whole_word", {"model.type"}, family + ", got true"};
  }
  return std::nullopt;
}

std::optional<Issue> check_bert(const Config& c) {
  const ModelConfig& m = c.model;
  if (m.type != ModelType::kBert) return std::nullopt;
  for (const auto& [key, text] :
       {std::pair<const char*, const std::string*>{"data.pad_token", &c.data.pad_token},
        {"data.cls_token", &c.data.cls_token},
        {"data.sep_token", &c.data.sep_token},
        {"data.mask_token", &c.data.mask_token}})
    if (text->empty())
      return Issue{key,
                   {"model.type"},
                   "a bert model needs it ([CLS] starts a sequence, [SEP] ends a segment, [MASK] "
                   "stands for a predicted token, [PAD] fills)"};
  const bool two = m.sentence_head != SentenceHead::kNone;
  if (two && m.type_vocab_size < 2)
    return Issue{
        "model.type_vocab_size",
        {"model.sentence_head"},
        "a sentence head needs two token types (segments A and B), got " + str(m.type_vocab_size)};
  if (m.type_vocab_size < 1)
    return Issue{"model.type_vocab_size", {"model.type"}, "a bert model needs at least 1, got 0"};
  const int least = two ? 5 : 3;
  if (m.seq_len < least)
    return Issue{"model.seq_len",
                 {"model.sentence_head"},
                 "seq_len (" + str(m.seq_len) + ") is too short for " +
                     (two ? std::string("two segments: [CLS] A [SEP] B [SEP] needs at least 5 "
                                        "positions")
                          : std::string("a segment: [CLS] A [SEP] needs at least 3 positions"))};
  const int max_pred = c.data.mlm_max_predictions;
  if (max_pred > 0) {
    DataConfig derived = c.data;
    derived.mlm_max_predictions = 0;
    const int want = derived.mlm_predictions(m.seq_len);
    if (max_pred < want)
      return Issue{"data.mlm.max_predictions",
                   {"data.mlm.prob", "model.seq_len"},
                   "max_predictions (" + str(max_pred) + ") is too small for data.mlm.prob x " +
                       "model.seq_len (" + str(c.data.mlm_prob) + " x " + str(m.seq_len) +
                       "): at least " + str(want)};
    if (max_pred > m.seq_len)
      return Issue{
          "data.mlm.max_predictions",
          {"model.seq_len"},
          "max_predictions (" + str(max_pred) + ") exceeds seq_len (" + str(m.seq_len) + ")"};
  }
  return std::nullopt;
}

namespace {

// The metrics the evaluation of this run reports.
std::vector<EvalMetric> run_metrics(const Config& c) {
  const bool task = c.data.train.empty();
  switch (c.model.type) {
    case ModelType::kBert:
      return {EvalMetric::kValLoss, EvalMetric::kMlmAccuracy};
    case ModelType::kEncDec:
      if (task) return {EvalMetric::kValLoss, EvalMetric::kBleu, EvalMetric::kTaskAccuracy};
      return {EvalMetric::kValLoss, EvalMetric::kBleu};
    case ModelType::kGpt:
      break;
  }
  if (task) return {EvalMetric::kValLoss, EvalMetric::kTaskAccuracy};
  return {EvalMetric::kValLoss};
}

}  // namespace

std::optional<Issue> check_early_stopping(const Config& c) {
  const TrainConfig& t = c.train;
  const bool task = c.data.train.empty();
  const std::string metric = name_of(t.early_stopping_metric);
  const std::vector<EvalMetric> reported = run_metrics(c);
  bool found = false;
  std::string names;
  for (EvalMetric r : reported) {
    found = found || r == t.early_stopping_metric;
    names += (names.empty() ? "" : ", ") + name_of(r);
  }
  if (!found)
    return Issue{"train.early_stopping_metric",
                 {"model.type", "data.train"},
                 metric + " is not a metric of this run (model.type " + name_of(c.model.type) +
                     " on " + (task ? "the synthetic task" : "data.train") + " reports " + names +
                     ")"};
  const char* user = t.early_stopping > 0 ? "train.early_stopping" : "checkpoint.keep_best";
  if ((t.early_stopping > 0 || c.checkpoint.keep_best) && !task && c.data.val.empty())
    return Issue{user,
                 {"data.val"},
                 std::string("needs validation data to follow ") + metric + " (data.val is empty)"};
  if (t.early_stopping > 0 && t.eval_interval == 0)
    return Issue{"train.early_stopping",
                 {"train.eval_interval"},
                 "needs evaluations during training; train.eval_interval is 0 (only at the end)"};
  return std::nullopt;
}

}  // namespace ph::config_detail

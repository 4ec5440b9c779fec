// The experiment configuration: one typed schema with defaults (config.cpp defines every
// option, its default, range and help in one table), loaded from YAML, overridden by
// `key.path=value` arguments, validated before any work.
#pragma once
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "parallel/errors.h"

namespace ph {

// Bad input of any kind (config, data, checkpoint, command line): see parallel/errors.h.

// The choices of the config, parsed into enums once (io/config.cpp reads and writes them by the
// names in EnumNames, in enum order).
enum class ModelType { kGpt, kEncDec, kBert };
enum class PosEncoding { kLearned, kSinusoidal };
enum class Norm { kPre, kPost };
// gelu: the tanh approximation (GPT-2); gelu_erf: the exact x * Phi(x) (BERT).
enum class Activation { kGelu, kRelu, kGeluErf };
// BERT's sentence head on [CLS]: none (MLM only, as RoBERTa), next-sentence prediction, or
// sentence-order prediction (ALBERT).
enum class SentenceHead { kNone, kNsp, kSop };
// Which embeddings of an encoder-decoder are one tensor (Marian's --tied-embeddings and
// --tied-embeddings-all): none; the decoder's input embedding and the output layer; all three.
enum class ShareEmbeddings { kNone, kTgtOut, kAll };
enum class NanPolicy { kSkip, kStop };
enum class Schedule { kCosine, kLinear, kConstant, kInverseSqrt, kNoam };
enum class Task { kAddition, kTranslation, kCopies };
// The evaluation metric that early stopping and checkpoint.keep_best follow.
enum class EvalMetric { kValLoss, kBleu, kTaskAccuracy, kMlmAccuracy };
enum class DeviceChoice { kCpu, kCuda, kAuto };
enum class Precision { kFp32, kBf16 };

template <class E>
struct EnumNames;
template <>
struct EnumNames<ModelType> {
  static constexpr std::array<std::string_view, 3> names{"gpt", "encdec", "bert"};
};
template <>
struct EnumNames<PosEncoding> {
  static constexpr std::array<std::string_view, 2> names{"learned", "sinusoidal"};
};
template <>
struct EnumNames<Norm> {
  static constexpr std::array<std::string_view, 2> names{"pre", "post"};
};
template <>
struct EnumNames<Activation> {
  static constexpr std::array<std::string_view, 3> names{"gelu", "relu", "gelu_erf"};
};
template <>
struct EnumNames<SentenceHead> {
  static constexpr std::array<std::string_view, 3> names{"none", "nsp", "sop"};
};
template <>
struct EnumNames<ShareEmbeddings> {
  static constexpr std::array<std::string_view, 3> names{"none", "tgt_out", "all"};
};
template <>
struct EnumNames<NanPolicy> {
  static constexpr std::array<std::string_view, 2> names{"skip", "stop"};
};
template <>
struct EnumNames<Schedule> {
  static constexpr std::array<std::string_view, 5> names{"cosine", "linear", "constant",
                                                         "inverse_sqrt", "noam"};
};
template <>
struct EnumNames<Task> {
  static constexpr std::array<std::string_view, 3> names{"addition", "translation", "copies"};
};
template <>
struct EnumNames<EvalMetric> {
  static constexpr std::array<std::string_view, 4> names{"val_loss", "bleu", "task_accuracy",
                                                         "mlm_accuracy"};
};
template <>
struct EnumNames<DeviceChoice> {
  static constexpr std::array<std::string_view, 3> names{"cpu", "cuda", "auto"};
};
template <>
struct EnumNames<Precision> {
  static constexpr std::array<std::string_view, 2> names{"fp32", "bf16"};
};

// The config name of a choice, e.g. name_of(Norm::kPre) == "pre".
template <class E>
std::string name_of(E e) {
  return std::string(EnumNames<E>::names[static_cast<size_t>(e)]);
}

struct ModelConfig {
  ModelType type = ModelType::kGpt;                  // model family
  int vocab_size = 256;                              // V (byte-level tokenizer: 256)
  int n_layers = 2;                                  // L
  int d_model = 128;                                 // d
  int n_heads = 4;                                   // H; d_model % n_heads == 0
  int d_ff = 0;                                      // FFN width; 0 means 4 * d_model
  int seq_len = 64;                                  // T, the context length (learned: wpe rows)
  PosEncoding pos_encoding = PosEncoding::kLearned;  // learned table or fixed sinusoids
  Norm norm = Norm::kPre;                            // LayerNorm before or after each branch
  Activation activation = Activation::kGelu;         // FFN activation
  bool embed_scale = false;                          // multiply token embeddings by sqrt(d)
  bool tie_embeddings = true;                        // LM head shares wte
  bool bias = true;                                  // biases in linear layers and LayerNorm
  float dropout_embed = 0.0f;                        // model.dropout.embed
  float dropout_attn = 0.0f;                         // model.dropout.attn
  float dropout_resid = 0.0f;                        // model.dropout.resid
  float init_std = 0.02f;  // N(0, init_std); residual projections / sqrt(2L)
  // The encoder-decoder (model.type encdec) only; a GPT keeps their defaults.
  int encoder_layers = 0;  // 0 means n_layers
  int decoder_layers = 0;  // 0 means n_layers
  int src_seq_len = 0;     // S, source positions; 0 means seq_len (the target length T)
  ShareEmbeddings share_embeddings = ShareEmbeddings::kAll;
  // Every family; BERT's family defaults are 1e-12 and gelu_erf.
  float layer_norm_eps = 1e-5f;
  // BERT (model.type bert) only; the other families keep their defaults.
  int type_vocab_size = 0;  // token types (segments A and B); bert default 2
  SentenceHead sentence_head = SentenceHead::kNone;
  int ffn_width() const { return d_ff > 0 ? d_ff : 4 * d_model; }
  int encoder_depth() const { return encoder_layers > 0 ? encoder_layers : n_layers; }
  int decoder_depth() const { return decoder_layers > 0 ? decoder_layers : n_layers; }
  int source_len() const { return src_seq_len > 0 ? src_seq_len : seq_len; }
  bool operator==(const ModelConfig&) const = default;
};

struct ParallelConfig {
  int tp = 1;    // tensor-parallel size; dp = world / tp
  int zero = 0;  // 1: AdamW state sharded across data-parallel ranks (ZeRO-1)
  bool operator==(const ParallelConfig&) const = default;
};

struct TrainConfig {
  int max_steps = 1000;
  int micro_batch = 32;  // sequences per micro-batch per rank
  int global_batch = 0;  // sequences per optimizer step; 0 means micro_batch * dp
  uint64_t seed = 1337;
  float grad_clip = 1.0f;                   // clip by global norm; 0 disables
  NanPolicy nan_policy = NanPolicy::kSkip;  // skip the step or stop training
  float label_smoothing = 0.0f;             // of the training loss (Marian's definition)
  int eval_interval = 100;                  // steps between evaluations; 0 only at the end
  int eval_batches = 8;                     // micro-batches per evaluation
  int early_stopping = 0;  // stop after N evaluations without improvement; 0: never
  EvalMetric early_stopping_metric = EvalMetric::kValLoss;  // also checkpoint.keep_best's
  bool operator==(const TrainConfig&) const = default;
};

struct OptimConfig {
  float lr = 1e-3f;
  float min_lr = 0.0f;
  int warmup_steps = 100;
  Schedule schedule = Schedule::kCosine;  // the decay after warmup (noam: its own warmup)
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.1f;
  bool decay_1d = false;  // also decay biases, LayerNorm and other 1-D parameters
  bool operator==(const OptimConfig&) const = default;
};

struct DataConfig {
  std::vector<std::string> train;  // shard files or glob patterns; empty: synthetic task
  std::vector<std::string> val;    // held-out shards; empty with train empty: synthetic task
  bool shuffle = true;             // false: strictly sequential windows
  bool crop = false;               // pairs longer than the lengths: cropped (true) or dropped
  Task task = Task::kAddition;  // synthetic default task when train is empty (encdec: translation)
  int task_digits = 3;          // operand digits of the addition task
  int task_train_problems = 200000;
  int task_val_problems = 2000;
  // The tokenizer of the shards: "" for bytes (ids 0..255), else a byte-level BPE tokenizer
  // (a directory with vocab.json + merges.txt, or a tiktoken rank file; io/bpe.h).
  std::string tokenizer;
  // Special tokens by their text ("<|endoftext|>"); "" = none. Each must be a token of the
  // tokenizer (checked when the run starts).
  std::string eot_token;   // end of text: between documents; sampling stops at it
  std::string pad_token;   // padding of short sequences
  std::string bos_token;   // beginning of a sequence
  std::string eos_token;   // end of a sequence
  std::string cls_token;   // classification token (BERT)
  std::string sep_token;   // separator (BERT)
  std::string mask_token;  // masked-LM mask (BERT)
  // BERT's masked-LM view of the data (data.mlm.*).
  float mlm_prob = 0.15f;       // of the non-special positions, predicted (80/10/10)
  int mlm_max_predictions = 0;  // predictions per sequence; 0 means ceil(prob * seq_len)
  // (the product's float rounding forgiven: 0.15 * 20 is 3)
  bool mlm_whole_word = false;  // mask whole words where the tokenizer marks word starts
  int mlm_predictions(int seq_len) const {
    return mlm_max_predictions > 0
               ? mlm_max_predictions
               : static_cast<int>(std::ceil(static_cast<double>(mlm_prob) * seq_len - 1e-4));
  }
  bool operator==(const DataConfig&) const = default;
};

// The special tokens of a data config as (key, text), in the order above; those set only.
std::vector<std::pair<std::string, std::string>> special_tokens(const DataConfig& d);

struct CheckpointConfig {
  int interval = 0;             // steps between checkpoints; 0: only at the end
  int keep_last = 3;            // keep the newest N step checkpoints
  bool keep_best = false;       // also keep best.h5: the best evaluation so far
  std::string resume = "auto";  // auto | none | PATH
  // A checkpoint whose weights (only) start a fresh run: step 0, fresh optimizer ("" = none).
  std::string init_from;
  bool operator==(const CheckpointConfig&) const = default;
};

struct LogConfig {
  int interval = 10;        // steps between log lines / metrics records
  std::string tensorboard;  // TensorBoard event files' directory (relative: in run.dir); "": none
  bool operator==(const LogConfig&) const = default;
};

struct SampleConfig {
  int count = 4;  // samples printed at the end of training
  int max_tokens = 32;
  float temperature = 1.0f;  // 0: greedy
  int top_k = 0;             // 0: no truncation
  std::string prompt;        // empty: task prompts (synthetic task) or a newline
  bool operator==(const SampleConfig&) const = default;
};

struct RuntimeConfig {
  int threads = 0;  // OpenMP threads per rank; 0: cores / ranks on the node
  DeviceChoice device = DeviceChoice::kCpu;  // auto: cuda if a GPU is present, else cpu
  Precision precision = Precision::kFp32;    // bf16: bf16 operands in the linear-layer GEMMs
  float comm_timeout = 600.0f;  // seconds a collective (MPI or NCCL) may take before the job ends
  float peak_tflops = 0.0f;     // MFU's peak per device; 0: measured (CPU) or from a table (GPU)
  bool operator==(const RuntimeConfig&) const = default;
};

struct RunConfig {
  std::string dir = "runs/default";  // run directory: config.yaml, metrics.jsonl, checkpoints/
  bool operator==(const RunConfig&) const = default;
};

struct Config {
  ModelConfig model;
  ParallelConfig parallel;
  TrainConfig train;
  OptimConfig optim;
  DataConfig data;
  CheckpointConfig checkpoint;
  LogConfig log;
  SampleConfig sample;
  RuntimeConfig runtime;
  RunConfig run;
  bool operator==(const Config&) const = default;
};

// Loads `path`, applies overrides ("a.b=value", YAML scalar or flow syntax), validates.
// Relative data paths are kept as written (resolved against the working directory).
// Throws InputError naming the key path and the value on any problem.
Config load_config(const std::string& path, const std::vector<std::string>& overrides);

// Same from YAML text (used for the config embedded in checkpoints and by tests).
Config parse_config(const std::string& yaml_text, const std::vector<std::string>& overrides,
                    const std::string& origin);

// Checks ranges and consistency; throws InputError. Called by load_config/parse_config.
void validate_config(const Config& cfg);

// The fully resolved config as YAML text (every key, defaults included), readable back by
// parse_config to an identical Config.
std::string config_to_yaml(const Config& cfg);

// `s` as a message shows a value: control bytes and bytes that are not UTF-8 escaped (\n, \t,
// \xNN), so that the message stays one readable line, and cut after 200 bytes ("... (N bytes in
// all)").
std::string printable(std::string_view s);

// A short help listing every key with its default and description.
std::string config_help();

// A key whose value differs between two configs, with both values as YAML text.
struct ConfigDifference {
  std::string key, a, b;
};
// The keys whose values differ between a and b, in table order; architecture_only: only the
// keys that define the model's architecture (those a checkpoint must match). model.d_ff is
// compared as the FFN width it gives when either config sets it.
std::vector<ConfigDifference> config_differences(const Config& a, const Config& b,
                                                 bool architecture_only);

}  // namespace ph

// The experiment configuration: one typed schema with defaults (config.cpp defines every
// option, its default, range and help in one table), loaded from YAML, overridden by
// `key.path=value` arguments, validated before any work.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace ph {

// Bad input of any kind (config, data, checkpoint, command line). The message is complete
// and meant for the user as it is; main prints it once and exits non-zero.
struct InputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ModelConfig {
  std::string type = "gpt";              // gpt (encdec, bert: later)
  int vocab_size = 256;                  // V (byte-level tokenizer: 256)
  int n_layers = 2;                      // L
  int d_model = 128;                     // d
  int n_heads = 4;                       // H; d_model % n_heads == 0
  int d_ff = 0;                          // FFN width; 0 means 4 * d_model
  int seq_len = 64;                      // T, the context length (learned positions: wpe rows)
  std::string pos_encoding = "learned";  // learned | sinusoidal
  std::string norm = "pre";              // pre | post
  std::string activation = "gelu";       // gelu | relu
  bool embed_scale = false;              // multiply token embeddings by sqrt(d)
  bool tie_embeddings = true;            // LM head shares wte
  bool bias = true;                      // biases in linear layers and LayerNorm
  float dropout_embed = 0.0f;            // model.dropout.embed
  float dropout_attn = 0.0f;             // model.dropout.attn
  float dropout_resid = 0.0f;            // model.dropout.resid
  float init_std = 0.02f;                // N(0, init_std); residual projections / sqrt(2L)
  int ffn_width() const { return d_ff > 0 ? d_ff : 4 * d_model; }
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
  float grad_clip = 1.0f;           // clip by global norm; 0 disables
  std::string nan_policy = "skip";  // skip | stop
  int eval_interval = 100;          // steps between evaluations; 0 only at the end
  int eval_batches = 8;             // micro-batches per evaluation
  bool operator==(const TrainConfig&) const = default;
};

struct OptimConfig {
  float lr = 1e-3f;
  float min_lr = 0.0f;
  int warmup_steps = 100;
  std::string schedule = "cosine";  // cosine | linear | constant | inverse_sqrt
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
  std::string task = "addition";   // synthetic default task when train is empty
  int task_digits = 3;             // operand digits of the addition task
  int task_train_problems = 200000;
  int task_val_problems = 2000;
  bool operator==(const DataConfig&) const = default;
};

struct CheckpointConfig {
  int interval = 0;             // steps between checkpoints; 0: only at the end
  int keep_last = 3;            // keep the newest N step checkpoints
  std::string resume = "auto";  // auto | none | PATH
  bool operator==(const CheckpointConfig&) const = default;
};

struct LogConfig {
  int interval = 10;  // steps between log lines / metrics records
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
  int threads = 0;                 // OpenMP threads per rank; 0: cores / ranks on the node
  std::string device = "cpu";      // cpu | cuda | auto (cuda if a GPU is present, else cpu)
  std::string precision = "fp32";  // fp32 | bf16 (bf16 operands in the linear-layer GEMMs)
  float comm_timeout = 600.0f;     // seconds a device collective may take before the job ends
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

// A short help listing every key with its default and description.
std::string config_help();

}  // namespace ph

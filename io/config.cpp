#include "io/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <type_traits>
#include <variant>

namespace ph {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
const char* const kCommandLine = "command line";

// A pointer to the field of one Config that an option reads and writes.
using Field = std::variant<int*, uint64_t*, float*, bool*, std::string*, std::vector<std::string>*>;

// Allowed numeric values: lo ≤ v ≤ hi, with either end open.
struct Limits {
  double lo = -kInf;
  double hi = kInf;
  bool lo_open = false;
  bool hi_open = false;
};
constexpr Limits at_least(double lo) {
  return {lo, kInf, false, false};
}
constexpr Limits positive() {
  return {0.0, kInf, true, false};
}
constexpr Limits fraction() {
  return {0.0, 1.0, false, true};
}  // [0, 1)
constexpr Limits between(double lo, double hi) {
  return {lo, hi, false, false};
}

struct Option {
  std::string_view key;                     // dotted path; YAML nests along the dots
  Field field;                              // the value, bound to one Config
  Limits limits{};                          // numbers only
  std::vector<std::string_view> choices{};  // strings only; empty: any string
  bool non_empty = false;                   // strings only
  std::string_view help;
};

// THE option table: every key, its type (the field's), its default (the field's initial
// value in a default Config), its allowed values and its help. Everything else in this file
// is driven by it. The order is the order of config_to_yaml and config_help.
std::vector<Option> option_table(Config& c) {
  ModelConfig& m = c.model;
  TrainConfig& t = c.train;
  OptimConfig& o = c.optim;
  DataConfig& d = c.data;
  SampleConfig& s = c.sample;
  return {
      {.key = "model.type",
       .field = &m.type,
       .choices = {"gpt"},
       .help = "model family (encdec and bert are planned)"},
      {.key = "model.vocab_size",
       .field = &m.vocab_size,
       .limits = at_least(1),
       .help = "vocabulary size V (256 for the byte-level tokenizer, 50257 for GPT-2 BPE)"},
      {.key = "model.n_layers",
       .field = &m.n_layers,
       .limits = at_least(1),
       .help = "number of transformer blocks L"},
      {.key = "model.d_model", .field = &m.d_model, .limits = at_least(1), .help = "model width d"},
      {.key = "model.n_heads",
       .field = &m.n_heads,
       .limits = at_least(1),
       .help = "attention heads H; d_model must be divisible by H"},
      {.key = "model.d_ff",
       .field = &m.d_ff,
       .limits = at_least(0),
       .help = "FFN hidden width; 0 means 4 * d_model"},
      {.key = "model.seq_len",
       .field = &m.seq_len,
       .limits = at_least(1),
       .help = "context length T in tokens"},
      {.key = "model.pos_encoding",
       .field = &m.pos_encoding,
       .choices = {"learned", "sinusoidal"},
       .help = "position embeddings: learned table (wpe) or fixed sinusoids"},
      {.key = "model.norm",
       .field = &m.norm,
       .choices = {"pre", "post"},
       .help = "LayerNorm before (pre) or after (post) each residual branch"},
      {.key = "model.activation",
       .field = &m.activation,
       .choices = {"gelu", "relu"},
       .help = "FFN activation"},
      {.key = "model.embed_scale",
       .field = &m.embed_scale,
       .help = "multiply token embeddings by sqrt(d_model)"},
      {.key = "model.tie_embeddings",
       .field = &m.tie_embeddings,
       .help = "the LM head shares the token embedding wte"},
      {.key = "model.bias", .field = &m.bias, .help = "biases in linear layers and LayerNorm"},
      {.key = "model.dropout.embed",
       .field = &m.dropout_embed,
       .limits = fraction(),
       .help = "dropout on the embedding sum"},
      {.key = "model.dropout.attn",
       .field = &m.dropout_attn,
       .limits = fraction(),
       .help = "dropout on the attention probabilities"},
      {.key = "model.dropout.resid",
       .field = &m.dropout_resid,
       .limits = fraction(),
       .help = "dropout on each residual branch output"},
      {.key = "model.init_std",
       .field = &m.init_std,
       .limits = positive(),
       .help = "weights ~ N(0, init_std); residual projections scaled by 1/sqrt(2L)"},
      {.key = "parallel.tp",
       .field = &c.parallel.tp,
       .limits = at_least(1),
       .help = "tensor-parallel size; data-parallel size = ranks / tp"},
      {.key = "parallel.zero",
       .field = &c.parallel.zero,
       .limits = between(0, 1),
       .help = "1: shard the AdamW moments across data-parallel ranks (ZeRO stage 1)"},
      {.key = "train.max_steps",
       .field = &t.max_steps,
       .limits = at_least(1),
       .help = "optimizer steps to train"},
      {.key = "train.micro_batch",
       .field = &t.micro_batch,
       .limits = at_least(1),
       .help = "sequences per micro-batch per data-parallel rank"},
      {.key = "train.global_batch",
       .field = &t.global_batch,
       .limits = at_least(0),
       .help = "sequences per optimizer step (gradient accumulation); 0 means micro_batch * dp"},
      {.key = "train.seed", .field = &t.seed, .help = "seed of init, dropout and data order"},
      {.key = "train.grad_clip",
       .field = &t.grad_clip,
       .limits = at_least(0),
       .help = "clip gradients to this global norm; 0 disables"},
      {.key = "train.nan_policy",
       .field = &t.nan_policy,
       .choices = {"skip", "stop"},
       .help = "on a NaN/Inf loss or gradient: skip the step or stop training"},
      {.key = "train.eval_interval",
       .field = &t.eval_interval,
       .limits = at_least(0),
       .help = "steps between evaluations; 0 evaluates only at the end"},
      {.key = "train.eval_batches",
       .field = &t.eval_batches,
       .limits = at_least(1),
       .help = "micro-batches per evaluation"},
      {.key = "optim.lr",
       .field = &o.lr,
       .limits = positive(),
       .help = "peak learning rate (AdamW)"},
      {.key = "optim.min_lr",
       .field = &o.min_lr,
       .limits = at_least(0),
       .help = "final learning rate of the cosine and linear schedules"},
      {.key = "optim.warmup_steps",
       .field = &o.warmup_steps,
       .limits = at_least(0),
       .help = "linear warmup steps from 0 to lr"},
      {.key = "optim.schedule",
       .field = &o.schedule,
       .choices = {"cosine", "linear", "constant", "inverse_sqrt"},
       .help = "learning-rate decay after warmup"},
      {.key = "optim.beta1",
       .field = &o.beta1,
       .limits = fraction(),
       .help = "AdamW first-moment decay"},
      {.key = "optim.beta2",
       .field = &o.beta2,
       .limits = fraction(),
       .help = "AdamW second-moment decay"},
      {.key = "optim.eps",
       .field = &o.eps,
       .limits = positive(),
       .help = "AdamW denominator epsilon"},
      {.key = "optim.weight_decay",
       .field = &o.weight_decay,
       .limits = at_least(0),
       .help = "decoupled weight decay of the matrices"},
      {.key = "optim.decay_1d",
       .field = &o.decay_1d,
       .help = "also decay biases, LayerNorm and other 1-D parameters"},
      {.key = "data.train",
       .field = &d.train,
       .help = "llm.c token shards or glob patterns; empty: the synthetic task"},
      {.key = "data.val",
       .field = &d.val,
       .help = "held-out token shards or glob patterns; empty: the synthetic task's own, or none"},
      {.key = "data.shuffle",
       .field = &d.shuffle,
       .help = "shuffle the training windows each epoch; false: sequential"},
      {.key = "data.task",
       .field = &d.task,
       .choices = {"addition"},
       .help = "synthetic task used when data.train is empty"},
      {.key = "data.task_digits",
       .field = &d.task_digits,
       .limits = between(1, 18),
       .help = "operand digits of the addition task"},
      {.key = "data.task_train_problems",
       .field = &d.task_train_problems,
       .limits = at_least(1),
       .help = "training problems of the synthetic task"},
      {.key = "data.task_val_problems",
       .field = &d.task_val_problems,
       .limits = at_least(1),
       .help = "held-out problems of the synthetic task"},
      {.key = "checkpoint.interval",
       .field = &c.checkpoint.interval,
       .limits = at_least(0),
       .help = "steps between checkpoints; 0 saves only at the end"},
      {.key = "checkpoint.keep_last",
       .field = &c.checkpoint.keep_last,
       .limits = at_least(1),
       .help = "number of newest step checkpoints kept"},
      {.key = "checkpoint.resume",
       .field = &c.checkpoint.resume,
       .non_empty = true,
       .help = "auto (latest in run.dir if any), none, or a checkpoint path"},
      {.key = "log.interval",
       .field = &c.log.interval,
       .limits = at_least(1),
       .help = "steps between log lines and metrics records"},
      {.key = "sample.count",
       .field = &s.count,
       .limits = at_least(0),
       .help = "samples generated at the end of training"},
      {.key = "sample.max_tokens",
       .field = &s.max_tokens,
       .limits = at_least(1),
       .help = "tokens generated per sample"},
      {.key = "sample.temperature",
       .field = &s.temperature,
       .limits = at_least(0),
       .help = "sampling temperature; 0 is greedy"},
      {.key = "sample.top_k",
       .field = &s.top_k,
       .limits = at_least(0),
       .help = "sample among the k most likely tokens; 0: all"},
      {.key = "sample.prompt",
       .field = &s.prompt,
       .help = "prompt text; empty: task prompts (synthetic task) or a newline"},
      {.key = "runtime.threads",
       .field = &c.runtime.threads,
       .limits = at_least(0),
       .help = "OpenMP threads per rank; 0: cores / ranks on the node"},
      {.key = "runtime.device",
       .field = &c.runtime.device,
       .choices = {"cpu", "cuda", "auto"},
       .help = "compute device; auto: cuda when a GPU is present, else cpu"},
      {.key = "runtime.precision",
       .field = &c.runtime.precision,
       .choices = {"fp32", "bf16"},
       .help = "fp32, or bf16: linear-layer GEMMs on bf16-rounded operands with fp32 "
               "accumulation; weights, optimizer state and checkpoints stay fp32"},
      {.key = "runtime.comm_timeout",
       .field = &c.runtime.comm_timeout,
       .limits = positive(),
       .help = "seconds a GPU (NCCL) collective may take before the job is ended with a message"},
      {.key = "run.dir",
       .field = &c.run.dir,
       .non_empty = true,
       .help = "run directory: config.yaml, metrics.jsonl, checkpoints/"},
  };
}

// ---------------------------------------------------------------------------------------
// Formatting

// The shortest decimal text that reads back as the same float, always with a '.' or an
// exponent so that YAML readers see a float.
std::string format_float(float v) {
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, res.ptr);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

std::string format_number(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  return format_float(static_cast<float>(v));
}

std::string describe_limits(const Limits& l) {
  if (l.hi == kInf) return (l.lo_open ? "> " : ">= ") + format_number(l.lo);
  return (l.lo_open ? "in (" : "in [") + format_number(l.lo) + ", " + format_number(l.hi) +
         (l.hi_open ? ")" : "]");
}

bool unlimited(const Limits& l) {
  return l.lo == -kInf && l.hi == kInf;
}

std::string join(const std::vector<std::string_view>& items, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += sep;
    out += items[i];
  }
  return out;
}

std::string describe_choices(const std::vector<std::string_view>& choices) {
  return "{" + join(choices, ", ") + "}";
}

const char* type_name(const Field& f) {
  static constexpr const char* kNames[] = {"int", "uint64", "float", "bool", "string", "list"};
  return kNames[f.index()];
}

// The value of a field as YAML text (for help and messages).
std::string value_text(const Field& f) {
  return std::visit(
      [](auto* p) -> std::string {
        using T = std::remove_pointer_t<decltype(p)>;
        if constexpr (std::is_same_v<T, float>) {
          return format_float(*p);
        } else if constexpr (std::is_same_v<T, bool>) {
          return *p ? "true" : "false";
        } else if constexpr (std::is_same_v<T, std::string>) {
          return p->empty() ? "''" : *p;
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          std::string out = "[";
          for (size_t i = 0; i < p->size(); ++i) out += (i ? ", " : "") + (*p)[i];
          return out + "]";
        } else {
          return std::to_string(*p);
        }
      },
      f);
}

// `s` with control characters escaped, so that a message stays on one line.
std::string printable(std::string_view s) {
  std::string out;
  for (const char ch : s) {
    const auto u = static_cast<unsigned char>(ch);
    if (ch == '\n') {
      out += "\\n";
    } else if (ch == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += {'\\', 'x', kHex[u >> 4], kHex[u & 15]};
    } else {
      out += ch;
    }
  }
  return out;
}

// How a YAML node looks, for "got ..." in messages.
std::string describe_node(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Scalar:
      return "'" + printable(n.Scalar()) + "'";
    default:
      return "an undefined value";
  }
}

[[noreturn]] void fail(const std::string& origin, const std::string& key,
                       const std::string& message) {
  throw InputError(origin + ": " + printable(key) + ": " + message);
}

// ---------------------------------------------------------------------------------------
// Key paths

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  size_t begin = 0;
  while (true) {
    const size_t dot = path.find('.', begin);
    parts.push_back(path.substr(begin, dot == std::string::npos ? std::string::npos : dot - begin));
    if (dot == std::string::npos) return parts;
    begin = dot + 1;
  }
}

std::string leaf_of(std::string_view path) {
  const size_t dot = path.rfind('.');
  return std::string(dot == std::string_view::npos ? path : path.substr(dot + 1));
}

// Every proper prefix of a key ("model", "model.dropout"), in table order.
std::vector<std::string> group_paths(const std::vector<Option>& table) {
  std::vector<std::string> groups;
  for (const Option& o : table) {
    for (size_t dot = o.key.find('.'); dot != std::string_view::npos;
         dot = o.key.find('.', dot + 1)) {
      std::string g(o.key.substr(0, dot));
      if (std::find(groups.begin(), groups.end(), g) == groups.end()) groups.push_back(g);
    }
  }
  return groups;
}

// The names directly inside a group ("" is the top level), in table order.
std::vector<std::string_view> children_of(const std::vector<Option>& table,
                                          const std::string& group) {
  std::vector<std::string_view> names;
  const std::string prefix = group.empty() ? "" : group + ".";
  for (const Option& o : table) {
    if (!o.key.starts_with(prefix)) continue;
    std::string_view rest = o.key.substr(prefix.size());
    rest = rest.substr(0, rest.find('.'));
    if (std::find(names.begin(), names.end(), rest) == names.end()) names.push_back(rest);
  }
  return names;
}

// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> dist(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) dist[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) dist[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      dist[i][j] = std::min({dist[i - 1][j] + 1, dist[i][j - 1] + 1, dist[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        dist[i][j] = std::min(dist[i][j], dist[i - 2][j - 2] + 1);
    }
  }
  return dist[a.size()][b.size()];
}

std::string parent_of(const std::string& path) {
  const size_t dot = path.rfind('.');
  return dot == std::string::npos ? "" : path.substr(0, dot);
}

// "unknown key (did you mean 'x'?)" for a path that is neither an option nor a group.
std::string unknown_message(const std::vector<Option>& table, const std::string& path) {
  const std::vector<std::string> groups = group_paths(table);

  // Keys with the same last name elsewhere ("train.lr" → "optim.lr"); else the closest
  // known paths, if close enough.
  const std::string leaf = leaf_of(path);
  std::vector<std::string> suggestions;
  for (const Option& o : table)
    if (leaf_of(o.key) == leaf) suggestions.emplace_back(o.key);
  if (suggestions.empty()) {
    std::vector<std::string> known(groups);
    for (const Option& o : table) known.emplace_back(o.key);
    size_t best = std::max<size_t>(1, leaf.size() / 3) + 1;
    for (const std::string& k : known) {
      const size_t dist = edit_distance(path, k);
      if (dist < best) {
        best = dist;
        suggestions.clear();
      }
      if (dist == best) suggestions.push_back(k);
    }
  }

  std::string msg = path.find('.') == std::string::npos ? "unknown section" : "unknown key";
  if (!suggestions.empty()) {
    msg += " (did you mean ";
    for (size_t i = 0; i < suggestions.size(); ++i)
      msg += (i == 0 ? "'" : i + 1 == suggestions.size() ? " or '" : ", '") + suggestions[i] + "'";
    return msg + "?)";
  }
  // No close match: list what exists where the path stops matching.
  std::string parent = parent_of(path);
  while (!parent.empty() && std::find(groups.begin(), groups.end(), parent) == groups.end())
    parent = parent_of(parent);
  if (parent.empty()) return msg + " (sections: " + join(children_of(table, ""), ", ") + ")";
  return msg + " (keys in " + parent + ": " + join(children_of(table, parent), ", ") + ")";
}

// ---------------------------------------------------------------------------------------
// Reading values from YAML nodes

std::string without_plus(const std::string& s) {
  return !s.empty() && s[0] == '+' ? s.substr(1) : s;
}

// Integers: decimal text, or any number with an integral value ("1e5"); never wraps.
template <class T>
T read_integer(const YAML::Node& n, const std::string& origin, const std::string& key) {
  using Lim = std::numeric_limits<T>;
  auto out_of_range = [&] {
    fail(origin, key,
         "expected an integer in [" + std::to_string(Lim::min()) + ", " +
             std::to_string(Lim::max()) + "], got " + describe_node(n));
  };
  if (!n.IsScalar()) fail(origin, key, "expected an integer, got " + describe_node(n));
  const std::string s = without_plus(n.Scalar());
  const char* end = s.data() + s.size();
  T v{};
  const auto res = std::from_chars(s.data(), end, v);
  if (res.ptr == end && res.ec == std::errc()) return v;
  if (res.ptr == end && res.ec == std::errc::result_out_of_range) out_of_range();
  double d = 0;
  const auto dres = std::from_chars(s.data(), end, d);
  if (dres.ptr != end || dres.ec != std::errc() || !std::isfinite(d) || d != std::floor(d))
    fail(origin, key, "expected an integer, got " + describe_node(n));
  if (d < static_cast<double>(Lim::min()) || d >= static_cast<double>(Lim::max()) + 1.0)
    out_of_range();
  return static_cast<T>(d);
}

float read_float(const YAML::Node& n, const std::string& origin, const std::string& key) {
  if (!n.IsScalar()) fail(origin, key, "expected a number, got " + describe_node(n));
  const std::string s = without_plus(n.Scalar());
  const char* end = s.data() + s.size();
  float v = 0;
  const auto res = std::from_chars(s.data(), end, v);
  if (res.ptr != end || s.empty()) fail(origin, key, "expected a number, got " + describe_node(n));
  if (res.ec == std::errc::result_out_of_range)
    fail(origin, key, "expected a number in float range, got " + describe_node(n));
  if (!std::isfinite(v)) fail(origin, key, "expected a finite number, got " + describe_node(n));
  return v;
}

bool read_bool(const YAML::Node& n, const std::string& origin, const std::string& key) {
  if (n.IsScalar()) {
    const std::string& s = n.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  fail(origin, key, "expected true or false, got " + describe_node(n));
}

std::string read_string(const YAML::Node& n, const std::string& origin, const std::string& key) {
  if (n.IsNull()) return "";
  if (!n.IsScalar()) fail(origin, key, "expected a string, got " + describe_node(n));
  return n.Scalar();
}

std::vector<std::string> read_string_list(const YAML::Node& n, const std::string& origin,
                                          const std::string& key) {
  if (n.IsNull()) return {};
  if (n.IsScalar()) return {n.Scalar()};
  if (!n.IsSequence())
    fail(origin, key, "expected a string or a list of strings, got " + describe_node(n));
  std::vector<std::string> items;
  for (size_t i = 0; i < n.size(); ++i) {
    if (!n[i].IsScalar())
      fail(origin, key,
           "expected a list of strings, got " + describe_node(n[i]) + " as item " +
               std::to_string(i + 1));
    items.push_back(n[i].Scalar());
  }
  return items;
}

void assign(const Field& field, const YAML::Node& n, const std::string& origin,
            const std::string& key) {
  std::visit(
      [&](auto* p) {
        using T = std::remove_pointer_t<decltype(p)>;
        if constexpr (std::is_same_v<T, float>) {
          *p = read_float(n, origin, key);
        } else if constexpr (std::is_same_v<T, bool>) {
          *p = read_bool(n, origin, key);
        } else if constexpr (std::is_same_v<T, std::string>) {
          *p = read_string(n, origin, key);
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          *p = read_string_list(n, origin, key);
        } else {
          *p = read_integer<T>(n, origin, key);
        }
      },
      field);
}

// Applies YAML values to a Config, remembering which keys the command line set.
class ConfigReader {
 public:
  explicit ConfigReader(Config& cfg) : table_(option_table(cfg)), groups_(group_paths(table_)) {}

  // Applies `node` at `path` ("" is the whole document): an option takes the value, a group
  // takes a map of its children.
  void apply(const std::string& path, const YAML::Node& node, const std::string& origin) {
    for (const Option& o : table_) {
      if (o.key != path) continue;
      assign(o.field, node, origin, path);
      if (origin == kCommandLine) from_command_line_.insert(path);
      return;
    }
    const bool is_group =
        path.empty() || std::find(groups_.begin(), groups_.end(), path) != groups_.end();
    if (!is_group) fail(origin, path, unknown_message(table_, path));
    if (node.IsNull()) return;
    if (!node.IsMap()) {
      const std::string keys = join(children_of(table_, path), ", ");
      if (path.empty())
        throw InputError(origin + ": expected a map of sections (" + keys + ") at the top, got " +
                         describe_node(node));
      fail(origin, path, "expected a map of keys (" + keys + "), got " + describe_node(node));
    }
    std::set<std::string> seen;
    for (const auto& entry : node) {
      if (!entry.first.IsScalar())
        fail(origin, path.empty() ? "(top level)" : path,
             "expected names as keys, got " + describe_node(entry.first));
      const std::string child =
          path.empty() ? entry.first.Scalar() : path + "." + entry.first.Scalar();
      if (!seen.insert(child).second) fail(origin, child, "duplicate key");
      apply(child, entry.second, origin);
    }
  }

  bool from_command_line(const std::string& key) const { return from_command_line_.contains(key); }

 private:
  std::vector<Option> table_;
  std::vector<std::string> groups_;
  std::set<std::string> from_command_line_;
};

void apply_override(ConfigReader& reader, const std::string& arg) {
  const size_t eq = arg.find('=');
  if (eq == std::string::npos)
    throw InputError(std::string(kCommandLine) + ": '" + printable(arg) +
                     "': expected key.path=value (e.g. train.lr=3e-4)");
  std::string key = arg.substr(0, eq);
  key.erase(0, key.find_first_not_of(" \t"));
  key.erase(key.find_last_not_of(" \t") + 1);
  if (key.empty())
    throw InputError(std::string(kCommandLine) + ": '" + printable(arg) +
                     "': empty key (expected key.path=value)");
  for (const std::string& part : split_path(key))
    if (part.empty())
      throw InputError(std::string(kCommandLine) + ": '" + printable(arg) +
                       "': empty component in key '" + printable(key) + "'");
  const std::string value = arg.substr(eq + 1);
  YAML::Node node;
  try {
    node = YAML::Load(value);
  } catch (const YAML::Exception& e) {
    fail(kCommandLine, key,
         "cannot read '" + printable(value) + "' as a YAML value (" + printable(e.msg) + ")");
  }
  reader.apply(key, node, kCommandLine);
}

// ---------------------------------------------------------------------------------------
// Validation

// One problem: the key it is reported under, the other keys involved, and the message.
struct Issue {
  std::string key;
  std::vector<std::string> related;
  std::string message;
};

template <class T>
std::string str(T v) {
  if constexpr (std::is_same_v<T, float>) {
    return format_float(v);
  } else {
    return std::to_string(v);
  }
}

std::optional<Issue> check_option(const Option& o) {
  const std::string key(o.key);
  return std::visit(
      [&](auto* p) -> std::optional<Issue> {
        using T = std::remove_pointer_t<decltype(p)>;
        if constexpr (std::is_same_v<T, std::string>) {
          if (o.non_empty && p->empty()) return Issue{key, {}, "must not be empty"};
          if (!o.choices.empty() &&
              std::find(o.choices.begin(), o.choices.end(), *p) == o.choices.end())
            return Issue{
                key,
                {},
                "must be one of " + describe_choices(o.choices) + ", got '" + printable(*p) + "'"};
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          for (size_t i = 0; i < p->size(); ++i)
            if ((*p)[i].empty())
              return Issue{key, {}, "item " + std::to_string(i + 1) + " is an empty path"};
        } else if constexpr (!std::is_same_v<T, bool>) {
          const double v = static_cast<double>(*p);
          const Limits& l = o.limits;
          const bool above = l.lo_open ? v > l.lo : v >= l.lo;
          const bool below = l.hi_open ? v < l.hi : v <= l.hi;
          if (!(above && below))
            return Issue{key, {}, "must be " + describe_limits(l) + ", got " + str(*p)};
        }
        return std::nullopt;
      },
      o.field);
}

// Rules that involve more than one key.
std::optional<Issue> check_consistency(const Config& c) {
  const ModelConfig& m = c.model;
  if (m.d_model % m.n_heads != 0)
    return Issue{
        "model.n_heads",
        {"model.d_model"},
        "d_model (" + str(m.d_model) + ") must be divisible by n_heads (" + str(m.n_heads) + ")"};
  if (m.pos_encoding == "sinusoidal" && m.d_model % 2 != 0)
    return Issue{"model.pos_encoding",
                 {"model.d_model"},
                 "sinusoidal positions need an even d_model, got " + str(m.d_model)};
  if (m.n_heads % c.parallel.tp != 0)
    return Issue{
        "parallel.tp",
        {"model.n_heads"},
        "n_heads (" + str(m.n_heads) + ") must be divisible by tp (" + str(c.parallel.tp) + ")"};
  const long long ffn = m.d_ff > 0 ? m.d_ff : 4LL * m.d_model;
  if (ffn % c.parallel.tp != 0)
    return Issue{
        "parallel.tp",
        {"model.d_ff", "model.d_model"},
        "the FFN width (" + str(ffn) + ") must be divisible by tp (" + str(c.parallel.tp) + ")"};
  if (c.optim.warmup_steps > c.train.max_steps)
    return Issue{"optim.warmup_steps",
                 {"train.max_steps"},
                 "warmup_steps (" + str(c.optim.warmup_steps) +
                     ") must not exceed train.max_steps (" + str(c.train.max_steps) + ")"};
  if (c.optim.min_lr > c.optim.lr)
    return Issue{
        "optim.min_lr",
        {"optim.lr"},
        "min_lr (" + str(c.optim.min_lr) + ") must not exceed lr (" + str(c.optim.lr) + ")"};
  if (c.train.global_batch > 0 && c.train.global_batch % c.train.micro_batch != 0)
    return Issue{"train.global_batch",
                 {"train.micro_batch"},
                 "global_batch (" + str(c.train.global_batch) +
                     ") must be a multiple of micro_batch (" + str(c.train.micro_batch) + ")"};
  const int task_line = 3 * c.data.task_digits + 4;  // "A+B=R\n" (see io/addition_task.h)
  if (c.data.train.empty() && m.seq_len < task_line)
    return Issue{"model.seq_len",
                 {"data.task_digits", "data.train"},
                 "seq_len (" + str(m.seq_len) + ") must hold one addition problem of " +
                     str(c.data.task_digits) + " digits (" + str(task_line) + " tokens)"};
  if (c.sample.top_k > m.vocab_size)
    return Issue{"sample.top_k",
                 {"model.vocab_size"},
                 "top_k (" + str(c.sample.top_k) + ") must not exceed model.vocab_size (" +
                     str(m.vocab_size) + ")"};
  return std::nullopt;
}

std::optional<Issue> find_issue(const Config& cfg) {
  Config copy = cfg;
  for (const Option& o : option_table(copy))
    if (auto issue = check_option(o)) return issue;
  return check_consistency(cfg);
}

}  // namespace

// ---------------------------------------------------------------------------------------

void validate_config(const Config& cfg) {
  if (auto issue = find_issue(cfg)) throw InputError(issue->key + ": " + issue->message);
}

Config parse_config(const std::string& yaml_text, const std::vector<std::string>& overrides,
                    const std::string& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    std::string where = origin + ": ";
    if (!e.mark.is_null())
      where += "line " + std::to_string(e.mark.line + 1) + ", column " +
               std::to_string(e.mark.column + 1) + ": ";
    throw InputError(where + "invalid YAML: " + printable(e.msg));
  }
  Config cfg;
  ConfigReader reader(cfg);
  reader.apply("", root, origin);
  for (const std::string& arg : overrides) apply_override(reader, arg);

  if (auto issue = find_issue(cfg)) {
    // Blame the command line if it set any key involved, else the file.
    bool by_command_line = reader.from_command_line(issue->key);
    for (const std::string& k : issue->related)
      by_command_line = by_command_line || reader.from_command_line(k);
    fail(by_command_line ? kCommandLine : origin, issue->key, issue->message);
  }
  return cfg;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) throw InputError(path + ": config file not found");
  if (std::filesystem::is_directory(status))
    throw InputError(path + ": is a directory, not a config file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot read config file (" + std::strerror(errno) + ")");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw InputError(path + ": cannot read config file (" + std::strerror(errno) + ")");
  return parse_config(text.str(), overrides, path);
}

std::string config_to_yaml(const Config& cfg) {
  Config copy = cfg;
  YAML::Node root(YAML::NodeType::Map);
  for (const Option& o : option_table(copy)) {
    const std::vector<std::string> parts = split_path(std::string(o.key));
    YAML::Node node = root;
    for (size_t i = 0; i + 1 < parts.size(); ++i) node.reset(node[parts[i]]);
    YAML::Node value = node[parts.back()];
    std::visit(
        [&](auto* p) {
          using T = std::remove_pointer_t<decltype(p)>;
          if constexpr (std::is_same_v<T, float>) {
            value = format_float(*p);
          } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            value = YAML::Node(YAML::NodeType::Sequence);
            for (const std::string& s : *p) value.push_back(s);
            value.SetStyle(YAML::EmitterStyle::Flow);
          } else {
            value = *p;
          }
        },
        o.field);
  }
  YAML::Emitter out;
  out << root;
  return std::string(out.c_str()) + "\n";
}

std::string config_help() {
  Config defaults;
  const std::vector<Option> table = option_table(defaults);
  size_t key_width = 0;
  size_t default_width = 0;
  for (const Option& o : table) {
    key_width = std::max(key_width, o.key.size());
    default_width = std::max(default_width, value_text(o.field).size());
  }
  std::string out =
      "Config keys (set them in the YAML file, nested by section, or override with "
      "key.path=value):\n";
  for (const Option& o : table) {
    std::string line = "  " + std::string(o.key);
    line.resize(key_width + 4, ' ');
    std::string type = type_name(o.field);
    type.resize(8, ' ');
    std::string def = value_text(o.field);
    def.resize(default_width + 2, ' ');
    line += type + def + std::string(o.help);
    if (!o.choices.empty()) line += "; one of " + describe_choices(o.choices);
    if (!unlimited(o.limits) && !std::holds_alternative<bool*>(o.field) &&
        !std::holds_alternative<std::string*>(o.field))
      line += "; " + describe_limits(o.limits);
    out += line + "\n";
  }
  return out;
}

}  // namespace ph

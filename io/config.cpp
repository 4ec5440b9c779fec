// The config: reading YAML and command-line overrides into a Config, validation, and the
// resolved config as YAML text. The option table is io/config_schema.cpp; formatting and
// key-path helpers are io/config_text.cpp.
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
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <type_traits>
#include <variant>

#include "io/config_rules.h"
#include "io/config_schema.h"
#include "io/config_text.h"

namespace ph {

using namespace config_detail;

namespace {

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

// Reads node into the field. A choice that names no value of its enum is not an error yet (a
// later override may replace it): its text is returned, and validation reports it.
std::optional<std::string> assign(const Field& field, const YAML::Node& n,
                                  const std::string& origin, const std::string& key) {
  return std::visit(
      [&](auto p) -> std::optional<std::string> {
        using T = std::remove_pointer_t<decltype(p)>;
        if constexpr (std::is_same_v<T, EnumRef>) {
          const std::string text = read_string(n, origin, key);
          const int index = p.find(text);
          if (index < 0) return text;
          p.set(p.target, index);
        } else if constexpr (std::is_same_v<T, float>) {
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
        return std::nullopt;
      },
      field);
}

// Applies YAML values to a Config, remembering which keys the command line set and which
// choices name no value.
class ConfigReader {
 public:
  explicit ConfigReader(Config& cfg) : table_(option_table(cfg)), groups_(group_paths(table_)) {}

  // Applies `node` at `path` ("" is the whole document): an option takes the value, a group
  // takes a map of its children.
  void apply(const std::string& path, const YAML::Node& node, const std::string& origin) {
    for (const Option& o : table_) {
      if (o.key != path) continue;
      if (auto bad = assign(o.field, node, origin, path))
        unknown_choices_[path] = *bad;
      else
        unknown_choices_.erase(path);
      if (origin == kCommandLine) from_command_line_.insert(path);
      given_.insert(path);
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
  // The file or the command line set the key (else it keeps the default of its field).
  bool given(const std::string& key) const { return given_.contains(key); }
  // Keys whose last value named no choice, with that text.
  const std::map<std::string, std::string>& unknown_choices() const { return unknown_choices_; }

 private:
  std::vector<Option> table_;
  std::vector<std::string> groups_;
  std::set<std::string> from_command_line_;
  std::set<std::string> given_;
  std::map<std::string, std::string> unknown_choices_;
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

// unknown_choice: the text of a choice that named no value of its enum (or null).
std::optional<Issue> check_option(const Option& o, const std::string* unknown_choice) {
  const std::string key(o.key);
  return std::visit(
      [&](auto p) -> std::optional<Issue> {
        using T = std::remove_pointer_t<decltype(p)>;
        if constexpr (std::is_same_v<T, EnumRef>) {
          if (unknown_choice)
            return Issue{key,
                         {},
                         "must be one of " + describe_choices(p.names) + ", got '" +
                             printable(*unknown_choice) + "'"};
        } else if constexpr (std::is_same_v<T, std::string>) {
          if (o.non_empty && p->empty()) return Issue{key, {}, "must not be empty"};
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
  if (auto issue = check_family_keys(c)) return issue;
  if (m.d_model % m.n_heads != 0)
    return Issue{
        "model.n_heads",
        {"model.d_model"},
        "d_model (" + str(m.d_model) + ") must be divisible by n_heads (" + str(m.n_heads) + ")"};
  if (m.pos_encoding == PosEncoding::kSinusoidal && m.d_model % 2 != 0)
    return Issue{"model.pos_encoding",
                 {"model.d_model"},
                 "sinusoidal positions need an even d_model, got " + str(m.d_model)};
  if (c.optim.schedule == Schedule::kNoam && c.optim.warmup_steps < 1)
    return Issue{
        "optim.warmup_steps",
        {"optim.schedule"},
        "the noam schedule needs warmup_steps >= 1 (its peak), got " + str(c.optim.warmup_steps)};
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
  const bool encdec = m.type == ModelType::kEncDec;
  const bool task = c.data.train.empty();
  const bool task_fits = c.data.task == Task::kTranslation ? encdec
                         : c.data.task == Task::kCopies    ? m.type == ModelType::kBert
                                                           : !encdec;
  if (task && !task_fits)
    return Issue{"data.task",
                 {"model.type"},
                 name_of(c.data.task) + " is not a synthetic task of model.type " +
                     name_of(m.type) +
                     " (gpt: addition; encdec: translation; bert: copies or "
                     "addition)"};
  if (task && encdec && c.data.task_digits > 9)
    return Issue{
        "data.task_digits",
        {"data.task"},
        "the translation task writes numbers of at most 9 digits, got " + str(c.data.task_digits)};
  if (encdec)
    for (const auto& [key, text] :
         {std::pair<const char*, const std::string*>{"data.pad_token", &c.data.pad_token},
          {"data.bos_token", &c.data.bos_token},
          {"data.eos_token", &c.data.eos_token}})
      if (text->empty())
        return Issue{key, {"model.type"}, "an encdec model needs it (padding, decoder start, end)"};
  // "A+B=R\n" (io/addition_task.h) or "abcde abcde abcde\n" (io/copy_task.h)
  const int task_line = c.data.task == Task::kCopies ? 18 : 3 * c.data.task_digits + 4;
  // BERT's sequences add [CLS] and a [SEP] per segment, and a sentence head needs two segments.
  const bool bert = m.type == ModelType::kBert;
  const bool two = bert && m.sentence_head != SentenceHead::kNone;
  const int task_tokens = !bert ? task_line : two ? 2 * task_line + 3 : task_line + 2;
  const std::string what = c.data.task == Task::kCopies
                               ? "line of copies"
                               : "addition problem of " + str(c.data.task_digits) + " digits";
  if (task && !encdec && m.seq_len < task_tokens)
    return Issue{"model.seq_len",
                 {"data.task_digits", "data.train"},
                 "seq_len (" + str(m.seq_len) + ") must hold " +
                     (two ? "two segments of one " + what : "one " + what) + " (" +
                     str(task_tokens) + " tokens" + (bert ? " with [CLS] and [SEP]" : "") + ")"};
  if (task && bert && c.data.task == Task::kAddition && c.data.mlm_whole_word)
    return Issue{"data.mlm.whole_word",
                 {"data.train"},
                 "the synthetic task's lines have no spaces: each line would be one word, longer "
                 "than the predictions of a sequence, and nothing would be masked"};
  if (task && bert && c.data.task == Task::kCopies && c.data.mlm_whole_word) {
    // The words of a copies line are "qwert", " qwert", " qwert" and "\n" (io/mlm_task.h); a
    // sequence whose predictions cannot hold a 6-token copy would only ever mask newlines.
    const int ordinary = m.seq_len - (two ? 3 : 2);
    const int budget = std::min(
        c.data.mlm_predictions(m.seq_len),
        std::max(1, static_cast<int>(
                        std::floor(ordinary * static_cast<double>(c.data.mlm_prob) + 0.5))));
    if (budget < 6)
      return Issue{"data.mlm.whole_word",
                   {"data.mlm.prob", "data.mlm.max_predictions", "model.seq_len"},
                   "a word of the copies task is a copy of 5 or 6 tokens, but a sequence has at "
                   "most " +
                       str(budget) +
                       " predictions, so only the newlines would be masked; raise model.seq_len "
                       "or data.mlm.prob"};
  }
  if (!c.data.tokenizer.empty() && c.data.train.empty())
    return Issue{"data.tokenizer",
                 {"data.train"},
                 "a tokenizer needs token shards in data.train (the synthetic task is "
                 "byte-level); make them with 'polyhead prepare --tokenizer'"};
  // (The translation and BERT tasks make their own tokenizers, with the family's special tokens.)
  if (const auto specials = special_tokens(c.data);
      c.data.tokenizer.empty() && !specials.empty() && !(task && m.type != ModelType::kGpt))
    return Issue{specials[0].first,
                 {"data.tokenizer"},
                 "special token \"" + printable(specials[0].second) +
                     "\" needs a BPE tokenizer (data.tokenizer); the byte-level tokenizer has "
                     "none"};
  if (auto issue = check_bert(c)) return issue;
  if (auto issue = check_early_stopping(c)) return issue;
  if (c.sample.top_k > m.vocab_size)
    return Issue{"sample.top_k",
                 {"model.vocab_size"},
                 "top_k (" + str(c.sample.top_k) + ") must not exceed model.vocab_size (" +
                     str(m.vocab_size) + ")"};
  return std::nullopt;
}

std::optional<Issue> find_issue(const Config& cfg,
                                const std::map<std::string, std::string>& unknown_choices) {
  Config copy = cfg;
  for (const Option& o : option_table(copy)) {
    const auto bad = unknown_choices.find(std::string(o.key));
    if (auto issue = check_option(o, bad == unknown_choices.end() ? nullptr : &bad->second))
      return issue;
  }
  return check_consistency(cfg);
}

}  // namespace

// ---------------------------------------------------------------------------------------

std::vector<std::pair<std::string, std::string>> special_tokens(const DataConfig& d) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [key, text] :
       {std::pair<const char*, const std::string*>{"data.eot_token", &d.eot_token},
        {"data.pad_token", &d.pad_token},
        {"data.bos_token", &d.bos_token},
        {"data.eos_token", &d.eos_token},
        {"data.cls_token", &d.cls_token},
        {"data.sep_token", &d.sep_token},
        {"data.mask_token", &d.mask_token}})
    if (!text->empty()) out.emplace_back(key, *text);
  return out;
}

void validate_config(const Config& cfg) {
  if (auto issue = find_issue(cfg, {})) throw InputError(issue->key + ": " + issue->message);
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
  apply_family_defaults(cfg, [&](const std::string& key) { return reader.given(key); });

  if (auto issue = find_issue(cfg, reader.unknown_choices())) {
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
        [&](auto p) {
          using T = std::remove_pointer_t<decltype(p)>;
          if constexpr (std::is_same_v<T, EnumRef>) {
            value = p.name();
          } else if constexpr (std::is_same_v<T, float>) {
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
    if (const auto* e = std::get_if<EnumRef>(&o.field))
      line += "; one of " + describe_choices(e->names);
    if (!unlimited(o.limits) && !std::holds_alternative<bool*>(o.field) &&
        !std::holds_alternative<std::string*>(o.field))
      line += "; " + describe_limits(o.limits);
    out += line + "\n";
  }
  return out;
}

std::vector<ConfigDifference> config_differences(const Config& a, const Config& b,
                                                 bool architecture_only) {
  Config ca = a, cb = b;
  // The FFN width is what the architecture has: d_ff 0 and d_ff 4·d_model are the same model.
  // (Both 0: any difference in width comes from d_model, which is reported already.)
  if (ca.model.d_ff != 0 || cb.model.d_ff != 0) {
    ca.model.d_ff = ca.model.ffn_width();
    cb.model.d_ff = cb.model.ffn_width();
  }
  // So are the encoder-decoder's depths and source length ("0 means n_layers / seq_len").
  if (ca.model.type == ModelType::kEncDec && cb.model.type == ModelType::kEncDec) {
    for (ModelConfig* m : {&ca.model, &cb.model}) {
      m->encoder_layers = m->encoder_depth();
      m->decoder_layers = m->decoder_depth();
      m->src_seq_len = m->source_len();
    }
  }
  const std::vector<Option> ta = option_table(ca), tb = option_table(cb);
  std::vector<ConfigDifference> out;
  for (size_t i = 0; i < ta.size(); ++i) {
    if (architecture_only && !ta[i].architecture) continue;
    const std::string va = value_text(ta[i].field), vb = value_text(tb[i].field);
    if (va != vb) out.push_back({std::string(ta[i].key), va, vb});
  }
  return out;
}

}  // namespace ph

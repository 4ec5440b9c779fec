// Formatting, key paths and suggestions of the config (io/config_text.h).
#include "io/config_text.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <type_traits>
#include <variant>

namespace ph::config_detail {

namespace {

std::string format_number(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  return format_float(static_cast<float>(v));
}

std::string leaf_of(std::string_view path) {
  const size_t dot = path.rfind('.');
  return std::string(dot == std::string_view::npos ? path : path.substr(dot + 1));
}

std::string parent_of(const std::string& path) {
  const size_t dot = path.rfind('.');
  return dot == std::string::npos ? "" : path.substr(0, dot);
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

}  // namespace

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

std::string describe_choices(std::span<const std::string_view> choices) {
  std::string out = "{";  // appended, not "{" + ...: g++ 12 warns (-Wrestrict) on that form
  out += join({choices.begin(), choices.end()}, ", ");
  return out + "}";
}

const char* type_name(const Field& f) {
  static constexpr const char* kNames[] = {"int",    "uint64", "float", "bool",
                                           "string", "list",   "choice"};
  return kNames[f.index()];
}

// The value of a field as YAML text (for help and messages).
std::string value_text(const Field& f) {
  return std::visit(
      [](auto p) -> std::string {
        using T = std::remove_pointer_t<decltype(p)>;
        if constexpr (std::is_same_v<T, EnumRef>) {
          return p.name();
        } else if constexpr (std::is_same_v<T, float>) {
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
      return std::string("'").append(printable(n.Scalar())).append("'");
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

}  // namespace ph::config_detail

namespace ph {

namespace {

// The length of the valid UTF-8 sequence at s[i] (0: none starts there).
size_t utf8_length(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  const size_t n = c < 0x80           ? 1
                   : (c >> 5) == 0x6  ? 2
                   : (c >> 4) == 0xe  ? 3
                   : (c >> 3) == 0x1e ? 4
                                      : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((b(i + k) >> 6) != 0x2) return 0;
  return n;
}

}  // namespace

std::string printable(std::string_view s) {
  constexpr size_t kMaxShown = 200;  // bytes of the value shown; the rest is counted
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  size_t i = 0;
  while (i < s.size() && i < kMaxShown) {
    const auto u = static_cast<unsigned char>(s[i]);
    const size_t n = utf8_length(s, i);
    if (s[i] == '\n') {
      out += "\\n";
    } else if (s[i] == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f || n == 0) {  // control bytes, bytes that are not UTF-8
      out += {'\\', 'x', kHex[u >> 4], kHex[u & 15]};
    } else {
      out.append(s.substr(i, n));
      i += n;
      continue;
    }
    ++i;
  }
  if (i < s.size()) out += "... (" + std::to_string(s.size()) + " bytes in all)";
  return out;
}

}  // namespace ph

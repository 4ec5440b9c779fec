// The config's option table (internal to io/config*.cpp): every key, the field of a Config it
// reads and writes, its allowed values and its help. Everything else about the config is
// driven by this table.
#pragma once
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "io/config.h"

namespace ph::config_detail {

inline constexpr double kInf = std::numeric_limits<double>::infinity();
inline constexpr const char* kCommandLine = "command line";

// An enum field of one Config, read and written by its names (EnumNames).
struct EnumRef {
  void* target = nullptr;
  std::span<const std::string_view> names;
  int (*get)(const void*) = nullptr;
  void (*set)(void*, int) = nullptr;

  std::string name() const { return std::string(names[static_cast<size_t>(get(target))]); }
  // The index of `text` among the names, or -1.
  int find(std::string_view text) const {
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i] == text) return static_cast<int>(i);
    return -1;
  }
};

template <class E>
EnumRef enum_ref(E* p) {
  return EnumRef{p, EnumNames<E>::names,
                 [](const void* q) { return static_cast<int>(*static_cast<const E*>(q)); },
                 [](void* q, int v) { *static_cast<E*>(q) = static_cast<E>(v); }};
}

// The field of one Config that an option reads and writes.
using Field =
    std::variant<int*, uint64_t*, float*, bool*, std::string*, std::vector<std::string>*, EnumRef>;

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
constexpr Limits fraction() {  // [0, 1)
  return {0.0, 1.0, false, true};
}
constexpr Limits between(double lo, double hi) {
  return {lo, hi, false, false};
}

struct Option {
  std::string_view key;    // dotted path; YAML nests along the dots
  Field field;             // the value, bound to one Config
  Limits limits{};         // numbers only
  bool non_empty = false;  // strings only
  // Part of the model's architecture: a checkpoint loads only into a config with the same
  // values (the other keys may change on resume).
  bool architecture = false;
  std::string_view help;
};

// THE option table of `c`: every key, its type (the field's), its default (the field's initial
// value in a default Config), its allowed values and its help. The order is the order of
// config_to_yaml and config_help.
std::vector<Option> option_table(Config& c);

}  // namespace ph::config_detail

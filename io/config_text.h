// Text of the config machinery (internal to io/config*.cpp): values and limits as they appear
// in YAML and in messages, key paths, and the did-you-mean of an unknown key.
#pragma once
#include <yaml-cpp/yaml.h>

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/config_schema.h"

namespace ph::config_detail {

// The shortest decimal text that reads back as the same float, with a '.' or an exponent.
std::string format_float(float v);
std::string describe_limits(const Limits& l);  // ">= 1", "in [0, 1)"
bool unlimited(const Limits& l);
std::string join(const std::vector<std::string_view>& items, std::string_view sep);
std::string describe_choices(std::span<const std::string_view> choices);  // "{pre, post}"
const char* type_name(const Field& f);                                    // "int", "choice"
std::string value_text(const Field& f);  // the value as YAML text ('' for an empty string)
// How a YAML node looks, for "got ..." in messages.
std::string describe_node(const YAML::Node& n);
// Throws InputError "<origin>: <key>: <message>".
[[noreturn]] void fail(const std::string& origin, const std::string& key,
                       const std::string& message);

std::vector<std::string> split_path(const std::string& path);  // "a.b" -> {"a", "b"}
// Every proper prefix of a key ("model", "model.dropout"), in table order.
std::vector<std::string> group_paths(const std::vector<Option>& table);
// The names directly inside a group ("" is the top level), in table order.
std::vector<std::string_view> children_of(const std::vector<Option>& table,
                                          const std::string& group);
// "unknown key (did you mean 'x'?)" for a path that is neither an option nor a group.
std::string unknown_message(const std::vector<Option>& table, const std::string& path);

}  // namespace ph::config_detail

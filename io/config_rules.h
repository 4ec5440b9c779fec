// The rules of the config that depend on the model family (internal to io/config*.cpp): the
// family defaults of the keys a config leaves out, the keys only one family has, BERT's
// masked-LM view, and the evaluation metrics a run reports (early stopping follows one).
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "io/config.h"
#include "io/config_text.h"

namespace ph::config_detail {

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

// Sets the family's defaults (encdec: the paper's; bert: BERT's) of the keys for which
// given(key) is false: the file and the command line left them out.
void apply_family_defaults(Config& c, const std::function<bool(const std::string&)>& given);

// A key of another family that does not keep its default.
std::optional<Issue> check_family_keys(const Config& c);

// BERT's rules: its special tokens, data.mlm.* against seq_len, room for two segments.
std::optional<Issue> check_bert(const Config& c);

// train.early_stopping, its metric and checkpoint.keep_best: the metric must be one the run
// reports, and following it needs validation data (to stop early, evaluations before the end).
std::optional<Issue> check_early_stopping(const Config& c);

}  // namespace ph::config_detail

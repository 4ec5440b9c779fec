#include "trainer/logits_file.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "trainer/training_log.h"

namespace ph {

namespace {

template <class T>
void append_list(std::string& out, const char* key, const std::vector<T>& v, size_t n,
                 const char* fmt) {
  out += ", \"";
  out += key;
  out += "\": [";
  char buf[32];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, fmt, v[i]);
    if (i) out += ", ";
    out += buf;
  }
  out += "]";
}

void append_int(std::string& out, const char* key, long long value) {
  out += ", \"" + std::string(key) + "\": " + std::to_string(value);
}

}  // namespace

void write_logits_file(const std::string& path, Model& model, SampleSource& val, int batch) {
  const ModelConfig& m = model.config();
  Batch b;
  val.shape(b, batch);
  const int count = static_cast<int>(std::min<uint64_t>(static_cast<uint64_t>(batch), val.size()));
  if (count < 1) throw InputError("eval --logits: the evaluation data holds no sample");
  val.fill(0, count, b);
  int64_t counted = 0;
  model.loss(b, DropoutContext{}, &counted);
  const int rows = model.loss_rows(b);
  const size_t Vl = static_cast<size_t>(model.local_vocab()), V = static_cast<size_t>(m.vocab_size);
  std::vector<float> padded(static_cast<size_t>(rows) * Vl), logits;
  model.download_logits(padded.data(), 0, rows);
  logits.reserve(static_cast<size_t>(rows) * V);
  for (int r = 0; r < rows; ++r)
    logits.insert(logits.end(), padded.begin() + static_cast<long>(r * Vl),
                  padded.begin() + static_cast<long>(r * Vl + V));

  const size_t BT = static_cast<size_t>(b.B) * static_cast<size_t>(b.T);
  std::string out = "{\"family\": \"" + name_of(m.type) + "\"";
  append_int(out, "B", b.B);
  append_int(out, "T", b.T);
  append_int(out, "V", m.vocab_size);
  append_int(out, "rows", rows);
  append_list(out, "tokens", b.tokens, BT, "%d");
  append_list(out, "targets", b.targets, static_cast<size_t>(rows), "%d");
  if (m.type == ModelType::kEncDec) {
    append_int(out, "S", b.S);
    append_list(out, "source", b.source, static_cast<size_t>(b.B) * static_cast<size_t>(b.S), "%d");
    append_list(out, "source_lengths", b.source_lengths, static_cast<size_t>(b.B), "%d");
  }
  if (m.type == ModelType::kBert) {
    append_int(out, "P", b.P);
    append_list(out, "types", b.types, BT, "%d");
    append_list(out, "lengths", b.lengths, static_cast<size_t>(b.B), "%d");
    append_list(out, "mlm_positions", b.mlm_positions,
                static_cast<size_t>(b.B) * static_cast<size_t>(b.P), "%d");
    std::vector<int32_t> labels = b.sentence_labels;
    labels.resize(static_cast<size_t>(b.B), kIgnoreIndex);
    append_list(out, "sentence_labels", labels, labels.size(), "%d");
  }
  out.reserve(out.size() + logits.size() * 17);
  std::vector<double> wide(logits.begin(), logits.end());
  append_list(out, "logits", wide, wide.size(), "%.9g");
  out += "}\n";
  write_text_atomically(path, out, "eval --logits");
}

}  // namespace ph

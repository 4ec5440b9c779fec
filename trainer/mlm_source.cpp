#include "trainer/mlm_source.h"

namespace ph {

namespace {

class MlmSource final : public SampleSource {
 public:
  explicit MlmSource(std::unique_ptr<MlmDataset> data) : data_(std::move(data)) {}
  uint64_t size() const override { return data_->num_chunks(); }
  void shape(Batch& b, int rows) const override {
    const size_t r = static_cast<size_t>(rows);
    b.B = rows;
    b.T = data_->seq_len();
    b.P = data_->predictions();
    b.tokens.resize(r * static_cast<size_t>(b.T));
    b.types.resize(r * static_cast<size_t>(b.T));
    b.lengths.resize(r);
    b.mlm_positions.resize(r * static_cast<size_t>(b.P));
    b.targets.resize(r * static_cast<size_t>(b.P));
    if (data_->has_sentence_labels())
      b.sentence_labels.resize(r);
    else
      b.sentence_labels.clear();
  }
  void fill(uint64_t first, int count, Batch& b) override {
    b.B = count;
    MlmRows rows;
    rows.tokens = b.tokens.data();
    rows.types = b.types.data();
    rows.lengths = b.lengths.data();
    rows.positions = b.mlm_positions.data();
    rows.targets = b.targets.data();
    rows.sentence_labels = data_->has_sentence_labels() ? b.sentence_labels.data() : nullptr;
    data_->fill(first, count, rows);
  }

 private:
  std::unique_ptr<MlmDataset> data_;
};

}  // namespace

std::unique_ptr<SampleSource> mlm_source(std::unique_ptr<MlmDataset> data) {
  return std::make_unique<MlmSource>(std::move(data));
}

}  // namespace ph

#include "trainer/sample_source.h"

namespace ph {

namespace {

class WindowSource final : public SampleSource {
 public:
  explicit WindowSource(std::unique_ptr<TokenDataset> data) : data_(std::move(data)) {}
  uint64_t size() const override { return data_->num_windows(); }
  void shape(Batch& b, int rows) const override {
    const size_t n = static_cast<size_t>(rows) * static_cast<size_t>(data_->seq_len());
    b.B = rows;
    b.T = data_->seq_len();
    b.tokens.resize(n);
    b.targets.resize(n);
  }
  void fill(uint64_t first, int count, Batch& b) override {
    b.B = count;
    data_->fill(first, count, b.tokens.data(), b.targets.data());
  }

 private:
  std::unique_ptr<TokenDataset> data_;
};

class PairSource final : public SampleSource {
 public:
  explicit PairSource(std::unique_ptr<PairDataset> data) : data_(std::move(data)) {}
  uint64_t size() const override { return data_->num_pairs(); }
  void shape(Batch& b, int rows) const override {
    const size_t r = static_cast<size_t>(rows);
    b.B = rows;
    b.T = data_->target_len();
    b.S = data_->source_len();
    b.tokens.resize(r * static_cast<size_t>(b.T));
    b.targets.resize(r * static_cast<size_t>(b.T));
    b.source.resize(r * static_cast<size_t>(b.S));
    b.source_lengths.resize(r);
  }
  void fill(uint64_t first, int count, Batch& b) override {
    b.B = count;
    data_->fill(first, count, b.source.data(), b.source_lengths.data(), b.tokens.data(),
                b.targets.data());
  }
  PairDataset* pairs() override { return data_.get(); }

 private:
  std::unique_ptr<PairDataset> data_;
};

}  // namespace

std::unique_ptr<SampleSource> window_source(std::unique_ptr<TokenDataset> data) {
  return std::make_unique<WindowSource>(std::move(data));
}

std::unique_ptr<SampleSource> pair_source(std::unique_ptr<PairDataset> data) {
  return std::make_unique<PairSource>(std::move(data));
}

}  // namespace ph

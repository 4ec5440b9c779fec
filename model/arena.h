// A contiguous, 64-byte aligned float buffer, sized once at start-up and never resized:
// parameters, gradients, optimizer moments and activations each live in one.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>

namespace ph {

class Arena {
 public:
  Arena() = default;
  explicit Arena(size_t n) : size_(n) {
    if (n == 0) return;
    const size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    data_ = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!data_) throw std::bad_alloc();
    std::memset(data_, 0, bytes);
  }
  ~Arena() { std::free(data_); }
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  Arena(Arena&& o) noexcept : data_(o.data_), size_(o.size_) {
    o.data_ = nullptr;
    o.size_ = 0;
  }
  Arena& operator=(Arena&& o) noexcept {
    if (this != &o) {
      std::free(data_);
      data_ = o.data_;
      size_ = o.size_;
      o.data_ = nullptr;
      o.size_ = 0;
    }
    return *this;
  }

  float* data() { return data_; }
  const float* data() const { return data_; }
  size_t size() const { return size_; }
  void zero() {
    if (data_) std::memset(data_, 0, size_ * sizeof(float));
  }

 private:
  float* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace ph

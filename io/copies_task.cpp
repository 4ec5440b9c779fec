#include "io/copies_task.h"

#include <algorithm>
#include <filesystem>
#include <stdexcept>
#include <utility>

#include "io/config.h"
#include "io/shard.h"
#include "kernels/common/rng_streams.h"

namespace ph {

std::string CopiesTask::word(uint32_t w) {
  if (w >= kWords) throw std::out_of_range("copies task: word " + std::to_string(w));
  std::string s(kLetters, 'a');
  for (int i = kLetters; i-- > 0; w /= 26)
    s[static_cast<size_t>(i)] = static_cast<char>('a' + w % 26);
  return s;
}

std::string CopiesTask::line(uint32_t w) {
  const std::string one = word(w);
  std::string s;
  s.reserve(kLineLength);
  for (int k = 0; k < kCopies; ++k) {
    s += one;
    s.push_back(k + 1 < kCopies ? ' ' : '\n');
  }
  return s;
}

bool CopiesTask::is_val(uint32_t w) {
  return philox4x32(w, 0, 0, 0, hash_name("copies.val"), 0).v[0] % 10 == 0;
}

void CopiesTask::draw(uint64_t seed, int train_lines, int val_lines, std::vector<uint32_t>& train,
                      std::vector<uint32_t>& val) {
  const size_t n_train = static_cast<size_t>(std::max(train_lines, 0));
  const size_t n_val = static_cast<size_t>(std::max(val_lines, 0));
  train.clear();
  val.clear();
  train.reserve(n_train);
  val.reserve(n_val);
  // 2^32 minus its remainder mod kWords: the largest multiple of kWords that fits in 2^32.
  constexpr uint64_t limit = (uint64_t{1} << 32) - (uint64_t{1} << 32) % kWords;
  // Terminates: both splits hold about a tenth and nine tenths of the words (tested).
  uint64_t counter = 0;
  while (train.size() < n_train || val.size() < n_val) {
    const uint32_t x = philox_bits(seed, rng::kCopiesA, 0, counter++);
    if (x >= limit) continue;
    const uint32_t w = x % kWords;
    const bool v = is_val(w);
    std::vector<uint32_t>& split = v ? val : train;
    if (split.size() < (v ? n_val : n_train)) split.push_back(w);
  }
}

void CopiesTask::generate(const std::string& dir, uint64_t seed, int train_lines, int val_lines) {
  for (const auto& [name, n] :
       {std::pair{"train_problems", train_lines}, std::pair{"val_problems", val_lines}}) {
    if (n < 1)
      throw InputError(std::string("copies task: ") + name + " must be >= 1, got " +
                       std::to_string(n));
    if (static_cast<uint64_t>(n) * kLineLength > kShardMaxTokens)
      throw InputError("copies task: " + std::to_string(n) + " lines of " +
                       std::to_string(kLineLength) + " bytes exceed a shard's " +
                       std::to_string(kShardMaxTokens) + " tokens");
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw InputError("copies task: cannot create directory '" + dir + "': " + ec.message());

  std::vector<uint32_t> train, val;
  draw(seed, train_lines, val_lines, train, val);
  const std::filesystem::path base(dir);
  for (const auto& [file, words] : {std::pair{"train.bin", &train}, std::pair{"val.bin", &val}}) {
    std::vector<uint16_t> tokens;
    tokens.reserve(words->size() * kLineLength);
    for (const uint32_t w : *words)
      for (const char c : line(w)) tokens.push_back(static_cast<unsigned char>(c));
    update_byte_shard((base / file).string(), tokens);
  }
}

}  // namespace ph

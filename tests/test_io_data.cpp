// Token shards, the dataset's sample order, the byte tokenizer, the addition task and text
// preparation. Every file lives under a fresh temporary directory.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "input_error.h"
#include "io/addition_task.h"
#include "io/config.h"
#include "io/dataset.h"
#include "io/prepare.h"
#include "io/shard.h"
#include "io/tokenizer.h"

namespace fs = std::filesystem;

// Counts the calls of the global operator new, to check that TokenDataset::fill allocates
// nothing. Not inlined, so that the compiler sees new and delete as a matched pair.
static std::atomic<long> g_allocations{0};

__attribute__((noinline)) void* operator new(std::size_t n) {
  ++g_allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
__attribute__((noinline)) void operator delete(void* p) noexcept {
  std::free(p);
}
__attribute__((noinline)) void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace {

using ph::testing::input_error;

#define EXPECT_INPUT_ERROR(stmt, substr)                                    \
  do {                                                                      \
    const std::string msg_ = input_error([&] { stmt; });                    \
    EXPECT_FALSE(msg_.empty()) << "no InputError from: " #stmt;             \
    EXPECT_NE(msg_.find(substr), std::string::npos) << "message: " << msg_; \
  } while (0)

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void write_text(const std::string& path, const std::string& text) {
  write_bytes(path, std::vector<char>(text.begin(), text.end()));
}

// An llm.c shard built byte by byte: header (magic, version, count) and raw uint16 tokens.
std::vector<char> shard_bytes(int32_t magic, int32_t version, int32_t count,
                              const std::vector<uint16_t>& tokens) {
  std::vector<char> b(1024, 0);
  const int32_t h[3] = {magic, version, count};
  for (int i = 0; i < 3; ++i) {
    for (int k = 0; k < 4; ++k) {
      b[static_cast<size_t>(4 * i + k)] =
          static_cast<char>((static_cast<uint32_t>(h[i]) >> (8 * k)) & 0xFF);
    }
  }
  for (const uint16_t t : tokens) {
    b.push_back(static_cast<char>(t & 0xFF));
    b.push_back(static_cast<char>(t >> 8));
  }
  return b;
}

// The same for llm.c's uint32 layout (magic 20240801, version 7).
std::vector<char> shard_bytes32(int32_t magic, int32_t version, int32_t count,
                                const std::vector<uint32_t>& tokens) {
  std::vector<char> b = shard_bytes(magic, version, count, {});
  for (const uint32_t t : tokens)
    for (int k = 0; k < 4; ++k) b.push_back(static_cast<char>((t >> (8 * k)) & 0xFF));
  return b;
}

// Tokens of a shard read naively from its bytes.
std::vector<uint16_t> naive_tokens(const std::string& path) {
  const std::vector<char> b = read_bytes(path);
  std::vector<uint16_t> t;
  for (size_t i = 1024; i + 1 < b.size(); i += 2) {
    t.push_back(static_cast<uint16_t>(static_cast<unsigned char>(b[i]) |
                                      (static_cast<unsigned char>(b[i + 1]) << 8)));
  }
  return t;
}

class IoData : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ph_test_io_data_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (fs::path(dir_) / name).string(); }

  std::string dir_;
};

// ---------------------------------------------------------------------------- shards

TEST_F(IoData, ShardRoundTrip) {
  std::vector<uint16_t> tokens(1000);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<uint16_t>((i * 7919) % 50257);
  const std::string p = path("a.bin");
  ph::write_shard(p, tokens.data(), tokens.size());
  EXPECT_FALSE(fs::exists(p + ".tmp"));
  EXPECT_EQ(fs::file_size(p), 1024u + 2 * tokens.size());
  EXPECT_EQ(read_bytes(p), shard_bytes(20240520, 1, 1000, tokens));  // exact llm.c bytes

  const ph::Shard s = ph::Shard::open(p, 50257);
  EXPECT_EQ(s.path(), p);
  ASSERT_EQ(s.size(), tokens.size());
  EXPECT_TRUE(std::equal(tokens.begin(), tokens.end(), s.tokens()));
}

TEST_F(IoData, ShardEmptyAndMove) {
  const std::string p = path("empty.bin");
  ph::write_shard(p, nullptr, 0);
  EXPECT_EQ(ph::Shard::open(p, 256).size(), 0u);

  const std::vector<uint16_t> tokens = {1, 2, 3};
  ph::write_shard(path("b.bin"), tokens.data(), 3);
  ph::Shard a = ph::Shard::open(path("b.bin"), 4);
  const uint16_t* data = a.tokens();
  ph::Shard b = std::move(a);
  EXPECT_EQ(b.tokens(), data);
  EXPECT_EQ(b.size(), 3u);
  ph::Shard c = ph::Shard::open(p, 256);
  c = std::move(b);
  EXPECT_EQ(c.tokens(), data);
  EXPECT_EQ(c.tokens()[2], 3);
  EXPECT_EQ(c.path(), path("b.bin"));
}

TEST_F(IoData, TokenShardLayoutFollowsTheVocabulary) {
  std::vector<int32_t> ids(3000);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 7919) % 65536);
  EXPECT_EQ(ph::token_width_for(65536), ph::TokenWidth::U16);
  EXPECT_EQ(ph::token_width_for(65537), ph::TokenWidth::U32);
  ph::write_token_shard(path("16.bin"), ids.data(), ids.size(), 65536);
  EXPECT_EQ(read_bytes(path("16.bin")),
            shard_bytes(20240520, 1, 3000, std::vector<uint16_t>(ids.begin(), ids.end())));
  ids[5] = 100276;  // cl100k's largest id: only the uint32 layout holds it
  ph::write_token_shard(path("32.bin"), ids.data(), ids.size(), 100277);
  EXPECT_EQ(read_bytes(path("32.bin")),
            shard_bytes32(20240801, 7, 3000, std::vector<uint32_t>(ids.begin(), ids.end())));
  const ph::Shard s = ph::Shard::open(path("32.bin"), 100277);
  EXPECT_EQ(s.width(), ph::TokenWidth::U32);
  EXPECT_EQ(s.tokens(), nullptr);
  ASSERT_NE(s.tokens32(), nullptr);
  std::vector<int32_t> back(ids.size());
  s.read(0, ids.size(), back.data());
  EXPECT_EQ(back, ids);
  EXPECT_INPUT_ERROR(ph::Shard::open(path("32.bin"), 100276),
                     "token id 100276 at position 5 is >= vocab_size 100276");
  EXPECT_THROW(ph::write_token_shard(path("bad.bin"), ids.data(), ids.size(), 100276),
               std::logic_error);
  EXPECT_FALSE(fs::exists(path("bad.bin")));
}

TEST_F(IoData, ShardValidationErrors) {
  const std::vector<uint16_t> good = {1, 2, 3, 4, 5};
  struct Case {
    std::string name;
    std::vector<char> bytes;
    std::string message;
  };
  std::vector<char> truncated = shard_bytes(20240520, 1, 5, good);
  truncated.pop_back();
  std::vector<char> trailing = shard_bytes(20240520, 1, 5, good);
  trailing.push_back('x');
  const std::vector<Case> cases = {
      {"empty.bin", {}, "file is 0 bytes, smaller than the 1024-byte header"},
      {"small.bin", std::vector<char>(10, 0),
       "file is 10 bytes, smaller than the 1024-byte header"},
      {"magic.bin", shard_bytes(12345, 1, 5, good),
       "bad magic number 12345 (expected 20240520 or 20240801); not an llm.c token shard"},
      {"version.bin", shard_bytes(20240520, 2, 5, good),
       "unsupported version 2 (expected 1 for magic 20240520)"},
      {"version32.bin", shard_bytes32(20240801, 1, 5, {1, 2, 3, 4, 5}),
       "unsupported version 1 (expected 7 for magic 20240801)"},
      {"short32.bin", shard_bytes32(20240801, 7, 6, {1, 2, 3, 4, 5}),
       "file is 1044 bytes but the header's token count 6 needs 1024 + 4*6 = 1048 bytes"},
      {"vocab32.bin", shard_bytes32(20240801, 7, 4, {7, 255, 70000, 2}),
       "token id 70000 at position 2 is >= vocab_size 256"},
      {"negative.bin", shard_bytes(20240520, 1, -5, good), "header token count -5 is negative"},
      {"short.bin", shard_bytes(20240520, 1, 10, good),
       "file is 1034 bytes but the header's token count 10 needs 1024 + 2*10 = 1044 bytes"},
      {"odd.bin", truncated,
       "file is 1033 bytes but the header's token count 5 needs 1024 + 2*5 = 1034 bytes"},
      {"long.bin", trailing,
       "file is 1035 bytes but the header's token count 5 needs 1024 + 2*5 = 1034 bytes"},
      {"vocab.bin", shard_bytes(20240520, 1, 5, {1, 2, 3, 300, 999}),
       "token id 300 at position 3 is >= vocab_size 256"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    write_bytes(path(c.name), c.bytes);
    EXPECT_INPUT_ERROR(ph::Shard::open(path(c.name), 256),
                       "data shard '" + path(c.name) + "': " + c.message);
  }
  // The same token ids pass with a vocabulary that holds them.
  EXPECT_EQ(ph::Shard::open(path("vocab.bin"), 1000).size(), 5u);
  EXPECT_EQ(ph::Shard::open(path("vocab.bin"), 65536).size(), 5u);

  EXPECT_INPUT_ERROR(
      ph::Shard::open(path("missing.bin"), 256),
      "data shard '" + path("missing.bin") + "': cannot open: No such file or directory");
  EXPECT_INPUT_ERROR(ph::Shard::open(dir_, 256), "data shard '" + dir_ + "': not a regular file");
}

TEST_F(IoData, ShardWriteErrors) {
  const uint16_t tokens[3] = {1, 2, 3};
  // A missing directory, and a "directory" that is a file: not writable (even for root).
  EXPECT_INPUT_ERROR(
      ph::write_shard(path("nodir/a.bin"), tokens, 3),
      "cannot write shard '" + path("nodir/a.bin.tmp") + "': No such file or directory");
  write_text(path("file"), "x");
  EXPECT_INPUT_ERROR(ph::write_shard(path("file/a.bin"), tokens, 3),
                     "cannot write shard '" + path("file/a.bin.tmp") + "': Not a directory");
  EXPECT_INPUT_ERROR(ph::ShardWriter(path("huge.bin"), 1ull << 31),
                     "shard '" + path("huge.bin") +
                         "': 2147483648 tokens exceed the format's limit of 2147483647");
  EXPECT_FALSE(fs::exists(path("huge.bin.tmp")));
}

TEST_F(IoData, ShardWriterNeverLeavesPartialFiles) {
  const std::string p = path("good.bin");
  const uint16_t old_tokens[2] = {7, 8};
  ph::write_shard(p, old_tokens, 2);
  const std::vector<char> old_bytes = read_bytes(p);
  const uint16_t tokens[3] = {1, 2, 3};
  {
    ph::ShardWriter w(p, 3);
    w.write(tokens, 2);  // abandoned before commit
    EXPECT_TRUE(fs::exists(p + ".tmp"));
  }
  EXPECT_FALSE(fs::exists(p + ".tmp"));
  EXPECT_EQ(read_bytes(p), old_bytes);
  {
    ph::ShardWriter w(p, 3);
    w.write(tokens, 2);
    EXPECT_INPUT_ERROR(w.commit(), "shard '" + p + "': wrote 2 tokens, the header says 3");
  }
  EXPECT_FALSE(fs::exists(p + ".tmp"));
  EXPECT_EQ(read_bytes(p), old_bytes);
  {
    ph::ShardWriter w(p, 3);  // in pieces
    w.write(tokens, 1);
    w.write(tokens + 1, 2);
    w.commit();
  }
  const ph::Shard s = ph::Shard::open(p, 256);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s.tokens()[2], 3);
}

// ---------------------------------------------------------------------------- dataset

class Dataset : public IoData {
 protected:
  static constexpr int T = 4;
  // Shards with globally unique tokens (a running counter), so a window is identified by
  // its first token. Sizes exercise: exactly T+1, a multiple of T, remainders.
  void SetUp() override {
    IoData::SetUp();
    const std::vector<size_t> sizes = {5, 12, 17, 9, 40, 64, 33};
    uint16_t next = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      std::vector<uint16_t> tokens(sizes[i]);
      for (uint16_t& t : tokens) t = next++;
      const std::string p = path("shard_" + std::to_string(i) + ".bin");
      ph::write_shard(p, tokens.data(), tokens.size());
      files_.push_back(p);
    }
    // The naive reference: every window of every shard, read from the raw bytes.
    for (const std::string& f : files_) {
      const std::vector<uint16_t> t = naive_tokens(f);
      for (size_t start = 0; start + T + 1 <= t.size(); start += T) {
        windows_.emplace_back(t.begin() + static_cast<std::ptrdiff_t>(start),
                              t.begin() + static_cast<std::ptrdiff_t>(start + T + 1));
      }
    }
  }

  // The window that row r of a fill() holds, checked against the reference.
  size_t window_in(const std::vector<int32_t>& in, const std::vector<int32_t>& tg, int r) {
    const size_t row = static_cast<size_t>(r) * T;
    for (size_t w = 0; w < windows_.size(); ++w) {
      if (windows_[w][0] != in[row]) continue;
      for (size_t t = 0; t < T; ++t) {
        EXPECT_EQ(in[row + t], windows_[w][t]);
        EXPECT_EQ(tg[row + t], windows_[w][t + 1]);
      }
      return w;
    }
    ADD_FAILURE() << "row " << r << " is no window";
    return 0;
  }

  std::vector<size_t> sample_windows(ph::TokenDataset& ds, uint64_t first, int count) {
    std::vector<int32_t> in(static_cast<size_t>(count) * T), tg(in.size());
    ds.fill(first, count, in.data(), tg.data());
    std::vector<size_t> w;
    for (int r = 0; r < count; ++r) w.push_back(window_in(in, tg, r));
    return w;
  }

  std::vector<std::string> files_;
  std::vector<std::vector<uint16_t>> windows_;
};

TEST_F(Dataset, SequentialWindowsMatchReference) {
  ph::TokenDataset ds(files_, 65536, T, false, 1);
  const uint64_t n = ds.num_windows();
  EXPECT_EQ(n, windows_.size());
  EXPECT_EQ(n, 1u + 2 + 4 + 2 + 9 + 15 + 8);  // (size - 1) / T per shard
  EXPECT_EQ(ds.num_tokens(), 5u + 12 + 17 + 9 + 40 + 64 + 33);
  EXPECT_EQ(ds.seq_len(), T);
  // Two and a half epochs in uneven calls: sample s reads window s % n.
  uint64_t s = 0;
  for (const int count : {1, 7, 13, 20, 3, 11, 30, 16}) {
    const std::vector<size_t> w = sample_windows(ds, s, count);
    for (int r = 0; r < count; ++r)
      EXPECT_EQ(w[static_cast<size_t>(r)], (s + static_cast<uint64_t>(r)) % n);
    s += static_cast<uint64_t>(count);
  }
  EXPECT_GT(s, 2 * n);
}

TEST_F(Dataset, Uint32ShardsGiveTheSameSamples) {
  // Every shard rewritten in the uint32 layout; the samples are the same, shuffled or not.
  std::vector<std::string> wide;
  for (const std::string& f : files_) {
    const std::vector<uint16_t> t = naive_tokens(f);
    const std::vector<int32_t> ids(t.begin(), t.end());
    wide.push_back(f + ".u32");
    ph::write_token_shard(wide.back(), ids.data(), ids.size(), 70000);
  }
  for (const bool shuffle : {false, true}) {
    ph::TokenDataset a(files_, 65536, T, shuffle, 9), b(wide, 70000, T, shuffle, 9);
    ASSERT_EQ(a.num_windows(), b.num_windows());
    const int n = static_cast<int>(a.num_windows()) + 5;
    std::vector<int32_t> ia(static_cast<size_t>(n) * T), ta(ia.size()), ib(ia.size()),
        tb(ia.size());
    a.fill(3, n, ia.data(), ta.data());
    b.fill(3, n, ib.data(), tb.data());
    EXPECT_EQ(ia, ib);
    EXPECT_EQ(ta, tb);
  }
}

TEST_F(Dataset, ShuffleVisitsEveryWindowOncePerEpoch) {
  ph::TokenDataset ds(files_, 65536, T, true, 1234);
  const uint64_t n = ds.num_windows();
  std::vector<std::vector<size_t>> epochs;
  for (uint64_t e = 0; e < 3; ++e) {
    const std::vector<size_t> order = sample_windows(ds, e * n, static_cast<int>(n));
    std::vector<size_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    for (size_t w = 0; w < n; ++w) EXPECT_EQ(sorted[w], w) << "epoch " << e;
    for (uint64_t p = 0; p < n; ++p) EXPECT_EQ(ds.window_of(e * n + p), order[p]);
    epochs.push_back(order);
  }
  EXPECT_NE(epochs[0], epochs[1]);
  EXPECT_NE(epochs[1], epochs[2]);
  std::vector<size_t> identity(n);
  for (size_t w = 0; w < n; ++w) identity[w] = w;
  EXPECT_NE(epochs[0], identity);

  ph::TokenDataset other_seed(files_, 65536, T, true, 1235);
  EXPECT_NE(sample_windows(other_seed, 0, static_cast<int>(n)), epochs[0]);
}

TEST_F(Dataset, FillAcrossEpochBoundary) {
  ph::TokenDataset ds(files_, 65536, T, true, 7);
  const uint64_t n = ds.num_windows();
  // One call from the end of epoch 1 into epoch 2 (and on into epoch 3) ...
  const std::vector<size_t> spanning = sample_windows(ds, 2 * n - 5, static_cast<int>(n) + 10);
  // ... equals sample-by-sample reads from a fresh instance, visited in scrambled order.
  ph::TokenDataset ref(files_, 65536, T, true, 7);
  for (size_t r = spanning.size(); r-- > 0;) {
    EXPECT_EQ(ref.window_of(2 * n - 5 + r), spanning[r]) << "row " << r;
  }
}

TEST_F(Dataset, FillAllocatesNothing) {
  ph::TokenDataset ds(files_, 65536, T, true, 3);
  const uint64_t n = ds.num_windows();
  std::vector<int32_t> in(8 * T), tg(8 * T);
  const long before = g_allocations.load();
  for (uint64_t s = 0; s < 3 * n; s += 8) ds.fill(s, 8, in.data(), tg.data());  // 3 epochs
  ds.fill(0, 8, in.data(), tg.data());                                          // back to 0
  const long after = g_allocations.load();
  EXPECT_EQ(after, before);
}

TEST_F(Dataset, DeterministicAcrossInstances) {
  ph::TokenDataset a(files_, 65536, T, true, 99);
  ph::TokenDataset b(files_, 65536, T, true, 99);
  const uint64_t n = a.num_windows();
  // a reads in order, b jumps between epochs; every sample agrees.
  std::vector<size_t> in_order = sample_windows(a, 0, static_cast<int>(4 * n));
  for (const uint64_t s : std::vector<uint64_t>{3 * n + 2, 5, 2 * n, n - 1, 4 * n - 1, 0, n + 17}) {
    EXPECT_EQ(sample_windows(b, s, 1)[0], in_order[s]) << "sample " << s;
  }
}

TEST_F(Dataset, GlobExpansion) {
  // Patterns match in sorted order, patterns keep the order given.
  const std::vector<std::string> expanded =
      ph::expand_data_paths({path("shard_[4-6].bin"), path("shard_[0-3].bin")});
  const std::vector<std::string> expected = {files_[4], files_[5], files_[6], files_[0],
                                             files_[1], files_[2], files_[3]};
  EXPECT_EQ(expanded, expected);
  EXPECT_EQ(ph::expand_data_paths({path("shard_*.bin")}), files_);

  ph::TokenDataset globbed({path("shard_*.bin")}, 65536, T, false, 0);
  EXPECT_EQ(globbed.num_windows(), windows_.size());
  EXPECT_EQ(globbed.shards().size(), files_.size());
  EXPECT_EQ(sample_windows(globbed, 0, static_cast<int>(windows_.size()))[9], 9u);

  EXPECT_INPUT_ERROR(ph::expand_data_paths({}), "no data files given");
  EXPECT_INPUT_ERROR(ph::TokenDataset({}, 256, T, true, 0), "no data files given");
  EXPECT_INPUT_ERROR(ph::TokenDataset({files_[0], path("nothing_*.bin")}, 65536, T, true, 0),
                     "data path '" + path("nothing_*.bin") + "' matches no file");
  EXPECT_INPUT_ERROR(ph::TokenDataset({path("absent.bin")}, 65536, T, true, 0),
                     "data path '" + path("absent.bin") + "' matches no file");
}

TEST_F(Dataset, Errors) {
  // shard_0 has 5 tokens: enough for T = 4, too short for T = 5.
  EXPECT_INPUT_ERROR(
      ph::TokenDataset(files_, 65536, 5, true, 0),
      "data shard '" + files_[0] + "' has 5 tokens, too short for one sequence of T+1 = 6 tokens");
  EXPECT_INPUT_ERROR(ph::TokenDataset(files_, 65536, 0, true, 0),
                     "sequence length must be >= 1, got 0");
  // Shard validation runs for every file: ids here go up to 169.
  EXPECT_INPUT_ERROR(
      ph::TokenDataset(files_, 100, T, true, 0),
      "data shard '" + files_[5] + "': token id 100 at position 17 is >= vocab_size 100");
}

// ---------------------------------------------------------------------------- tokenizer

TEST(Tokenizer, ByteRoundTrip) {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  all += "héllo, wörld\n";
  const std::vector<int32_t> ids = ph::encode_bytes(all);
  ASSERT_EQ(ids.size(), all.size());
  for (int c = 0; c < 256; ++c) EXPECT_EQ(ids[static_cast<size_t>(c)], c);
  EXPECT_EQ(ph::decode_bytes(ids.data(), ids.size()), all);
  EXPECT_TRUE(ph::encode_bytes("").empty());

  const int32_t mixed[] = {'a', 256, 'b', 50303, -1};
  EXPECT_EQ(ph::decode_bytes(mixed, 5), "a<256>b<50303><-1>");
}

// ---------------------------------------------------------------------------- addition

TEST(AdditionTask, LineFormat) {
  const ph::AdditionTask d1{1}, d2{2}, d3{3}, d4{4}, d18{18};
  EXPECT_EQ(d1.line(0, 0), "0+0=00\n");
  EXPECT_EQ(d1.line(9, 9), "9+9=81\n");     // 18 → "18" → "81"
  EXPECT_EQ(d2.line(5, 7), "05+07=210\n");  // 12 → "012" → "210"
  EXPECT_EQ(d2.line(99, 1), "99+01=001\n");
  EXPECT_EQ(d3.line(999, 1), "999+001=0001\n");  // carry through every digit
  EXPECT_EQ(d3.line(123, 456), "123+456=9750\n");
  EXPECT_EQ(d4.line(1234, 987), "1234+0987=12220\n");
  EXPECT_EQ(d4.prompt(1234, 987), "1234+0987=");
  EXPECT_EQ(d18.line(d18.max_operand(), d18.max_operand()),
            "999999999999999999+999999999999999999=8999999999999999991\n");
  for (const ph::AdditionTask& t : {d1, d2, d3, d4, d18}) {
    EXPECT_EQ(static_cast<int>(t.line(0, t.max_operand()).size()), t.line_length());
    EXPECT_EQ(t.line_length(), 3 * t.digits + 4);
  }
  EXPECT_EQ(d3.max_operand(), 999);
  EXPECT_THROW(d3.line(1000, 1), std::out_of_range);
  EXPECT_THROW(d3.line(-1, 1), std::out_of_range);
  EXPECT_INPUT_ERROR(ph::AdditionTask{0}.line(0, 0),
                     "addition task: digits must be in [1, 18], got 0");
  EXPECT_INPUT_ERROR(ph::AdditionTask{19}.line(0, 0), "digits must be in [1, 18], got 19");
}

TEST(AdditionTask, ValidationSplitIsAFixedSymmetricPartition) {
  int val_pairs = 0, single_digit_val = 0, single_digit_train = 0;
  for (long a = 0; a < 100; ++a) {
    for (long b = 0; b < 100; ++b) {
      EXPECT_EQ(ph::AdditionTask::is_val(a, b), ph::AdditionTask::is_val(b, a));
      val_pairs += ph::AdditionTask::is_val(a, b);
      if (a < 10 && b < 10)
        (ph::AdditionTask::is_val(a, b) ? single_digit_val : single_digit_train)++;
    }
  }
  EXPECT_NEAR(val_pairs, 1000, 150);  // about a tenth
  // Both splits exist among single-digit pairs, so draw() terminates for every digits.
  EXPECT_GT(single_digit_val, 0);
  EXPECT_GT(single_digit_train, 0);
}

TEST(AdditionTask, DrawIsUniformAndDisjoint) {
  const ph::AdditionTask task{2};
  std::vector<ph::AdditionProblem> train, val;
  task.draw(5, 20000, 2000, train, val);
  ASSERT_EQ(train.size(), 20000u);
  ASSERT_EQ(val.size(), 2000u);
  std::set<std::pair<long, long>> train_set;
  std::vector<int> first_digit(10, 0);
  for (const auto& p : train) {
    EXPECT_FALSE(ph::AdditionTask::is_val(p.a, p.b));
    ASSERT_TRUE(p.a >= 0 && p.a <= 99 && p.b >= 0 && p.b <= 99);
    train_set.insert({std::min(p.a, p.b), std::max(p.a, p.b)});
    ++first_digit[static_cast<size_t>(p.a / 10)];
  }
  for (const auto& p : val) {
    EXPECT_TRUE(ph::AdditionTask::is_val(p.a, p.b));
    EXPECT_EQ(train_set.count({std::min(p.a, p.b), std::max(p.a, p.b)}), 0u);
  }
  for (const int c : first_digit) EXPECT_NEAR(c, 2000, 300);
  // Deterministic in the seed, different across seeds.
  std::vector<ph::AdditionProblem> train2, val2;
  task.draw(5, 100, 10, train2, val2);
  for (size_t i = 0; i < 100; ++i)
    EXPECT_EQ(train2[i].a * 100 + train2[i].b, train[i].a * 100 + train[i].b);
  task.draw(6, 100, 10, train2, val2);
  int same = 0;
  for (size_t i = 0; i < 100; ++i) same += train2[i].a == train[i].a && train2[i].b == train[i].b;
  EXPECT_LT(same, 10);
}

TEST_F(IoData, AdditionGenerateFilesAndIdempotence) {
  const ph::AdditionTask task{3};
  const std::string d = path("task/addition");  // created, parents included
  task.generate(d, 42, 3000, 300);
  const std::string train_path = d + "/train.bin", val_path = d + "/val.bin";
  const ph::Shard train = ph::Shard::open(train_path, 256);
  const ph::Shard val = ph::Shard::open(val_path, 256);
  ASSERT_EQ(train.size(), 3000u * 13);
  ASSERT_EQ(val.size(), 300u * 13);

  // Every line has the format, a correct reversed sum, and its split's is_val.
  const auto problems = [&](const ph::Shard& s, bool want_val) {
    std::set<std::pair<long, long>> set;
    const std::string text(s.tokens(), s.tokens() + s.size());
    for (size_t at = 0; at < text.size(); at += 13) {
      const std::string l = text.substr(at, 13);
      const long a = std::stol(l.substr(0, 3)), b = std::stol(l.substr(4, 3));
      EXPECT_EQ(l, task.line(a, b));
      EXPECT_EQ(ph::AdditionTask::is_val(a, b), want_val) << l;
      set.insert({std::min(a, b), std::max(a, b)});
    }
    return set;
  };
  const auto train_set = problems(train, false), val_set = problems(val, true);
  for (const auto& p : val_set) EXPECT_EQ(train_set.count(p), 0u);

  // A second call with the same arguments leaves both files alone.
  struct stat before_t {
  }, before_v{}, after_t{}, after_v{};
  ASSERT_EQ(::stat(train_path.c_str(), &before_t), 0);
  ASSERT_EQ(::stat(val_path.c_str(), &before_v), 0);
  task.generate(d, 42, 3000, 300);
  ASSERT_EQ(::stat(train_path.c_str(), &after_t), 0);
  ASSERT_EQ(::stat(val_path.c_str(), &after_v), 0);
  EXPECT_EQ(before_t.st_ino, after_t.st_ino);
  EXPECT_EQ(before_v.st_ino, after_v.st_ino);

  // A damaged file, another seed or other counts are regenerated.
  const std::vector<char> val_bytes = read_bytes(val_path);
  write_bytes(val_path, std::vector<char>(val_bytes.begin(), val_bytes.begin() + 2000));
  task.generate(d, 42, 3000, 300);
  EXPECT_EQ(read_bytes(val_path), val_bytes);
  const std::vector<char> train_bytes = read_bytes(train_path);
  task.generate(d, 43, 3000, 300);
  EXPECT_NE(read_bytes(train_path), train_bytes);
  task.generate(d, 43, 100, 10);
  EXPECT_EQ(ph::Shard::open(train_path, 256).size(), 1300u);
  EXPECT_EQ(ph::Shard::open(val_path, 256).size(), 130u);
  EXPECT_FALSE(fs::exists(train_path + ".tmp"));
}

TEST_F(IoData, AdditionGenerateErrors) {
  EXPECT_INPUT_ERROR(ph::AdditionTask{0}.generate(path("t"), 1, 10, 10),
                     "addition task: digits must be in [1, 18], got 0");
  EXPECT_INPUT_ERROR(ph::AdditionTask{3}.generate(path("t"), 1, 0, 10),
                     "addition task: train_problems must be >= 1, got 0");
  EXPECT_INPUT_ERROR(ph::AdditionTask{3}.generate(path("t"), 1, 10, -1),
                     "addition task: val_problems must be >= 1, got -1");
  EXPECT_INPUT_ERROR(
      ph::AdditionTask{18}.generate(path("t"), 1, 40000000, 10),
      "addition task: 40000000 problems of 58 bytes exceed a shard's 2147483647 tokens");
  write_text(path("file"), "x");
  EXPECT_INPUT_ERROR(ph::AdditionTask{3}.generate(path("file/t"), 1, 10, 10),
                     "addition task: cannot create directory '" + path("file/t") + "'");
  EXPECT_FALSE(fs::exists(path("t")));
}

// Rows of a byte stream as the dataset cuts them: inputs text[off, off+T), targets shifted
// by one; predictions start equal to the targets.
struct Batch {
  std::vector<int32_t> inputs, targets, predictions;
  int N = 0, T = 0;
  Batch(const std::string& text, const std::vector<size_t>& offsets, int seq_len)
      : N(static_cast<int>(offsets.size())), T(seq_len) {
    const std::vector<int32_t> ids = ph::encode_bytes(text);
    for (const size_t off : offsets) {
      for (size_t t = 0; t < static_cast<size_t>(T); ++t) {
        inputs.push_back(ids[off + t]);
        targets.push_back(ids[off + t + 1]);
      }
    }
    predictions = targets;
  }
  ph::TaskScore score(const ph::AdditionTask& task) const {
    return task.score(inputs.data(), targets.data(), predictions.data(), N, T);
  }
};

TEST(AdditionTask, ScoreHandBuiltCases) {
  const ph::AdditionTask task{3};  // lines of 13 bytes: "123+456=9750\n"
  const std::string text = task.line(123, 456) + task.line(999, 1) + task.line(500, 500) +
                           task.line(7, 8) + task.line(1, 2);
  // Row 0 = lines 0 and 1 exactly (T = 26): both counted.
  Batch b(text, {0}, 26);
  EXPECT_EQ(b.score(task).correct, 2);
  EXPECT_EQ(b.score(task).total, 2);

  // One wrong digit in the second answer ("0001": position 13 + 8 holds '0', predicted at 20).
  b.predictions[20] = '5';
  EXPECT_EQ(b.score(task).correct, 1);
  EXPECT_EQ(b.score(task).total, 2);
  b.predictions[20] = b.targets[20];
  // A wrong final '\n' is wrong too; a wrong prediction inside a prompt does not matter.
  b.predictions[24] = '0';
  EXPECT_EQ(b.score(task).correct, 1);
  b.predictions[24] = b.targets[24];
  b.predictions[3] = '7';
  b.predictions[15] = '7';
  EXPECT_EQ(b.score(task).correct, 2);

  // Span cut by the window end: "123+456=9750\n999+001=00" (T = 24): only line 0 counts.
  Batch cut(text, {0}, 24);
  EXPECT_EQ(cut.score(task).total, 1);
  EXPECT_EQ(cut.score(task).correct, 1);
  // Line 1 is text[13, 26) and its '\n' is the target of position 24: T = 24 ends on the last
  // answer digit (not counted), T = 25 is the first window that holds the whole span.
  EXPECT_EQ(Batch(text, {0}, 25).score(task).total, 2);

  // Prompt cut by the window start: row from offset 15 starts at "9+001=0001\n500+500=...":
  // the cut problem is not counted, the whole one is.
  Batch start(text, {15, 0, 13}, 24);
  const ph::TaskScore s = start.score(task);
  EXPECT_EQ(s.total, 1 + 1 + 1);
  EXPECT_EQ(s.correct, 3);
  // Operands starting exactly at position 0 count.
  EXPECT_EQ(Batch(text, {13}, 13).score(task).total, 1);

  // Nothing right: every counted problem is wrong.
  std::fill(start.predictions.begin(), start.predictions.end(), 'x');
  EXPECT_EQ(start.score(task).total, 3);
  EXPECT_EQ(start.score(task).correct, 0);
}

TEST(AdditionTask, ScoreMatchesGreedyDefinitionPerPosition) {
  // A wrong prediction only on a position that is no answer position of a counted problem
  // leaves every problem correct; one on each answer position makes exactly that problem
  // wrong.
  const ph::AdditionTask task{2};  // "05+07=210\n": 10 bytes
  std::string text;
  for (long a = 0; a < 12; ++a) text += task.line(a * 7 % 100, a * 13 % 100);
  Batch b(text, {0, 10, 20}, 50);  // each row: 5 whole lines
  const ph::TaskScore all = b.score(task);
  EXPECT_EQ(all.total, 15);
  EXPECT_EQ(all.correct, 15);
  for (size_t pos = 0; pos < b.predictions.size(); ++pos) {
    Batch w = b;
    w.predictions[pos] = -1;
    const size_t t = pos % 50;
    const bool answer = t % 10 >= 5 && t % 10 <= 8;  // targets at 5..8: "210\n"
    EXPECT_EQ(w.score(task).correct, answer ? 14 : 15) << "position " << pos;
  }
}

TEST(AdditionTask, ParseAnswer) {
  const ph::AdditionTask task{4};
  long v = -1;
  EXPECT_TRUE(task.parse_answer("12220\n", v));
  EXPECT_EQ(v, 2221);
  EXPECT_TRUE(task.parse_answer("00001", v));
  EXPECT_EQ(v, 10000);
  EXPECT_TRUE(task.parse_answer("12220\n1234+", v));
  v = -1;
  EXPECT_FALSE(task.parse_answer("1222\n", v));
  EXPECT_FALSE(task.parse_answer("1222", v));
  EXPECT_FALSE(task.parse_answer("122201", v));
  EXPECT_FALSE(task.parse_answer("12a20\n", v));
  EXPECT_FALSE(task.parse_answer("", v));
  EXPECT_EQ(v, -1);
  const ph::AdditionTask d18{18};
  EXPECT_TRUE(d18.parse_answer("8999999999999999991", v));
  EXPECT_EQ(v, 1999999999999999998L);
  EXPECT_FALSE(d18.parse_answer("9999999999999999999", v));  // overflows a long
  // Every line's answer parses back to the sum.
  const ph::AdditionTask d3{3};
  for (long a : {0L, 5L, 999L}) {
    for (long b : {0L, 1L, 999L}) {
      EXPECT_TRUE(d3.parse_answer(d3.line(a, b).substr(8), v));
      EXPECT_EQ(v, a + b);
    }
  }
}

// ---------------------------------------------------------------------------- prepare

TEST_F(IoData, PrepareSplitsText) {
  write_text(path("a.txt"), "hello ");
  write_text(path("b.txt"), "");
  write_text(path("c.txt"), "world, again!\n");  // 20 bytes in all
  const ph::PreparedText r =
      ph::prepare_text({path("a.txt"), path("b.txt"), path("c.txt")}, path("out"), 0.25);
  EXPECT_EQ(r.train_tokens, 15u);
  EXPECT_EQ(r.val_tokens, 5u);
  ASSERT_EQ(r.train_files, std::vector<std::string>{path("out/train.bin")});
  ASSERT_EQ(r.val_files, std::vector<std::string>{path("out/val.bin")});
  const std::vector<uint16_t> train = naive_tokens(r.train_files[0]);
  const std::vector<uint16_t> val = naive_tokens(r.val_files[0]);
  EXPECT_EQ(std::string(train.begin(), train.end()), "hello world, ag");
  EXPECT_EQ(std::string(val.begin(), val.end()), "ain!\n");
  EXPECT_EQ(ph::Shard::open(r.train_files[0], 256).size(), 15u);
  EXPECT_EQ(ph::Shard::open(r.val_files[0], 256).size(), 5u);
}

TEST_F(IoData, PrepareSplitsLargeDataIntoShards) {
  std::string text;
  for (int i = 0; i < 30; ++i) text.push_back(static_cast<char>('a' + i % 26));
  write_text(path("in.txt"), text);
  // 30 tokens, val 0.3 → 9 val, 21 train; at most 5 tokens per shard.
  const ph::PreparedText r = ph::prepare_text({path("in.txt")}, path("out"), 0.3, 5);
  EXPECT_EQ(r.train_tokens, 21u);
  EXPECT_EQ(r.val_tokens, 9u);
  const std::vector<std::string> train_names = {
      path("out/train_000.bin"), path("out/train_001.bin"), path("out/train_002.bin"),
      path("out/train_003.bin"), path("out/train_004.bin")};
  EXPECT_EQ(r.train_files, train_names);
  EXPECT_EQ(r.val_files,
            (std::vector<std::string>{path("out/val_000.bin"), path("out/val_001.bin")}));
  std::string back;
  std::vector<size_t> sizes;
  for (const auto* files : {&r.train_files, &r.val_files}) {
    for (const std::string& f : *files) {
      const ph::Shard s = ph::Shard::open(f, 256);
      sizes.push_back(s.size());
      back.append(s.tokens(), s.tokens() + s.size());
    }
  }
  EXPECT_EQ(back, text);
  EXPECT_EQ(sizes, (std::vector<size_t>{5, 4, 4, 4, 4, 5, 4}));  // balanced, no short tail
  // Exactly max_shard_tokens: one file, no numbering.
  const ph::PreparedText one = ph::prepare_text({path("in.txt")}, path("out2"), 0.5, 15);
  EXPECT_EQ(one.train_files, std::vector<std::string>{path("out2/train.bin")});
  EXPECT_EQ(one.val_files, std::vector<std::string>{path("out2/val.bin")});
  // The trainer's dataset reads the result by glob.
  ph::TokenDataset ds({path("out/train_*.bin")}, 256, 3, true, 1);
  EXPECT_EQ(ds.num_windows(), 5u);
}

TEST_F(IoData, PrepareErrors) {
  write_text(path("ok.txt"), "some text here");
  write_text(path("empty.txt"), "");
  write_text(path("tiny.txt"), "abc");
  const std::string out = path("out");
  EXPECT_INPUT_ERROR(ph::prepare_text({}, out, 0.1), "prepare: no input files given");
  EXPECT_INPUT_ERROR(
      ph::prepare_text({path("ok.txt"), path("missing.txt")}, out, 0.1),
      "prepare: input '" + path("missing.txt") + "': cannot open: No such file or directory");
  EXPECT_INPUT_ERROR(ph::prepare_text({dir_}, out, 0.1),
                     "prepare: input '" + dir_ + "' is not a regular file");
  EXPECT_INPUT_ERROR(ph::prepare_text({path("empty.txt"), path("empty.txt")}, out, 0.1),
                     "prepare: the inputs contain no text");
  for (const double f : {0.0, 1.0, -0.5, 1.5}) {
    EXPECT_INPUT_ERROR(ph::prepare_text({path("ok.txt")}, out, f),
                       "prepare: val_fraction must be in (0, 1), got ");
  }
  EXPECT_INPUT_ERROR(ph::prepare_text({path("ok.txt")}, out, 1.5),
                     "val_fraction must be in (0, 1), got 1.5");
  EXPECT_INPUT_ERROR(ph::prepare_text({path("ok.txt")}, out, std::nan("")),
                     "val_fraction must be in (0, 1), got nan");
  EXPECT_INPUT_ERROR(
      ph::prepare_text({path("tiny.txt")}, out, 0.1),
      "prepare: 3 tokens with val_fraction 0.1 leave 0 for validation; need at least 2");
  EXPECT_INPUT_ERROR(
      ph::prepare_text({path("tiny.txt")}, out, 0.9),
      "prepare: 3 tokens with val_fraction 0.9 leave 0 for training; need at least 2");
  EXPECT_INPUT_ERROR(
      ph::prepare_text({path("tiny.txt")}, out, 0.5),
      "prepare: 3 tokens with val_fraction 0.5 leave 1 for training; need at least 2");
  EXPECT_FALSE(fs::exists(out));  // nothing was written by any failure above
  EXPECT_INPUT_ERROR(ph::prepare_text({path("ok.txt")}, path("ok.txt/out"), 0.5),
                     "prepare: cannot create output directory '" + path("ok.txt/out") + "'");
}

}  // namespace

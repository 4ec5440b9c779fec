// Paired data: the pair file format (round trip at both id widths, every validation message,
// atomic writes) and PairDataset (the layout of a sample with its specials and padding, drop
// versus crop, the order with and without shuffle, and that a sample does not depend on how a
// batch is split into fill() calls). Every file lives under a fresh temporary directory.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "input_error.h"
#include "io/config.h"
#include "io/dataset.h"
#include "io/epoch_permutation.h"
#include "io/pair_dataset.h"
#include "io/pair_file.h"
#include "io/shard.h"
#include "test_util.h"

namespace ph {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

using Ids = std::vector<int32_t>;
struct Pair {
  Ids source, target;
};

using testing::input_error;

void write_pairs(const std::string& path, int vocab, const std::vector<Pair>& pairs) {
  PairWriter w(path, vocab);
  for (const Pair& p : pairs)
    w.add(p.source.data(), p.source.size(), p.target.data(), p.target.size());
  w.commit();
}

std::vector<Pair> random_pairs(int n, int vocab, int max_len, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> len(1, max_len), id(0, vocab - 1);
  std::vector<Pair> pairs(static_cast<size_t>(n));
  for (Pair& p : pairs) {
    p.source.resize(static_cast<size_t>(len(gen)));
    p.target.resize(static_cast<size_t>(len(gen)));
    for (int32_t& x : p.source) x = id(gen);
    for (int32_t& x : p.target) x = id(gen);
  }
  return pairs;
}

void expect_holds(const PairFile& f, const std::vector<Pair>& pairs) {
  ASSERT_EQ(f.size(), pairs.size());
  uint64_t src = 0, tgt = 0;
  for (uint64_t i = 0; i < f.size(); ++i) {
    const Pair& p = pairs[static_cast<size_t>(i)];
    ASSERT_EQ(f.source_length(i), p.source.size());
    ASSERT_EQ(f.target_length(i), p.target.size());
    Ids s(p.source.size()), t(p.target.size());
    f.read_source(i, s.size(), s.data());
    f.read_target(i, t.size(), t.data());
    EXPECT_EQ(s, p.source) << "pair " << i;
    EXPECT_EQ(t, p.target) << "pair " << i;
    src += s.size();
    tgt += t.size();
  }
  EXPECT_EQ(f.source_tokens(), src);
  EXPECT_EQ(f.target_tokens(), tgt);
}

template <class T>
void patch(const std::string& path, uint64_t offset, T value) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(reinterpret_cast<const char*>(&value), sizeof(value));
}

uint64_t index_offset(uint64_t ids, uint64_t width) {
  return (64 + ids * width + 7) / 8 * 8;
}

TEST(PairFile, RoundTripUint16) {
  TempDir tmp;
  const std::vector<Pair> pairs = random_pairs(200, 1000, 17, 1);
  write_pairs(tmp / "a.pairs", 1000, pairs);
  const PairFile f = PairFile::open(tmp / "a.pairs", 1024);
  EXPECT_EQ(f.width(), TokenWidth::U16);
  EXPECT_EQ(f.vocab_size(), 1000);
  expect_holds(f, pairs);
  const uint64_t ids = f.source_tokens() + f.target_tokens();
  EXPECT_EQ(fs::file_size(tmp / "a.pairs"), index_offset(ids, 2) + 12 * pairs.size() + 8);
  EXPECT_FALSE(fs::exists(tmp / "a.pairs.tmp"));
}

TEST(PairFile, RoundTripUint32) {
  TempDir tmp;
  std::vector<Pair> pairs = random_pairs(50, 70000, 9, 2);
  pairs[3].target[0] = 69999;  // past 16 bits
  write_pairs(tmp / "b.pairs", 70000, pairs);
  const PairFile f = PairFile::open(tmp / "b.pairs", 70000);
  EXPECT_EQ(f.width(), TokenWidth::U32);
  expect_holds(f, pairs);
}

TEST(PairFile, HeaderLayout) {
  TempDir tmp;
  write_pairs(tmp / "h.pairs", 300, {{{5, 6}, {7}}, {{8}, {9, 10, 11}}});
  const std::string bytes = testing::read_file(tmp / "h.pairs");
  ASSERT_EQ(bytes.size(), 64u + 7 * 2 + 2 + 8 * 3 + 4 * 2);
  EXPECT_EQ(bytes.substr(0, 8), std::string("PHPAIRS\0", 8));
  const auto u32 = [&](size_t at) {
    uint32_t v;
    std::memcpy(&v, bytes.data() + at, 4);
    return v;
  };
  const auto u64 = [&](size_t at) {
    uint64_t v;
    std::memcpy(&v, bytes.data() + at, 8);
    return v;
  };
  EXPECT_EQ(u32(8), 1u);   // version
  EXPECT_EQ(u32(12), 2u);  // id width
  EXPECT_EQ(u64(16), 2u);  // pairs
  EXPECT_EQ(u64(24), 3u);  // source ids
  EXPECT_EQ(u64(32), 4u);  // target ids
  EXPECT_EQ(u32(40), 300u);
  uint16_t ids[7];
  std::memcpy(ids, bytes.data() + 64, sizeof(ids));
  EXPECT_EQ(std::vector<uint16_t>(ids, ids + 7), (std::vector<uint16_t>{5, 6, 7, 8, 9, 10, 11}));
  EXPECT_EQ(u64(80), 0u);  // begin[0], after 2 bytes of padding
  EXPECT_EQ(u64(88), 3u);
  EXPECT_EQ(u64(96), 7u);
  EXPECT_EQ(u32(104), 2u);  // source lengths
  EXPECT_EQ(u32(108), 1u);
}

TEST(PairFile, WriterIsAtomic) {
  TempDir tmp;
  {
    PairWriter w(tmp / "c.pairs", 10);
    const Ids x{1, 2};
    w.add(x.data(), 2, x.data(), 2);
    EXPECT_TRUE(fs::exists(tmp / "c.pairs.tmp"));
  }  // not committed
  EXPECT_FALSE(fs::exists(tmp / "c.pairs.tmp"));
  EXPECT_FALSE(fs::exists(tmp / "c.pairs"));
  try {
    PairWriter w(tmp / "missing/d.pairs", 10);
    FAIL() << "no IoError";
  } catch (const IoError& e) {
    EXPECT_EQ(std::string(e.what()), "cannot write pair file '" + (tmp / "missing/d.pairs.tmp") +
                                         "': No such file or directory");
  }
  PairWriter w(tmp / "e.pairs", 10);
  const Ids x{1}, empty, bad{10};
  EXPECT_THROW(w.add(x.data(), 1, empty.data(), 0), std::invalid_argument);
  EXPECT_THROW(w.add(bad.data(), 1, x.data(), 1), std::invalid_argument);
}

// A valid two-pair file (vocabulary 100, uint16 ids) to corrupt.
struct Corruptible {
  TempDir tmp;
  std::string path = tmp / "x.pairs";
  // pair 0: source {1, 2, 3}, target {4, 5}; pair 1: source {6}, target {7, 8, 9}
  Corruptible() { write_pairs(path, 100, {{{1, 2, 3}, {4, 5}}, {{6}, {7, 8, 9}}}); }
  static constexpr uint64_t kIds = 9;
  uint64_t begin_at(int k) const { return index_offset(kIds, 2) + 8 * static_cast<uint64_t>(k); }
  uint64_t length_at(int k) const { return begin_at(3) + 4 * static_cast<uint64_t>(k); }
  std::string open_error(int vocab = 100) const {
    return input_error([&] { PairFile::open(path, vocab); });
  }
};

TEST(PairFile, ValidationMessages) {
  {
    Corruptible c;
    EXPECT_EQ(c.open_error(), "");
    EXPECT_EQ(input_error([&] { PairFile::open(c.tmp / "none", 100); }),
              "pair file '" + (c.tmp / "none") + "': cannot open: No such file or directory");
    EXPECT_EQ(input_error([&] { PairFile::open(c.tmp.path.string(), 100); }),
              "pair file '" + c.tmp.path.string() + "': not a regular file");
    EXPECT_EQ(c.open_error(99), "pair file '" + c.path +
                                    "' was made for a vocabulary of 100 ids; the run's has only "
                                    "99 (model.vocab_size)");
    fs::resize_file(c.path, 10);
    EXPECT_EQ(c.open_error(),
              "pair file '" + c.path + "': file is 10 bytes, smaller than the 64-byte header");
  }
  const auto expect = [](const std::function<void(Corruptible&)>& corrupt,
                         const std::string& what) {
    Corruptible c;
    corrupt(c);
    EXPECT_EQ(c.open_error(), "pair file '" + c.path + "': " + what);
  };
  expect([](Corruptible& c) { patch<char>(c.path, 0, 'X'); },
         "bad magic; not a polyhead pair file (polyhead prepare --src --tgt makes them)");
  expect([](Corruptible& c) { patch<uint32_t>(c.path, 8, 2); },
         "unsupported version 2 (expected 1)");
  expect([](Corruptible& c) { patch<uint32_t>(c.path, 40, 0); },
         "vocabulary size 0 must be in [1, 2147483647]");
  expect([](Corruptible& c) { patch<uint32_t>(c.path, 12, 4); },
         "id width 4 does not match a vocabulary of 100 ids (expected 2)");
  expect([](Corruptible& c) { fs::resize_file(c.path, fs::file_size(c.path) + 1); },
         "file is 121 bytes but the header's counts (2 pairs, 4 source and 5 target ids of 2 "
         "bytes) need 120 bytes");
  expect([](Corruptible& c) { patch<uint64_t>(c.path, 16, uint64_t{1} << 62); },
         "file is 120 bytes but the header's counts (4611686018427387904 pairs, 4 source and 5 "
         "target ids of 2 bytes) need more than 2^64 bytes");
  expect([](Corruptible& c) { patch<uint64_t>(c.path, c.begin_at(0), 1); },
         "the first pair starts at id 1, expected 0");
  expect([](Corruptible& c) { patch<uint64_t>(c.path, c.begin_at(2), 8); },
         "the pairs end at id 8, but the header counts 4+5 = 9 ids");
  expect([](Corruptible& c) { patch<uint32_t>(c.path, c.length_at(0), 5); },
         "pair 0 spans ids [0, 5) with a source of 5 ids; each side needs at least one");
  expect([](Corruptible& c) { patch<uint32_t>(c.path, c.length_at(1), 0); },
         "pair 1 spans ids [5, 9) with a source of 0 ids; each side needs at least one");
  expect([](Corruptible& c) { patch<uint64_t>(c.path, c.begin_at(1), 10); },
         "pair 1 spans ids [10, 9) with a source of 1 ids; each side needs at least one");
  expect([](Corruptible& c) { patch<uint32_t>(c.path, c.length_at(0), 4); },
         "the source lengths sum to 5, but the header counts 4 source ids");
  expect([](Corruptible& c) { patch<uint16_t>(c.path, 64 + 2 * 5, 100); },
         "pair 1: source id 100 is >= the vocabulary size 100");
  expect([](Corruptible& c) { patch<uint16_t>(c.path, 64 + 2 * 4, 65535); },
         "pair 0: target id 65535 is >= the vocabulary size 100");
}

// The pairs of a dataset test: pair i has source {10+i, ...} of length src_len[i] and target
// {50+i, ...} of length tgt_len[i], so a sample shows which pair it came from.
std::vector<Pair> numbered_pairs(const std::vector<int>& src_len, const std::vector<int>& tgt_len) {
  std::vector<Pair> pairs;
  for (size_t i = 0; i < src_len.size(); ++i) {
    Pair p;
    for (int k = 0; k < src_len[i]; ++k) p.source.push_back(10 + static_cast<int>(i) + k);
    for (int k = 0; k < tgt_len[i]; ++k) p.target.push_back(50 + static_cast<int>(i) + k);
    pairs.push_back(p);
  }
  return pairs;
}

PairDatasetOptions options(int S, int T, bool shuffle, bool crop = false) {
  PairDatasetOptions o;
  o.source_len = S;
  o.target_len = T;
  o.vocab_size = 100;
  o.pad = 0;
  o.bos = 1;
  o.eos = 2;
  o.ignore_index = -1;
  o.crop = crop;
  o.shuffle = shuffle;
  o.seed = 7;
  return o;
}

struct Samples {
  Ids source, lengths, tokens, targets;
};

Samples fill(PairDataset& d, uint64_t first, int count) {
  Samples s;
  s.source.resize(static_cast<size_t>(count * d.source_len()));
  s.lengths.resize(static_cast<size_t>(count));
  s.tokens.resize(static_cast<size_t>(count * d.target_len()));
  s.targets.resize(s.tokens.size());
  d.fill(first, count, s.source.data(), s.lengths.data(), s.tokens.data(), s.targets.data());
  return s;
}

TEST(PairDataset, SampleLayout) {
  TempDir tmp;
  write_pairs(tmp / "p.pairs", 100, numbered_pairs({2, 5}, {3, 5}));
  PairDataset d({tmp / "p.pairs"}, options(6, 6, false));
  const Samples s = fill(d, 0, 2);
  // pair 0: source 10 11, target 50 51 52
  EXPECT_EQ(s.source, (Ids{10, 11, 2, 0, 0, 0, 11, 12, 13, 14, 15, 2}));
  EXPECT_EQ(s.lengths, (Ids{3, 6}));
  EXPECT_EQ(s.tokens, (Ids{1, 50, 51, 52, 0, 0, 1, 51, 52, 53, 54, 55}));
  EXPECT_EQ(s.targets, (Ids{50, 51, 52, 2, -1, -1, 51, 52, 53, 54, 55, 2}));
  Ids src, tgt;
  d.read_pair(1, src, tgt);
  EXPECT_EQ(src, (Ids{11, 12, 13, 14, 15}));
  EXPECT_EQ(tgt, (Ids{51, 52, 53, 54, 55}));
}

TEST(PairDataset, DropsPairsThatDoNotFit) {
  TempDir tmp;
  // S = T = 4: a source fits with up to 3 ids, a target with up to 3.
  write_pairs(tmp / "p.pairs", 100, numbered_pairs({3, 4, 1, 2, 3}, {1, 1, 4, 3, 3}));
  PairDataset d({tmp / "p.pairs"}, options(4, 4, false));
  EXPECT_EQ(d.total_pairs(), 5u);
  EXPECT_EQ(d.dropped(), 2u);  // pair 1 (source), pair 2 (target)
  EXPECT_EQ(d.cropped(), 0u);
  EXPECT_EQ(d.num_pairs(), 3u);
  EXPECT_EQ(d.summary(), "'" + (tmp / "p.pairs") +
                             "': 3 pairs, 2 dropped (longer than model.src_seq_len 4 / "
                             "model.seq_len 4 with eos/bos)");
  const Samples s = fill(d, 0, 6);  // two epochs, in order: pairs 0, 3, 4, 0, 3, 4
  const Ids kept{0, 3, 4};
  for (size_t b = 0; b < 6; ++b) EXPECT_EQ(s.source[b * 4], 10 + kept[b % 3]);
}

TEST(PairDataset, DropsTheFirstPair) {
  TempDir tmp;
  write_pairs(tmp / "p.pairs", 100, numbered_pairs({9, 1, 1}, {1, 1, 1}));
  PairDataset d({tmp / "p.pairs"}, options(4, 4, false));
  EXPECT_EQ(d.num_pairs(), 2u);
  const Samples s = fill(d, 0, 2);
  EXPECT_EQ(s.source[0], 11);
  EXPECT_EQ(s.source[4], 12);
}

TEST(PairDataset, CropsPairsThatDoNotFit) {
  TempDir tmp;
  write_pairs(tmp / "p.pairs", 100, numbered_pairs({3, 6, 1}, {1, 2, 7}));
  PairDataset d({tmp / "p.pairs"}, options(4, 4, false, /*crop=*/true));
  EXPECT_EQ(d.num_pairs(), 3u);
  EXPECT_EQ(d.dropped(), 0u);
  EXPECT_EQ(d.cropped(), 2u);
  EXPECT_NE(d.summary().find(", 2 cropped (longer than"), std::string::npos) << d.summary();
  const Samples s = fill(d, 1, 2);
  EXPECT_EQ(s.source, (Ids{11, 12, 13, 2, 12, 2, 0, 0}));
  EXPECT_EQ(s.lengths, (Ids{4, 2}));
  EXPECT_EQ(s.tokens, (Ids{1, 51, 52, 0, 1, 52, 53, 54}));
  EXPECT_EQ(s.targets, (Ids{51, 52, 2, -1, 52, 53, 54, 2}));
}

TEST(PairDataset, ShuffledEpochsArePermutationsIndependentOfTheSplit) {
  TempDir tmp;
  const int n = 37;
  std::vector<int> lens(n);
  for (int i = 0; i < n; ++i) lens[static_cast<size_t>(i)] = 1 + i % 5;
  write_pairs(tmp / "p.pairs", 100, numbered_pairs(lens, lens));
  PairDataset whole({tmp / "p.pairs"}, options(8, 8, true));
  const Samples all = fill(whole, 0, 3 * n);
  for (int e = 0; e < 3; ++e) {
    std::set<int32_t> firsts;
    for (int p = 0; p < n; ++p) firsts.insert(all.source[static_cast<size_t>((e * n + p) * 8)]);
    EXPECT_EQ(firsts.size(), static_cast<size_t>(n)) << "epoch " << e;
  }
  EXPECT_NE(Ids(all.source.begin(), all.source.begin() + 8 * n),
            Ids(all.source.begin() + 8 * n, all.source.begin() + 16 * n));
  // Any split into fill calls, in any order, and a second instance: the same samples.
  PairDataset other({tmp / "p.pairs"}, options(8, 8, true));
  Samples parts;
  for (int first : {100, 0, 5, 36, 37, 60, 74}) {
    const int count = std::min(3 * n, first + 13) - first;
    const Samples s = fill(other, static_cast<uint64_t>(first), count);
    EXPECT_EQ(s.source,
              Ids(all.source.begin() + first * 8, all.source.begin() + (first + count) * 8));
    EXPECT_EQ(s.lengths, Ids(all.lengths.begin() + first, all.lengths.begin() + first + count));
    EXPECT_EQ(s.tokens,
              Ids(all.tokens.begin() + first * 8, all.tokens.begin() + (first + count) * 8));
    EXPECT_EQ(s.targets,
              Ids(all.targets.begin() + first * 8, all.targets.begin() + (first + count) * 8));
  }
  // Another seed, another order.
  PairDatasetOptions o = options(8, 8, true);
  o.seed = 8;
  PairDataset reseeded({tmp / "p.pairs"}, o);
  EXPECT_NE(fill(reseeded, 0, n).source, Ids(all.source.begin(), all.source.begin() + 8 * n));
}

TEST(PairDataset, ShuffleFollowsTheWindowsPermutation) {
  // The same permutation as the token windows of io/dataset.h for the same count and seed.
  TempDir tmp;
  const int n = 23, T = 4;
  std::vector<uint16_t> tokens(static_cast<size_t>(n * T + 1));
  write_shard(tmp / "w.bin", tokens.data(), tokens.size());
  TokenDataset windows({tmp / "w.bin"}, 256, T, true, 7);
  ASSERT_EQ(windows.num_windows(), static_cast<uint64_t>(n));
  std::vector<int> lens(n, 1);
  write_pairs(tmp / "p.pairs", 100, numbered_pairs(lens, lens));
  PairDataset pairs({tmp / "p.pairs"}, options(4, 4, true));
  std::vector<uint32_t> perm(static_cast<size_t>(n));
  for (uint64_t s = 0; s < 3u * n; ++s) {
    if (s % n == 0) epoch_permutation(7, s / n, perm);
    EXPECT_EQ(pairs.pair_of(s), windows.window_of(s)) << "sample " << s;
    EXPECT_EQ(pairs.pair_of(s), perm[s % n]) << "sample " << s;
  }
}

TEST(PairDataset, SeveralFilesInOrder) {
  TempDir tmp;
  write_pairs(tmp / "a.pairs", 100, numbered_pairs({1, 1}, {1, 1}));
  write_pairs(tmp / "b.pairs", 90, numbered_pairs({1, 1, 1}, {2, 2, 2}));
  PairDataset d({tmp / "*.pairs"}, options(4, 4, false));
  EXPECT_EQ(d.num_pairs(), 5u);
  const Samples s = fill(d, 0, 5);
  EXPECT_EQ(s.targets,
            (Ids{50, 2, -1, -1, 51, 2, -1, -1, 50, 51, 2, -1, 51, 52, 2, -1, 52, 53, 2, -1}));
  EXPECT_NE(d.summary().find("' and 1 more: 5 pairs"), std::string::npos) << d.summary();
}

TEST(PairDataset, Messages) {
  TempDir tmp;
  write_pairs(tmp / "p.pairs", 100, numbered_pairs({3, 4}, {1, 1}));
  const std::string p = tmp / "p.pairs";
  EXPECT_EQ(input_error([&] { PairDataset({p}, options(1, 4, false)); }),
            "paired data: source length (model.src_seq_len) must be >= 2, got 1");
  EXPECT_EQ(input_error([&] { PairDataset({p}, options(4, 1, false)); }),
            "paired data: target length (model.seq_len) must be >= 2, got 1");
  EXPECT_EQ(input_error([&] { PairDataset({p}, options(3, 4, false)); }),
            "paired data: all 2 pairs of '" + p +
                "' are too long for model.src_seq_len 3 and model.seq_len 4 (a source needs its "
                "ids + eos <= S, a target its ids + bos <= T); raise them or set data.crop=true");
  write_pairs(tmp / "empty.pairs", 100, {});
  EXPECT_EQ(input_error([&] { PairDataset({tmp / "empty.pairs"}, options(4, 4, false)); }),
            "paired data: the files hold no pairs ('" + (tmp / "empty.pairs") + "')");
  EXPECT_EQ(input_error([&] { PairDataset({tmp / "nothing*.pairs"}, options(4, 4, false)); }),
            "data path '" + (tmp / "nothing*.pairs") + "' matches no file");
  PairDatasetOptions bad = options(4, 4, false);
  bad.eos = 100;
  EXPECT_THROW(PairDataset({p}, bad), std::invalid_argument);
}

}  // namespace
}  // namespace ph

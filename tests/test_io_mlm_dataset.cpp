// BERT's samples of token shards (io/mlm_dataset.h): documents and chunks, the layout of one and
// two segments (types, lengths, padding), the sentence labels of nsp and sop, masks over the real
// tokens only, the same samples for any split of a batch into fill() calls and after a reopen
// (resume), and the messages for data that cannot make a sample.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "input_error.h"
#include "io/config.h"
#include "io/mlm_dataset.h"
#include "io/shard.h"
#include "test_util.h"

namespace ph {
namespace {

using testing::input_error;
using testing::TempDir;

// Ordinary ids 0..49; 50 eot, 51 [PAD], 52 [CLS], 53 [SEP], 54 [MASK].
constexpr int32_t kEot = 50, kPad = 51, kCls = 52, kSep = 53, kMask = 54;
constexpr int kVocab = 55;
constexpr int32_t kIgnore = -100;

void write(const std::string& path, const std::vector<uint16_t>& tokens) {
  write_shard(path, tokens.data(), tokens.size());
}

MlmMasking masking(int predictions) {
  MlmMaskingOptions o;
  o.predictions = predictions;
  o.mask = kMask;
  o.ignore_index = kIgnore;
  std::vector<uint8_t> classes(kVocab, 0);
  for (int32_t id : {kEot, kPad, kCls, kSep, kMask}) classes[static_cast<size_t>(id)] = kMlmSpecial;
  return MlmMasking(o, classes);
}

MlmDatasetOptions opts(int T, SentenceHead head, bool eot, bool shuffle = false) {
  MlmDatasetOptions o;
  o.seq_len = T;
  o.vocab_size = kVocab;
  o.sentence_head = head;
  o.cls = kCls;
  o.sep = kSep;
  o.pad = kPad;
  o.eot = eot ? kEot : -1;
  o.shuffle = shuffle;
  o.seed = 11;
  return o;
}

struct Rows {
  int T, P;
  std::vector<int32_t> tokens, types, lengths, positions, targets, labels;
  Rows(int count, int T_, int P_)
      : T(T_),
        P(P_),
        tokens(static_cast<size_t>(count * T_)),
        types(tokens.size()),
        lengths(static_cast<size_t>(count)),
        positions(static_cast<size_t>(count * P_)),
        targets(positions.size()),
        labels(lengths.size()) {}
  MlmRows at(int row) {
    const size_t r = static_cast<size_t>(row);
    return MlmRows{tokens.data() + r * T,    types.data() + r * T,   lengths.data() + r,
                   positions.data() + r * P, targets.data() + r * P, labels.data() + r};
  }
  // Row r's tokens with every slot's target put back: the unmasked sample.
  std::vector<int32_t> original(int r) const {
    const size_t b = static_cast<size_t>(r * T);
    std::vector<int32_t> t(tokens.begin() + static_cast<long>(b),
                           tokens.begin() + static_cast<long>(b) + T);
    for (int i = 0; i < P; ++i) {
      const int32_t target = targets[static_cast<size_t>(r * P + i)];
      if (target != kIgnore)
        t[static_cast<size_t>(positions[static_cast<size_t>(r * P + i)])] = target;
    }
    return t;
  }
};

TEST(MlmDataset, DocumentsAreCutIntoChunksOfOneSegment) {
  TempDir dir;
  // Documents of 7, 0, 2 and 1 tokens; T = 6: chunks of 4.
  write(dir / "a.bin", {1, 2, 3, 4, 5, 6, 7, kEot, kEot, 8, 9, kEot, 10});
  MlmDataset d({dir / "a.bin"}, opts(6, SentenceHead::kNone, true), masking(1));
  ASSERT_EQ(d.num_chunks(), 4u);  // [1..4], [5..7], [8, 9], [10]
  Rows r(4, 6, 1);
  d.fill(0, 4, r.at(0));
  const std::vector<std::vector<int32_t>> want = {{kCls, 1, 2, 3, 4, kSep},
                                                  {kCls, 5, 6, 7, kSep, kPad},
                                                  {kCls, 8, 9, kSep, kPad, kPad},
                                                  {kCls, 10, kSep, kPad, kPad, kPad}};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(r.original(i), want[static_cast<size_t>(i)]) << i;
    EXPECT_EQ(r.lengths[static_cast<size_t>(i)], 6 - i);
    const int32_t p = r.positions[static_cast<size_t>(i)];
    EXPECT_GT(p, 0);
    EXPECT_LT(p, r.lengths[static_cast<size_t>(i)] - 1);  // never [CLS], [SEP] or padding
  }
  for (const int32_t y : r.types) EXPECT_EQ(y, 0);
  // Without an eot id, the shard is one document (eot is then an ordinary id of it).
  MlmDataset whole({dir / "a.bin"}, opts(6, SentenceHead::kNone, false), masking(1));
  EXPECT_EQ(whole.num_chunks(), 4u);  // 13 tokens: 4 + 4 + 4 + 1
}

TEST(MlmDataset, TwoSegmentsWithSentenceOrder) {
  TempDir dir;
  std::vector<uint16_t> tokens;
  for (int i = 0; i < 400; ++i) tokens.push_back(static_cast<uint16_t>(i % 50));
  write(dir / "a.bin", tokens);
  // T = 9: chunks of 6, A and B of 3.
  MlmDataset d({dir / "a.bin"}, opts(9, SentenceHead::kSop, false), masking(2));
  const int n = static_cast<int>(d.num_chunks());
  ASSERT_EQ(n, 67);  // 66 chunks of 6 and one of 4 (A of 2, B of 2)
  Rows r(n, 9, 2);
  d.fill(0, n, r.at(0));
  int swapped = 0;
  for (int i = 0; i < n; ++i) {
    std::vector<int32_t> chunk(6);
    const int m = d.read_chunk(static_cast<uint64_t>(i), chunk.data());
    const int a = (m + 1) / 2;
    std::vector<int32_t> A(chunk.begin(), chunk.begin() + a),
        B(chunk.begin() + a, chunk.begin() + m);
    const bool swap = r.labels[static_cast<size_t>(i)] == 1;
    swapped += swap;
    std::vector<int32_t> want = {kCls};
    want.insert(want.end(), (swap ? B : A).begin(), (swap ? B : A).end());
    want.push_back(kSep);
    const int first = static_cast<int>(want.size());
    want.insert(want.end(), (swap ? A : B).begin(), (swap ? A : B).end());
    want.push_back(kSep);
    const int len = static_cast<int>(want.size());
    want.resize(9, kPad);
    EXPECT_EQ(r.original(i), want) << i;
    EXPECT_EQ(r.lengths[static_cast<size_t>(i)], len);
    for (int t = 0; t < 9; ++t)
      EXPECT_EQ(r.types[static_cast<size_t>(i * 9 + t)], t >= first && t < len ? 1 : 0) << i;
  }
  EXPECT_GT(swapped, 20);
  EXPECT_LT(swapped, 47);
}

TEST(MlmDataset, NextSentenceDrawsBFromAnotherChunk) {
  TempDir dir;
  std::vector<uint16_t> tokens;
  for (int i = 0; i < 400; ++i) tokens.push_back(static_cast<uint16_t>((i / 10 * 7 + i % 10) % 50));
  write(dir / "a.bin", tokens);
  // T = 13: 40 chunks of 10, A and B of 5; no two chunks have the same B.
  MlmDataset d({dir / "a.bin"}, opts(13, SentenceHead::kNsp, false), masking(2));
  const int n = static_cast<int>(d.num_chunks());
  Rows r(n, 13, 2);
  d.fill(0, n, r.at(0));
  int random = 0;
  for (int i = 0; i < n; ++i) {
    std::vector<int32_t> chunk(10);
    d.read_chunk(static_cast<uint64_t>(i), chunk.data());
    const std::vector<int32_t> t = r.original(i);
    EXPECT_EQ(std::vector<int32_t>(t.begin() + 1, t.begin() + 6),
              std::vector<int32_t>(chunk.begin(), chunk.begin() + 5));
    const bool own = std::equal(chunk.begin() + 5, chunk.end(), t.begin() + 7);
    EXPECT_EQ(own, r.labels[static_cast<size_t>(i)] == 0) << i;
    random += r.labels[static_cast<size_t>(i)];
  }
  EXPECT_GT(random, n / 4);
  EXPECT_LT(random, 3 * n / 4);
}

TEST(MlmDataset, AnySplitOfABatchAndAReopenGiveTheSameSamples) {
  TempDir dir;
  std::vector<uint16_t> tokens;
  for (int i = 0; i < 500; ++i) tokens.push_back(static_cast<uint16_t>((i * 7) % 50));
  write(dir / "a.bin", tokens);
  write(dir / "b.bin", std::vector<uint16_t>(tokens.begin(), tokens.begin() + 123));
  for (const SentenceHead head : {SentenceHead::kNone, SentenceHead::kNsp, SentenceHead::kSop}) {
    const auto open = [&] {
      return MlmDataset({dir / "*.bin"}, opts(16, head, false, true), masking(3));
    };
    MlmDataset whole = open();
    const int count = static_cast<int>(whole.num_chunks()) + 20;  // crosses an epoch boundary
    const uint64_t first = 5;
    Rows all(count, 16, 3);
    whole.fill(first, count, all.at(0));
    for (const int step : {1, 3, 7}) {
      MlmDataset split = open();
      Rows parts(count, 16, 3);
      for (int i = count; i > 0; i -= step) {  // back to front: epochs revisited
        const int begin = std::max(0, i - step);
        split.fill(first + static_cast<uint64_t>(begin), i - begin, parts.at(begin));
      }
      EXPECT_EQ(parts.tokens, all.tokens) << step;
      EXPECT_EQ(parts.types, all.types);
      EXPECT_EQ(parts.lengths, all.lengths);
      EXPECT_EQ(parts.positions, all.positions);
      EXPECT_EQ(parts.targets, all.targets);
      EXPECT_EQ(parts.labels, all.labels);
    }
    // The next epoch visits the chunks in another order.
    MlmDataset again = open();
    const uint64_t n = again.num_chunks();
    std::vector<uint64_t> e0, e1;
    for (uint64_t s = 0; s < n; ++s) e0.push_back(again.chunk_of(s));
    for (uint64_t s = 0; s < n; ++s) e1.push_back(again.chunk_of(n + s));
    EXPECT_NE(e0, e1);
  }
}

TEST(MlmDataset, RefusesDataThatMakesNoSample) {
  TempDir dir;
  write(dir / "eots.bin", {kEot, kEot, 3, kEot, 4, kEot});
  EXPECT_NE(input_error([&] {
              MlmDataset({dir / "eots.bin"}, opts(8, SentenceHead::kSop, true), masking(2));
            }).find("MLM data: '" + dir / "eots.bin" + "' holds no document of at least 2 tokens"),
            std::string::npos);
  write(dir / "only.bin", {kEot, kEot});
  EXPECT_NE(input_error([&] {
              MlmDataset({dir / "only.bin"}, opts(8, SentenceHead::kNone, true), masking(2));
            }).find("holds no document of at least 1 token,"),
            std::string::npos);
  write(dir / "one.bin", {1, 2, 3, 4});
  EXPECT_NE(input_error([&] {
              MlmDataset({dir / "one.bin"}, opts(8, SentenceHead::kNsp, false), masking(2));
            }).find("next-sentence prediction needs a second chunk"),
            std::string::npos);
  EXPECT_NO_THROW(MlmDataset({dir / "one.bin"}, opts(8, SentenceHead::kSop, false), masking(2)));
  EXPECT_EQ(input_error([&] {
              MlmDataset({dir / "one.bin"}, opts(4, SentenceHead::kSop, false), masking(2));
            }),
            "MLM data: seq_len 4 is too short for [CLS] A [SEP] B [SEP] (at least 5)");
  MlmDatasetOptions small = opts(8, SentenceHead::kNone, false);
  small.vocab_size = 52;
  EXPECT_EQ(input_error([&] { MlmDataset({dir / "one.bin"}, small, masking(2)); }),
            "MLM data: the special ids ([CLS] 52, [SEP] 53, [PAD] 51) must be in [0, "
            "model.vocab_size 52)");
  write(dir / "big.bin", {1, 2, 60});
  EXPECT_NE(input_error([&] {
              MlmDataset({dir / "big.bin"}, opts(8, SentenceHead::kNone, false), masking(2));
            }).find("token id 60 at position 2 is >= vocab_size 55"),
            std::string::npos);
}

}  // namespace
}  // namespace ph

// Corpus BLEU (trainer/bleu.h): the 13a tokenization, small cases computed by hand (with
// sacrebleu's exp smoothing), and sacrebleu itself (tests/bleu_peer.py) on generated corpora
// with punctuation, numbers, mixed case, Unicode, HTML entities and empty lines; that
// comparison skips when the Python environment has no sacrebleu.
#include "trainer/bleu.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "hf_peer.h"
#include "parallel/errors.h"
#include "test_util.h"

namespace ph {
namespace {

using Strings = std::vector<std::string>;

std::string joined(const Strings& tokens) {
  std::string s;
  for (const std::string& t : tokens) s += (s.empty() ? "" : "|") + t;
  return s;
}

TEST(Bleu, Tokenization13a) {
  const std::pair<std::string, std::string> cases[] = {
      {"Hello, world!", "Hello|,|world|!"},
      {"It costs $3.50 (about 1,000 yen).", "It|costs|$|3.50|(|about|1,000|yen|)|."},
      {"well-known 5-6 a.b x,y", "well-known|5|-|6|a|.|b|x|,|y"},
      {"e.g. U.S.A.", "e|.|g|.|U|.|S|.|A|."},
      {"&quot;hi&quot; &amp;lt; &lt;b&gt;", "\"|hi|\"|<|<|b|>"},
      {"a<skipped>b c-\nd e\nf", "ab|cd|e|f"},
      {"end-\n", "end-"},
      {"don't [x] {y} a/b a@b #1 100% ~z_", "don't|[|x|]|{|y|}|a|/|b|a|@|b|#|1|100|%|~|z|_"},
      {"  Über\xC2\xA0na\xC3\xAFve\xE3\x80\x80\xE6\x97\xA5\xE6\x9C\xAC.\t\xE2\x80\x89x ",
       "\xC3\x9C"
       "ber|na\xC3\xAFve|\xE6\x97\xA5\xE6\x9C\xAC|.|x"},
      {"\xE2\x80\x8B"
       "zero-width",
       "\xE2\x80\x8B"
       "zero-width"},  // U+200B is no space
      {" \t\xC2\x85 ", ""},
  };
  for (const auto& [line, want] : cases) EXPECT_EQ(joined(tokenize_13a(line)), want) << line;
}

TEST(Bleu, PerfectMatchIsOneHundred) {
  const BleuScore b =
      corpus_bleu({"The cat sat on the mat.", "Ça va?"}, {"The cat sat on the mat.", "Ça va?"});
  EXPECT_DOUBLE_EQ(b.score, 100.0);
  EXPECT_EQ(b.to_string(),
            "BLEU = 100.00 100.0/100.0/100.0/100.0 (BP = 1.000 ratio = 1.000 hyp_len = 10 "
            "ref_len = 10)");
}

// hyp a b c d e, ref a b c x d e: 5/5, 3/4, 1/3, 0/2 -> the 4-gram precision is smoothed to
// 100 / (2 * 2); BP = exp(1 - 6/5).
TEST(Bleu, NoFourGramMatchIsSmoothedNotZero) {
  const BleuScore b = corpus_bleu({"a b c d e"}, {"a b c x d e"});
  const double want =
      std::exp(1.0 - 6.0 / 5.0) *
      std::exp((std::log(100.0) + std::log(75.0) + std::log(100.0 / 3.0) + std::log(25.0)) / 4.0);
  EXPECT_NEAR(b.score, want, 1e-9);
  EXPECT_NEAR(b.precisions[3], 25.0, 1e-12);
  EXPECT_NEAR(b.bp, std::exp(-0.2), 1e-12);
  EXPECT_EQ(b.hyp_len, 5);
  EXPECT_EQ(b.ref_len, 6);
}

// hyp a b c d, ref a b x y: 2/4, 1/3, 0/2 -> 100 / (2 * 2), 0/1 -> 100 / (4 * 1).
TEST(Bleu, EachUnmatchedOrderDoublesTheSmoothing) {
  const BleuScore b = corpus_bleu({"a b c d"}, {"a b x y"});
  EXPECT_NEAR(b.precisions[2], 25.0, 1e-12);
  EXPECT_NEAR(b.precisions[3], 25.0, 1e-12);
  EXPECT_NEAR(b.score, std::pow(50.0 * (100.0 / 3.0) * 25.0 * 25.0, 0.25), 1e-9);
}

TEST(Bleu, ZeroCases) {
  const BleuScore none = corpus_bleu({"x y z w"}, {"a b c d"});  // no match of any order
  EXPECT_EQ(none.score, 0.0);
  EXPECT_EQ(none.to_string(),
            "BLEU = 0.00 0.0/0.0/0.0/0.0 (BP = 1.000 ratio = 1.000 hyp_len = 4 ref_len = 4)");
  // Matches, but no hypothesis has 4 tokens: there is no 4-gram precision at all.
  const BleuScore shorter = corpus_bleu({"a b c"}, {"a b d"});
  EXPECT_EQ(shorter.score, 0.0);
  EXPECT_EQ(shorter.to_string(),
            "BLEU = 0.00 66.7/50.0/50.0/0.0 (BP = 1.000 ratio = 1.000 hyp_len = 3 ref_len = 3)");
  const BleuScore empty = corpus_bleu({"", " "}, {"a b", "c"});
  EXPECT_EQ(empty.score, 0.0);
  EXPECT_EQ(empty.bp, 0.0);
  EXPECT_EQ(corpus_bleu({"The Cat"}, {"the cat"}).score, 0.0);  // case counts
}

TEST(Bleu, StatisticsAddUpOverSentences) {
  const Strings hyps{"the quick brown fox", "jumps over the lazy dog .", ""};
  const Strings refs{"a quick brown fox", "jumped over the lazy dog.", "nothing"};
  BleuStats sum;
  for (size_t i = 0; i < hyps.size(); ++i) sum += bleu_stats(hyps[i], refs[i]);
  const BleuScore a = bleu_from_stats(sum), b = corpus_bleu(hyps, refs);
  EXPECT_EQ(a.score, b.score);
  EXPECT_EQ(sum.hyp_len, 10);
  EXPECT_EQ(sum.ref_len, 11);
  EXPECT_EQ(sum.correct[0], 8);  // quick brown fox over the lazy dog .
  EXPECT_EQ(sum.total[3], 1 + 3);
  EXPECT_GT(a.score, 0.0);
  EXPECT_LT(a.score, 100.0);
}

TEST(Bleu, BadInputIsRefusedWithAMessage) {
  auto message = [](const Strings& h, const Strings& r) -> std::string {
    try {
      corpus_bleu(h, r);
    } catch (const InputError& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_EQ(message({"a", "b"}, {"a"}),
            "BLEU: 2 hypotheses but 1 references; they must pair up one to one");
  EXPECT_EQ(message({}, {}), "BLEU: no hypotheses to score");
}

// Random lines from pieces that exercise every tokenization rule; references are edits of
// their hypotheses, so that matches of every order occur.
class CorpusGenerator {
 public:
  explicit CorpusGenerator(uint32_t seed) : rng_(seed) {}

  std::pair<std::string, std::string> pair() {
    std::vector<std::string> hyp;
    const int n = pick(8) == 0 ? 0 : 1 + pick(14);
    for (int i = 0; i < n; ++i) hyp.push_back(word());
    std::vector<std::string> ref;
    for (const std::string& w : hyp) {
      const int r = pick(10);
      if (r == 0) continue;                // dropped
      ref.push_back(r == 1 ? word() : w);  // replaced or kept
      if (r == 2) ref.push_back(word());   // inserted
    }
    if (pick(12) == 0) ref.push_back(word());
    return {line(hyp), line(ref)};
  }

 private:
  int pick(int n) { return static_cast<int>(rng_() % static_cast<uint32_t>(n)); }

  std::string word() {
    static const char* const kWords[] = {"the",
                                         "The",
                                         "THE",
                                         "cat",
                                         "Cat",
                                         "sat",
                                         "on",
                                         "mat",
                                         "a",
                                         "dog",
                                         "3.14",
                                         "1,000",
                                         "5-6",
                                         "2-",
                                         "well-known",
                                         "don't",
                                         "end.",
                                         "x,y",
                                         "e.g.",
                                         "U.S.",
                                         "(paren)",
                                         "[b]",
                                         "{c}",
                                         "$5",
                                         "100%",
                                         "#tag",
                                         "@me",
                                         "a/b",
                                         "~",
                                         "_",
                                         "`q`",
                                         "\"q\"",
                                         "'s",
                                         "&amp;",
                                         "&quot;",
                                         "&lt;i&gt;",
                                         "&amp;lt;",
                                         "&",
                                         "<skipped>",
                                         "-\n",
                                         "a-\nb",
                                         "\n",
                                         "...",
                                         ",",
                                         ".",
                                         "-",
                                         "--",
                                         "na\xC3\xAFve",
                                         "\xC3\x9C"
                                         "ber",
                                         "caf\xC3\xA9,",
                                         "\xE6\x97\xA5\xE6\x9C\xAC",
                                         "\xE2\x80\x94",
                                         "\xE2\x80\xA6",
                                         "\xF0\x9F\x98\x80",
                                         "\xCE\xA9mega.",
                                         "7.",
                                         ".5",
                                         "9,",
                                         ",9",
                                         "1.2.3",
                                         "x.y.z",
                                         "\xE2\x80\x8B",
                                         "\xC2\xBF",
                                         "\xC2\xA1Hola!"};
    return kWords[pick(static_cast<int>(std::size(kWords)))];
  }

  std::string line(const std::vector<std::string>& words) {
    static const char* const kSeparators[] = {
        " ", " ", " ", " ", "", "  ", "\t", "\xC2\xA0", "\xE3\x80\x80", "\xE2\x80\x89"};
    std::string s = pick(6) == 0 ? " " : "";
    for (size_t i = 0; i < words.size(); ++i) {
      if (i > 0) s += kSeparators[pick(static_cast<int>(std::size(kSeparators)))];
      s += words[i];
    }
    if (pick(6) == 0) s += pick(2) ? " " : "\xC2\xA0\n";
    return s;
  }

  std::mt19937 rng_;
};

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
}

// Whether the Python environment can run the peer ("" when it can).
std::string sacrebleu_missing() {
  const std::string python = testing::hf_python();
  const testing::RunResult r = testing::run_command(python + " -c 'import sacrebleu'");
  if (r.exit_code == 0) return "";
  return python + " cannot import sacrebleu: run launch/pyenv.sh (or set POLYHEAD_PYTHON)\n" +
         r.output;
}

TEST(Bleu, EqualsSacrebleu) {
  if (const std::string why = sacrebleu_missing(); !why.empty()) GTEST_SKIP() << why;
  CorpusGenerator gen(2024);
  std::vector<std::pair<Strings, Strings>> corpora;
  for (int c = 0; c < 400; ++c) {
    const int n = c < 200 ? 1 : c < 390 ? 2 + c % 19 : 300;  // single sentences, small, large
    Strings hyps, refs;
    for (int i = 0; i < n; ++i) {
      auto [h, r] = gen.pair();
      hyps.push_back(h);
      refs.push_back(r);
    }
    corpora.emplace_back(hyps, refs);
  }
  std::string blob;
  for (const auto& [hyps, refs] : corpora) {
    put_u32(blob, static_cast<uint32_t>(hyps.size()));
    for (size_t i = 0; i < hyps.size(); ++i) {
      for (const std::string* s : {&hyps[i], &refs[i]}) {
        put_u32(blob, static_cast<uint32_t>(s->size()));
        blob += *s;
      }
    }
  }
  testing::TempDir dir;
  testing::write_file(dir / "corpora.bin", blob);
  const testing::RunResult r =
      testing::run_command(testing::hf_python() + " " + testing::source_dir() +
                           "/tests/bleu_peer.py " + (dir / "corpora.bin") + " " + (dir / "out"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream out(dir / "out");
  std::string row;
  size_t c = 0, nonzero = 0;
  for (; std::getline(out, row) && c < corpora.size(); ++c) {
    const size_t tab = row.find('\t');
    std::istringstream fields(row.substr(0, tab));
    double score = 0.0;
    BleuStats want;
    fields >> score >> want.hyp_len >> want.ref_len;
    for (int64_t& v : want.correct) fields >> v;
    for (int64_t& v : want.total) fields >> v;
    BleuStats got;
    for (size_t i = 0; i < corpora[c].first.size(); ++i)
      got += bleu_stats(corpora[c].first[i], corpora[c].second[i]);
    const BleuScore b = corpus_bleu(corpora[c].first, corpora[c].second);
    EXPECT_NEAR(b.score, score, 0.01) << "corpus " << c << ": " << corpora[c].first[0];
    EXPECT_EQ(got.hyp_len, want.hyp_len) << "corpus " << c;
    EXPECT_EQ(got.ref_len, want.ref_len) << "corpus " << c;
    EXPECT_EQ(got.correct, want.correct) << "corpus " << c;
    EXPECT_EQ(got.total, want.total) << "corpus " << c;
    EXPECT_EQ(b.to_string(), row.substr(tab + 1)) << "corpus " << c;
    nonzero += score > 0.0;
  }
  EXPECT_EQ(c, corpora.size()) << "the peer wrote fewer lines than corpora";
  EXPECT_GT(nonzero, corpora.size() / 4) << "too few corpora with a score above 0";
}

}  // namespace
}  // namespace ph

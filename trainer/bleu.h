// Corpus BLEU (Papineni et al., 2002) as sacrebleu computes it by default: one reference per
// hypothesis, the "13a" tokenization (mteval-v13a's, as sacrebleu has it), case kept, n-grams
// up to 4, the brevity penalty, and the "exp" smoothing; equal to
// sacrebleu.corpus_bleu(hyps, [refs]).score.
//
// Per sentence pair, after tokenization: hyp_len and ref_len are the token counts; for each
// order n = 1..4, total[n] is the number of hypothesis n-grams and correct[n] the number of
// them found in the reference, each n-gram counted at most as often as the reference has it.
// Over the corpus the counts are summed, then
//   - if no n-gram of any order matches, BLEU = 0;
//   - precision p_n = 100 * correct[n] / total[n]; if correct[n] = 0 (and total[n] > 0), the
//     exp smoothing uses p_n = 100 / (2^k * total[n]) for the k-th such order (k = 1, 2, ...);
//     if total[n] = 0 (no hypothesis has n tokens), p_n and every higher one are 0, and BLEU = 0;
//   - BP = 1 if hyp_len >= ref_len, exp(1 - ref_len / hyp_len) if 0 < hyp_len < ref_len, 0 if
//     hyp_len = 0;
//   - BLEU = BP * exp((ln p_1 + ln p_2 + ln p_3 + ln p_4) / 4), on a 0..100 scale.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ph {

constexpr int kBleuOrder = 4;

// sacrebleu's description of the metric computed here (its signature without the version).
constexpr const char* kBleuSignature = "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp";

// The sufficient statistics of BLEU: they add up over sentences (and so over ranks).
struct BleuStats {
  int64_t hyp_len = 0, ref_len = 0;
  std::array<int64_t, kBleuOrder> correct{}, total{};
  BleuStats& operator+=(const BleuStats& o);
};

struct BleuScore {
  double score = 0.0;                           // 0..100
  std::array<double, kBleuOrder> precisions{};  // percent, smoothed as above
  double bp = 0.0;                              // brevity penalty
  double ratio = 0.0;                           // hyp_len / ref_len (0 when ref_len = 0)
  int64_t hyp_len = 0, ref_len = 0;
  // As sacrebleu prints a score: "BLEU = 34.12 65.4/40.1/27.3/19.0 (BP = 1.000 ratio = 1.012
  // hyp_len = 1234 ref_len = 1220)".
  std::string to_string() const;
};

// The 13a tokenization of one line (UTF-8): trailing whitespace dropped; "<skipped>" and "-\n"
// removed, "\n" made a space; &quot; &amp; &lt; &gt; unescaped (in that order); the ASCII
// punctuation {|}~[\]^_`!"#$%&()*+:;<=>?@/ and the space split off; "." and "," split off
// unless between digits; "-" split off after a digit; whitespace (Python's: the ASCII blanks
// and separators, U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F,
// U+3000) collapsed to one space. Bytes that are not UTF-8 are kept as they are.
std::vector<std::string> tokenize_13a(std::string_view line);

// The statistics of one (hypothesis, reference) pair of untokenized lines.
BleuStats bleu_stats(std::string_view hyp, std::string_view ref);

BleuScore bleu_from_stats(const BleuStats& s);

// Corpus BLEU of hyps[i] against refs[i]. Throws InputError when the counts differ or when
// there are none.
BleuScore corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::string>& refs);

}  // namespace ph

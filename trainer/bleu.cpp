#include "trainer/bleu.h"

#include <cmath>
#include <cstdio>
#include <string>
#include <unordered_map>

#include "parallel/errors.h"

namespace ph {
namespace {

// The byte length of the whitespace code point (Python's str.isspace) that starts at s[p],
// or 0. Every such code point's UTF-8 form starts with an ASCII or a lead byte, so in valid
// UTF-8 a match is never inside another code point.
size_t space_at(std::string_view s, size_t p) {
  const auto b = [&](size_t i) {
    return p + i < s.size() ? static_cast<unsigned char>(s[p + i]) : 0u;
  };
  const unsigned c = b(0);
  if ((c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20)) return 1;
  if (c == 0xC2 && (b(1) == 0x85 || b(1) == 0xA0)) return 2;
  if (c == 0xE1 && b(1) == 0x9A && b(2) == 0x80) return 3;  // U+1680
  const unsigned c2 = b(2);
  if (c == 0xE2 && b(1) == 0x80 &&
      ((c2 >= 0x80 && c2 <= 0x8A) || c2 == 0xA8 || c2 == 0xA9 || c2 == 0xAF))
    return 3;  // U+2000..U+200A, U+2028, U+2029, U+202F
  if (c == 0xE2 && b(1) == 0x81 && b(2) == 0x9F) return 3;  // U+205F
  if (c == 0xE3 && b(1) == 0x80 && b(2) == 0x80) return 3;  // U+3000
  return 0;
}

// Python's str.rstrip(): the line without its trailing whitespace.
std::string_view rstrip(std::string_view s) {
  size_t end = 0;
  for (size_t p = 0; p < s.size();) {
    const size_t k = space_at(s, p);
    if (k == 0)
      end = ++p;
    else
      p += k;
  }
  return s.substr(0, end);
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  std::string out;
  size_t p = 0;
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, p)) {
    out.append(s, p, at - p).append(to);
    p = at + from.size();
  }
  s = out.append(s, p);
}

bool digit(char c) {
  return c >= '0' && c <= '9';
}
bool period_or_comma(char c) {
  return c == '.' || c == ',';
}

// The punctuation of mteval's first rule: {|}~ [\]^_` space!"#$%& ()*+ :;<=>?@ /
bool split_punctuation(char c) {
  return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') ||
         (c >= '(' && c <= '+') || (c >= ':' && c <= '@') || c == '/';
}

// One pass of a two-character rule, as a regular expression substitution does it: left to
// right, matches do not overlap. `emit` writes the replacement of the pair (a, b).
template <class Match, class Emit>
std::string pair_rule(const std::string& s, Match match, Emit emit) {
  std::string out;
  out.reserve(s.size() + s.size() / 2);
  for (size_t p = 0; p < s.size();) {
    if (p + 1 < s.size() && match(s[p], s[p + 1])) {
      emit(out, s[p], s[p + 1]);
      p += 2;
    } else {
      out += s[p++];
    }
  }
  return out;
}

using NgramCounts = std::array<std::unordered_map<std::string, int64_t>, kBleuOrder>;

NgramCounts ngrams(const std::vector<std::string>& tokens) {
  NgramCounts c;
  for (int n = 1; n <= kBleuOrder; ++n) {
    for (size_t i = 0; i + n <= tokens.size(); ++i) {
      std::string key = tokens[i];  // tokens hold no space: the join is unambiguous
      for (size_t k = 1; k < static_cast<size_t>(n); ++k) key.append(" ").append(tokens[i + k]);
      ++c[static_cast<size_t>(n - 1)][key];
    }
  }
  return c;
}

}  // namespace

BleuStats& BleuStats::operator+=(const BleuStats& o) {
  hyp_len += o.hyp_len;
  ref_len += o.ref_len;
  for (size_t n = 0; n < kBleuOrder; ++n) {
    correct[n] += o.correct[n];
    total[n] += o.total[n];
  }
  return *this;
}

std::string BleuScore::to_string() const {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "BLEU = %.2f %.1f/%.1f/%.1f/%.1f (BP = %.3f ratio = %.3f hyp_len = %lld ref_len = "
                "%lld)",
                score, precisions[0], precisions[1], precisions[2], precisions[3], bp, ratio,
                static_cast<long long>(hyp_len), static_cast<long long>(ref_len));
  return buf;
}

std::vector<std::string> tokenize_13a(std::string_view line) {
  std::string s(rstrip(line));
  replace_all(s, "<skipped>", "");
  replace_all(s, "-\n", "");
  replace_all(s, "\n", " ");
  if (s.find('&') != std::string::npos) {
    replace_all(s, "&quot;", "\"");
    replace_all(s, "&amp;", "&");
    replace_all(s, "&lt;", "<");
    replace_all(s, "&gt;", ">");
  }
  std::string spaced = " ";
  for (char c : s) {
    if (split_punctuation(c))
      spaced.append(" ").append(1, c).append(" ");
    else
      spaced += c;
  }
  spaced += ' ';
  spaced = pair_rule(
      spaced, [](char a, char b) { return !digit(a) && period_or_comma(b); },
      [](std::string& o, char a, char b) { o.append(1, a).append(" ").append(1, b).append(" "); });
  spaced = pair_rule(
      spaced, [](char a, char b) { return period_or_comma(a) && !digit(b); },
      [](std::string& o, char a, char b) { o.append(" ").append(1, a).append(" ").append(1, b); });
  spaced = pair_rule(
      spaced, [](char a, char b) { return digit(a) && b == '-'; },
      [](std::string& o, char a, char b) { o.append(1, a).append(" ").append(1, b).append(" "); });
  std::vector<std::string> tokens;
  std::string cur;
  for (size_t p = 0; p < spaced.size();) {
    const size_t k = space_at(spaced, p);
    if (k == 0) {
      cur += spaced[p++];
      continue;
    }
    if (!cur.empty()) tokens.push_back(std::move(cur));
    cur.clear();
    p += k;
  }
  if (!cur.empty()) tokens.push_back(std::move(cur));
  return tokens;
}

BleuStats bleu_stats(std::string_view hyp, std::string_view ref) {
  const std::vector<std::string> h = tokenize_13a(hyp), r = tokenize_13a(ref);
  const NgramCounts hc = ngrams(h), rc = ngrams(r);
  BleuStats s;
  s.hyp_len = static_cast<int64_t>(h.size());
  s.ref_len = static_cast<int64_t>(r.size());
  for (size_t n = 0; n < kBleuOrder; ++n) {
    for (const auto& [gram, count] : hc[n]) {
      s.total[n] += count;
      const auto it = rc[n].find(gram);
      if (it != rc[n].end()) s.correct[n] += std::min(count, it->second);
    }
  }
  return s;
}

BleuScore bleu_from_stats(const BleuStats& s) {
  BleuScore b;
  b.hyp_len = s.hyp_len;
  b.ref_len = s.ref_len;
  b.ratio = s.ref_len > 0 ? static_cast<double>(s.hyp_len) / static_cast<double>(s.ref_len) : 0.0;
  b.bp = 1.0;
  if (s.hyp_len < s.ref_len)
    b.bp = s.hyp_len > 0
               ? std::exp(1.0 - static_cast<double>(s.ref_len) / static_cast<double>(s.hyp_len))
               : 0.0;
  bool any = false;
  for (int64_t c : s.correct) any = any || c > 0;
  if (!any) return b;
  double smooth = 1.0, log_sum = 0.0;
  bool all_orders = true;
  for (size_t n = 0; n < kBleuOrder; ++n) {
    if (s.total[n] == 0) {
      all_orders = false;  // p_n = 0 from here on: the score is 0
      break;
    }
    const double total = static_cast<double>(s.total[n]);
    if (s.correct[n] == 0) {
      smooth *= 2.0;
      b.precisions[n] = 100.0 / (smooth * total);
    } else {
      b.precisions[n] = 100.0 * static_cast<double>(s.correct[n]) / total;
    }
    log_sum += std::log(b.precisions[n]);
  }
  b.score = all_orders ? b.bp * std::exp(log_sum / kBleuOrder) : 0.0;
  return b;
}

BleuScore corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::string>& refs) {
  if (hyps.size() != refs.size())
    throw InputError("BLEU: " + std::to_string(hyps.size()) + " hypotheses but " +
                     std::to_string(refs.size()) + " references; they must pair up one to one");
  if (hyps.empty()) throw InputError("BLEU: no hypotheses to score");
  BleuStats total;
  for (size_t i = 0; i < hyps.size(); ++i) total += bleu_stats(hyps[i], refs[i]);
  return bleu_from_stats(total);
}

}  // namespace ph

#include "trainer/beam_search.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <utility>

#include "parallel/errors.h"

namespace ph {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

std::string number(double x) {
  std::ostringstream o;
  o << x;
  return o.str();
}

struct Candidate {
  double score;  // raw: the parent's score plus the token's log-probability
  int32_t token;
  int parent;  // rank of the parent among its source's live hypotheses
};

// Ranking of candidates: higher score, then lower token id, then lower parent rank.
bool ranks_before(const Candidate& a, const Candidate& b) {
  if (a.score != b.score) return a.score > b.score;
  if (a.token != b.token) return a.token < b.token;
  return a.parent < b.parent;
}

struct Live {
  std::vector<int32_t> tokens;
  double score = 0.0;
};

struct Finished {
  Hypothesis hyp;
  long order = 0;  // finishing order: the tie-break between equal scores
};

struct SourceState {
  std::vector<Live> live;      // ranked best first; live[r] occupies slot r of the source
  std::vector<Finished> pool;  // the `beam` best finished, best first
  long finished = 0;           // hypotheses finished so far
  int max_len = 0;             // output tokens before eos
  bool done = false;
};

void check_options(const IncrementalDecoder& dec, const BeamOptions& opt) {
  const int V = dec.vocab_size();
  if (opt.beam < 1 || opt.beam > dec.max_beams())
    throw InputError("beam search: --beam must be between 1 and " +
                     std::to_string(dec.max_beams()) + ", got " + std::to_string(opt.beam));
  if (opt.n_best < 1 || opt.n_best > opt.beam)
    throw InputError("beam search: --n-best must be between 1 and the beam size " +
                     std::to_string(opt.beam) + ", got " + std::to_string(opt.n_best));
  if (!std::isfinite(opt.length_penalty))
    throw InputError("beam search: --length-penalty must be a finite number, got " +
                     number(opt.length_penalty));
  if (!(opt.max_len_a >= 0.0) || !std::isfinite(opt.max_len_a))
    throw InputError("beam search: --max-len-a must be a finite number >= 0, got " +
                     number(opt.max_len_a));
  if (opt.max_len_b < 0)
    throw InputError("beam search: --max-len-b must be >= 0, got " + std::to_string(opt.max_len_b));
  const std::pair<const char*, int32_t> ids[] = {
      {"bos", opt.bos}, {"eos", opt.eos}, {"pad", opt.pad}};
  for (const auto& [name, id] : ids)
    if (id < 0 || id >= V)
      throw InputError(std::string("beam search: the ") + name + " id " + std::to_string(id) +
                       " is not in the vocabulary of " + std::to_string(V) + " tokens");
}

// Keeps the k best (ranks_before) candidates of one row of log-probabilities in `top`, best
// first; bos and pad are skipped unless they are eos. `forced_eos`: eos is the only candidate.
void row_candidates(const float* lp, int V, double score, int parent, const BeamOptions& opt,
                    bool forced_eos, size_t k, std::vector<Candidate>& top) {
  auto add = [&](int32_t v) {
    const double x = std::isnan(lp[v]) ? kNegInf : static_cast<double>(lp[v]);
    const Candidate c{score + x, v, parent};
    if (top.size() < k) {
      top.push_back(c);
    } else if (ranks_before(c, top.back())) {
      top.back() = c;
    } else {
      return;
    }
    for (size_t i = top.size() - 1; i > 0 && ranks_before(top[i], top[i - 1]); --i)
      std::swap(top[i], top[i - 1]);
  };
  if (forced_eos) {
    add(opt.eos);
    return;
  }
  for (int32_t v = 0; v < V; ++v) {
    if (v != opt.eos && (v == opt.bos || v == opt.pad)) continue;
    add(v);
  }
}

void add_finished(SourceState& s, const Live& parent, double score, double length_penalty,
                  int beam) {
  Finished f;
  f.hyp.tokens = parent.tokens;
  f.hyp.logprob = score;
  f.hyp.score = score / std::pow(static_cast<double>(f.hyp.length()), length_penalty);
  f.order = s.finished++;
  auto after = [](const Finished& a, const Finished& b) {
    return a.hyp.score != b.hyp.score ? a.hyp.score > b.hyp.score : a.order < b.order;
  };
  s.pool.insert(std::upper_bound(s.pool.begin(), s.pool.end(), f, after), std::move(f));
  if (static_cast<int>(s.pool.size()) > beam) s.pool.pop_back();
}

// After step t (the live hypotheses hold t + 1 tokens): whether the search of s is over.
bool search_over(const SourceState& s, int t, const BeamOptions& opt) {
  if (s.live.empty() || (opt.beam == 1 && s.finished >= 1)) return true;  // greedy: first eos
  if (static_cast<int>(s.pool.size()) < opt.n_best) return false;
  const double A = opt.length_penalty;
  const double shortest = t + 2, longest = s.max_len + 1;
  const double denom = std::max(std::pow(shortest, A), std::pow(longest, A));
  return s.live.front().score / denom <= s.pool[static_cast<size_t>(opt.n_best) - 1].hyp.score;
}

// Drops the sources whose search is over from the decoder's batch (IncrementalDecoder::retain)
// and moves the slots of the others down, with their next tokens and parents: active[a] is the
// source at place a of the batch, whose slots are a * beam .. (a + 1) * beam - 1.
void drop_done(IncrementalDecoder& dec, const std::vector<SourceState>& st, int beam,
               std::vector<int>& active, std::vector<int32_t>& tokens,
               std::vector<int32_t>& parents) {
  std::vector<int32_t> keep;
  for (int a = 0; a < static_cast<int>(active.size()); ++a)
    if (!st[static_cast<size_t>(active[static_cast<size_t>(a)])].done) keep.push_back(a);
  if (keep.empty() || keep.size() == active.size()) return;
  dec.retain(keep.data(), static_cast<int>(keep.size()));
  for (size_t i = 0; i < keep.size(); ++i) {
    const int a = keep[i];  // >= i
    active[i] = active[static_cast<size_t>(a)];
    for (int r = 0; r < beam; ++r) {
      const size_t to = i * static_cast<size_t>(beam) + static_cast<size_t>(r);
      const size_t from = static_cast<size_t>(a * beam + r);
      tokens[to] = tokens[from];
      parents[to] = parents[from] - (a - static_cast<int>(i)) * beam;
    }
  }
  active.resize(keep.size());
}

// One group of n <= decoder.max_sources() sources. Sources whose search is over leave the
// decoder's batch, so later steps run on the slots of the others only.
void search_group(IncrementalDecoder& dec, const int32_t* source, const int32_t* lengths, int n,
                  int S, const BeamOptions& opt, std::vector<std::vector<Hypothesis>>& out) {
  const int N = opt.beam, V = dec.vocab_size(), M = n * N;
  std::vector<SourceState> st(static_cast<size_t>(n));
  std::vector<int> active(static_cast<size_t>(n));  // the source at each place of the batch
  for (int j = 0; j < n; ++j) {
    st[static_cast<size_t>(j)].max_len = max_output_length(opt, lengths[j], dec.max_length());
    st[static_cast<size_t>(j)].live.resize(1);  // the empty hypothesis, score 0
    active[static_cast<size_t>(j)] = j;
  }
  std::vector<int32_t> tokens(static_cast<size_t>(M), opt.bos), parents(static_cast<size_t>(M));
  std::vector<float> lp(static_cast<size_t>(M) * static_cast<size_t>(V));
  std::vector<Candidate> cands, top;
  dec.start(source, lengths, n, S, N);
  for (int t = 0;; ++t) {
    dec.step(tokens.data(), t == 0 ? nullptr : parents.data(), lp.data());
    bool all_done = true;
    for (int a = 0; a < static_cast<int>(active.size()); ++a) {
      SourceState& s = st[static_cast<size_t>(active[static_cast<size_t>(a)])];
      const int slot0 = a * N;
      for (int r = 0; r < N; ++r) {  // idle slots keep their cache and read pad
        tokens[static_cast<size_t>(slot0 + r)] = opt.pad;
        parents[static_cast<size_t>(slot0 + r)] = slot0 + r;
      }
      if (s.done) continue;
      const bool forced = t >= s.max_len;
      const size_t k = static_cast<size_t>(forced ? 1 : std::min(2 * N, V));
      cands.clear();
      for (int r = 0; r < static_cast<int>(s.live.size()); ++r) {
        top.clear();
        const float* row = lp.data() + static_cast<size_t>(slot0 + r) * static_cast<size_t>(V);
        row_candidates(row, V, s.live[static_cast<size_t>(r)].score, r, opt, forced, k, top);
        cands.insert(cands.end(), top.begin(), top.end());
      }
      std::sort(cands.begin(), cands.end(), ranks_before);
      std::vector<Live> next;
      for (size_t rank = 0; rank < cands.size(); ++rank) {
        const Candidate& c = cands[rank];
        const Live& parent = s.live[static_cast<size_t>(c.parent)];
        if (c.token == opt.eos) {
          if (rank < static_cast<size_t>(N))
            add_finished(s, parent, c.score, opt.length_penalty, N);
        } else if (static_cast<int>(next.size()) < N) {
          const size_t slot = static_cast<size_t>(slot0) + next.size();
          tokens[slot] = c.token;
          parents[slot] = slot0 + c.parent;
          next.push_back({parent.tokens, c.score});
          next.back().tokens.push_back(c.token);
        }
        if (rank + 1 >= static_cast<size_t>(N) && static_cast<int>(next.size()) == N) break;
      }
      s.live = std::move(next);
      s.done = search_over(s, t, opt);
      all_done = all_done && s.done;
    }
    if (all_done) break;
    drop_done(dec, st, N, active, tokens, parents);
  }
  for (SourceState& s : st) {
    std::vector<Hypothesis> best;
    const size_t K = std::min(s.pool.size(), static_cast<size_t>(opt.n_best));
    for (size_t i = 0; i < K; ++i) best.push_back(std::move(s.pool[i].hyp));
    out.push_back(std::move(best));
  }
}

}  // namespace

int max_output_length(const BeamOptions& opt, int src, int decoder_max_length) {
  const double cap = decoder_max_length - 1;
  return static_cast<int>(std::min(std::floor(opt.max_len_a * src + opt.max_len_b), cap));
}

std::vector<std::vector<Hypothesis>> beam_search(IncrementalDecoder& decoder, const int32_t* source,
                                                 const int32_t* lengths, int n, int S,
                                                 const BeamOptions& opt) {
  check_options(decoder, opt);
  for (int j = 0; j < n; ++j)
    if (lengths[j] < 1 || lengths[j] > S)
      throw InputError("beam search: source " + std::to_string(j) + " has " +
                       std::to_string(lengths[j]) + " tokens; it must have between 1 and " +
                       std::to_string(S));
  std::vector<std::vector<Hypothesis>> out;
  out.reserve(static_cast<size_t>(std::max(n, 0)));
  const int group = decoder.max_sources();
  for (int j0 = 0; j0 < n; j0 += group) {
    const int m = std::min(group, n - j0);
    search_group(decoder, source + static_cast<size_t>(j0) * static_cast<size_t>(S), lengths + j0,
                 m, S, opt, out);
  }
  return out;
}

}  // namespace ph

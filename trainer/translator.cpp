#include "trainer/translator.h"

#include <algorithm>
#include <stdexcept>

#include "model/encdec.h"

namespace ph {

Translator::Translator(Model& model, const Tokenizer& tokenizer, int32_t pad, int32_t bos,
                       int32_t eos, int max_sources, int max_beams)
    : model_(model), tokenizer_(tokenizer), pad_(pad), bos_(bos), eos_(eos) {
  auto* encdec = dynamic_cast<EncDec*>(&model);
  if (encdec == nullptr) throw std::logic_error("Translator: the model is not an encoder-decoder");
  S_ = encdec->source_len();
  decoder_ = encdec->incremental_decoder(max_sources, max_beams);
}

std::vector<std::vector<Hypothesis>> Translator::translate_ids(
    const std::vector<std::vector<int32_t>>& sources, BeamOptions opt, int64_t* cropped) {
  const int n = static_cast<int>(sources.size());
  if (n == 0) return {};
  // Padded to the longest source (with its eos) rather than to model.src_seq_len: the encoder
  // then runs over the positions the batch has, and keys past a source's length are masked.
  const size_t S_max = static_cast<size_t>(S_);
  size_t S = 1;
  for (const std::vector<int32_t>& x : sources) S = std::max(S, std::min(x.size(), S_max - 1) + 1);
  std::vector<int32_t> source(static_cast<size_t>(n) * S, pad_);
  std::vector<int32_t> lengths(static_cast<size_t>(n));
  for (int j = 0; j < n; ++j) {
    const std::vector<int32_t>& x = sources[static_cast<size_t>(j)];
    const size_t m = std::min(x.size(), S_max - 1);
    if (m < x.size() && cropped != nullptr) *cropped += 1;
    std::copy(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(m),
              source.begin() + static_cast<std::ptrdiff_t>(static_cast<size_t>(j) * S));
    source[static_cast<size_t>(j) * S + m] = eos_;
    lengths[static_cast<size_t>(j)] = static_cast<int32_t>(m + 1);
  }
  opt.pad = pad_;
  opt.bos = bos_;
  opt.eos = eos_;
  return beam_search(*decoder_, source.data(), lengths.data(), n, static_cast<int>(S), opt);
}

std::string Translator::text(const std::vector<int32_t>& ids) const {
  return tokenizer_.decode(ids.data(), ids.size());
}

std::vector<std::vector<std::string>> Translator::translate(
    const std::vector<std::string>& lines, const BeamOptions& opt,
    std::vector<std::vector<double>>* scores, int64_t* cropped) {
  std::vector<std::vector<int32_t>> sources;
  sources.reserve(lines.size());
  for (const std::string& line : lines) sources.push_back(ids(line));
  const std::vector<std::vector<Hypothesis>> hyps = translate_ids(sources, opt, cropped);
  std::vector<std::vector<std::string>> out(hyps.size());
  if (scores) scores->assign(hyps.size(), {});
  for (size_t j = 0; j < hyps.size(); ++j) {
    for (const Hypothesis& h : hyps[j]) {
      out[j].push_back(text(h.tokens));
      if (scores) (*scores)[j].push_back(h.score);
    }
  }
  return out;
}

DecodeScore score_decoding(Translator& translator, const PairDataset& val, const BeamOptions& opt,
                           int64_t max_pairs, int group, const ProcessGrid& grid) {
  const int64_t n = max_pairs > 0
                        ? std::min<int64_t>(max_pairs, static_cast<int64_t>(val.num_pairs()))
                        : static_cast<int64_t>(val.num_pairs());
  const int64_t groups = (n + group - 1) / group;
  BleuStats stats;
  DecodeScore r;
  std::vector<int32_t> src, tgt;
  for (int64_t g = grid.dp_rank; g < groups; g += grid.dp) {
    const int64_t first = g * group, last = std::min<int64_t>(n, first + group);
    std::vector<std::vector<int32_t>> sources, refs;
    for (int64_t k = first; k < last; ++k) {
      val.read_pair(static_cast<uint64_t>(k), src, tgt);
      sources.push_back(src);
      refs.push_back(tgt);
    }
    const std::vector<std::vector<Hypothesis>> hyps = translator.translate_ids(sources, opt);
    for (size_t j = 0; j < hyps.size(); ++j) {
      const std::vector<int32_t>& best = hyps[j][0].tokens;
      stats += bleu_stats(translator.text(best), translator.text(refs[j]));
      r.exact += best == refs[j] ? 1 : 0;
      r.total += 1;
    }
  }
  if (grid.dp > 1) {
    int64_t v[4 + 2 * kBleuOrder] = {stats.hyp_len, stats.ref_len, r.exact, r.total};
    for (int i = 0; i < kBleuOrder; ++i) {
      v[4 + i] = stats.correct[static_cast<size_t>(i)];
      v[4 + kBleuOrder + i] = stats.total[static_cast<size_t>(i)];
    }
    grid.dp_comm->all_reduce(v, 4 + 2 * kBleuOrder, ReduceOp::Sum);
    stats.hyp_len = v[0];
    stats.ref_len = v[1];
    r.exact = v[2];
    r.total = v[3];
    for (int i = 0; i < kBleuOrder; ++i) {
      stats.correct[static_cast<size_t>(i)] = v[4 + i];
      stats.total[static_cast<size_t>(i)] = v[4 + kBleuOrder + i];
    }
  }
  r.bleu = bleu_from_stats(stats);
  return r;
}

}  // namespace ph

#include "trainer/samples.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "io/tokenizer.h"
#include "trainer/sampler.h"
#include "trainer/vocab_argmax.h"

namespace ph {

void print_task_samples(Model& model, Communicator* tp_host, const AdditionTask& task,
                        const Config& cfg) {
  const SampleConfig& sc = cfg.sample;
  std::vector<AdditionProblem> unused, problems;
  task.draw(cfg.train.seed + 7, 0, sc.count, unused, problems);
  int correct = 0;
  for (const AdditionProblem& pr : problems) {
    const std::string prompt = task.prompt(pr.a, pr.b);
    SampleOptions o;
    o.max_tokens = task.digits + 2;
    o.temperature = 0.0f;  // the task has one right answer: decode greedily
    o.stop_token = '\n';
    const std::vector<int32_t> gen = sample_tokens(model, tp_host, encode_bytes(prompt), o);
    std::string text = decode_bytes(gen.data(), gen.size());
    if (!text.empty() && text.back() == '\n') text.pop_back();
    long value = -1;
    const bool ok = task.parse_answer(text, value) && value == pr.a + pr.b;
    correct += ok ? 1 : 0;
    std::printf("  %s%s   -> %ld %s (expected %ld)\n", prompt.c_str(), text.c_str(), value,
                ok ? "ok" : "WRONG", pr.a + pr.b);
  }
  std::printf(
      "  %d/%zu sampled answers correct (answers are written least significant digit first)\n",
      correct, problems.size());
}

int32_t stop_token_of(const Config& cfg, const Tokenizer& tokenizer) {
  if (cfg.data.eot_token.empty()) return -1;
  return tokenizer.id_of(cfg.data.eot_token).value_or(-1);
}

void print_text_samples(Model& model, Communicator* tp_host, const Config& cfg,
                        const Tokenizer& tokenizer) {
  const SampleConfig& sc = cfg.sample;
  const std::string prompt = sc.prompt.empty() ? std::string("\n") : sc.prompt;
  const std::vector<int32_t> prompt_ids = tokenizer.encode(prompt);
  for (int i = 0; i < sc.count; ++i) {
    SampleOptions o;
    o.max_tokens = sc.max_tokens;
    o.temperature = sc.temperature;
    o.top_k = sc.top_k;
    o.seed = cfg.train.seed + static_cast<uint64_t>(i);
    o.stop_token = stop_token_of(cfg, tokenizer);
    const std::vector<int32_t> gen = sample_tokens(model, tp_host, prompt_ids, o);
    std::printf("  --- sample %d ---\n%s%s\n", i, prompt.c_str(),
                tokenizer.decode(gen.data(), gen.size()).c_str());
  }
}

void print_translation_samples(Translator& translator, const PairDataset& val, const Config& cfg) {
  const uint64_t n = std::min<uint64_t>(static_cast<uint64_t>(cfg.sample.count), val.num_pairs());
  std::vector<std::vector<int32_t>> sources(n), refs(n);
  for (uint64_t k = 0; k < n; ++k) val.read_pair(k, sources[k], refs[k]);
  BeamOptions greedy;
  greedy.beam = 1;
  greedy.max_len_b = cfg.model.seq_len;
  const std::vector<std::vector<Hypothesis>> hyps = translator.translate_ids(sources, greedy);
  for (uint64_t k = 0; k < n; ++k) {
    const bool ok = hyps[k][0].tokens == refs[k];
    std::printf("  %s -> %s  [%s%s]\n", printable(translator.text(sources[k])).c_str(),
                printable(translator.text(hyps[k][0].tokens)).c_str(),
                ok ? "ok" : "WRONG, expected ",
                ok ? "" : printable(translator.text(refs[k])).c_str());
  }
}

void print_mlm_samples(Model& model, Communicator* tp_host, SampleSource& val, const Config& cfg,
                       const Tokenizer& tokenizer) {
  const int n = static_cast<int>(std::min<uint64_t>(
      static_cast<uint64_t>(std::min(cfg.sample.count, model.max_batch())), val.size()));
  if (n == 0) return;
  Batch b;
  val.shape(b, n);
  val.fill(0, n, b);
  int64_t counted = 0;
  model.loss(b, DropoutContext(), &counted);
  const int rows = model.loss_rows(b);
  std::vector<int32_t> guess(static_cast<size_t>(rows));
  VocabArgmax argmax(model, rows);
  argmax.run(model, 0, rows, tp_host, guess.data());
  const auto text = [&](int32_t id) { return printable(tokenizer.token_bytes(id)); };
  int64_t right = 0;
  for (int i = 0; i < n; ++i) {
    std::vector<int32_t> slot(static_cast<size_t>(b.T), -1);  // the prediction row of a position
    for (int k = 0; k < b.P; ++k) {
      const size_t row = static_cast<size_t>(i) * static_cast<size_t>(b.P) + static_cast<size_t>(k);
      if (b.targets[row] != kIgnoreIndex)
        slot[static_cast<size_t>(b.mlm_positions[row])] = static_cast<int32_t>(row);
    }
    std::string line;
    for (int t = 0; t < b.lengths[static_cast<size_t>(i)]; ++t) {
      const int32_t r = slot[static_cast<size_t>(t)];
      if (r < 0) {
        line += text(b.tokens[static_cast<size_t>(i) * static_cast<size_t>(b.T) + t]);
        continue;
      }
      const int32_t want = b.targets[static_cast<size_t>(r)];
      const int32_t got = guess[static_cast<size_t>(r)];
      right += got == want ? 1 : 0;
      line += '[';
      line += text(got);
      if (got != want) {
        line += '|';
        line += text(want);
      }
      line += ']';
    }
    std::printf("  %s\n", line.c_str());
  }
  std::printf("%lld/%lld masked tokens right ([guess] right, [guess|original] wrong)\n",
              static_cast<long long>(right), static_cast<long long>(counted));
}

}  // namespace ph

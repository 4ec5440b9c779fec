#include "trainer/samples.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "io/tokenizer.h"
#include "trainer/sampler.h"

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

}  // namespace ph

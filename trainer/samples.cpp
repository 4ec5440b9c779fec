#include "trainer/samples.h"

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

}  // namespace ph

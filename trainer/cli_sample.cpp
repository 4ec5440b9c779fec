#include "trainer/cli_sample.h"

#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <optional>

#include "io/checkpoint.h"
#include "io/json_string.h"
#include "parallel/deadline.h"
#include "parallel/grid.h"
#include "trainer/checkpointing.h"
#include "trainer/cli_args.h"
#include "trainer/cli_setup.h"
#include "trainer/compute.h"
#include "trainer/model_factory.h"
#include "trainer/sampler.h"
#include "trainer/samples.h"

namespace ph {

const char* const kSampleHelp =
    "usage: polyhead sample --checkpoint PATH [--prompt TEXT | --prompts FILE [--batch N]]\n"
    "                       [--max-tokens N] [--temperature T] [--top-k K] [--seed S]\n"
    "\n"
    "Generates text from a GPT checkpoint, encoding and decoding with its tokenizer.\n"
    "--temperature 0 decodes greedily. Defaults come from the checkpoint's sample section\n"
    "(prompt: a newline). A sample ends after --max-tokens tokens or at data.eot_token.\n"
    "  --prompt TEXT   prints TEXT followed by its continuation\n"
    "  --prompts FILE  continues every line of FILE ('-': standard input; an empty line is an\n"
    "                  error) and prints one JSON object per line, in the order of FILE:\n"
    "                    {\"prompt\": \"LINE\", \"completion\": \"TEXT\"}\n"
    "                  (newlines in TEXT are escaped; bytes that are not UTF-8 become U+FFFD).\n"
    "                  Line k (from 1) draws from the random stream (seed, k - 1): its text\n"
    "                  does not depend on --batch or on the other lines (up to rounding), and\n"
    "                  line 1 gives what --prompt gives\n"
    "  --batch N       prompts sampled at once (default train.micro_batch of the checkpoint)\n";

namespace {

std::string quoted(const std::string& s) {
  std::string q = "'";
  q.append(s).push_back('\'');
  return q;
}

// The command line, checked before the checkpoint is touched.
struct SampleArgs {
  std::string checkpoint;
  std::optional<std::string> prompt;  // --prompt
  std::string source;                 // where --prompts come from, as messages name it
  std::vector<std::string> lines;     // of --prompts (none: a single prompt)
  std::optional<long> max_tokens, top_k, seed, batch;
  std::optional<double> temperature;
};

SampleArgs parse_sample_args(const std::vector<std::string>& args) {
  const Parsed p = parse_args(args, "sample",
                              {"--checkpoint", "--prompt", "--prompts", "--batch", "--max-tokens",
                               "--temperature", "--top-k", "--seed"});
  if (!p.positional.empty())
    throw InputError("sample: unexpected argument '" + printable(p.positional[0]) + "'");
  const std::string* ckpt = option(p, "--checkpoint");
  if (!ckpt) throw InputError("sample: missing --checkpoint PATH (see 'polyhead sample --help')");
  SampleArgs a;
  a.checkpoint = *ckpt;
  const std::string* prompt = option(p, "--prompt");
  const std::string* prompts = option(p, "--prompts");
  if (prompt && prompts)
    throw InputError("sample: give either --prompt TEXT or --prompts FILE, not both");
  if (prompt && prompt->empty()) throw InputError("sample: --prompt must not be empty");
  if (prompt) a.prompt = *prompt;
  const auto integer = [&](const char* name, long lo, long hi, std::optional<long>& out) {
    if (const std::string* v = option(p, name)) out = to_long("sample", name, *v, lo, hi);
  };
  integer("--max-tokens", 1, 1000000, a.max_tokens);
  if (const std::string* v = option(p, "--temperature"))
    a.temperature = to_double("sample", "--temperature", *v, 0.0, 100.0);
  integer("--top-k", 0, 1L << 30, a.top_k);
  integer("--seed", 0, 1L << 62, a.seed);
  integer("--batch", 1, 4096, a.batch);
  if (prompts) {
    const bool from_stdin = *prompts == "-";
    a.source = from_stdin ? std::string("standard input") : quoted(printable(*prompts));
    a.lines = read_input_lines("sample", "--prompts", from_stdin ? nullptr : prompts);
    if (a.lines.empty())
      throw InputError("sample: --prompts " + a.source + " holds no prompt (one per line)");
    for (size_t i = 0; i < a.lines.size(); ++i)
      if (a.lines[i].empty())
        throw InputError("sample: line " + std::to_string(i + 1) + " of --prompts " + a.source +
                         " is empty (one prompt per line)");
  }
  return a;
}

// The prompt's tokens, each checked against the model's vocabulary (`what` names the prompt).
std::vector<int32_t> prompt_tokens(const Tokenizer& tokenizer, const std::string& prompt,
                                   int vocab_size, const std::string& what) {
  std::vector<int32_t> ids = tokenizer.encode(prompt);
  for (int32_t t : ids)
    if (t >= vocab_size)
      throw InputError("sample: " + what + " has token " + std::to_string(t) +
                       ", outside the model's vocabulary of " + std::to_string(vocab_size));
  return ids;
}

}  // namespace

int cmd_sample(const std::vector<std::string>& args) {
  if (args.size() >= 2 && is_help(args[1])) {
    std::printf("%s", kSampleHelp);
    return 0;
  }
  const SampleArgs a = parse_sample_args(args);
  const std::string& ckpt = a.checkpoint;
  const CheckpointMeta meta = read_checkpoint_meta(ckpt, MPI_COMM_WORLD);
  Config cfg =
      parse_config(meta.config_yaml, checkpoint_overrides({}), ckpt + " (embedded config)");
  if (cfg.model.type != ModelType::kGpt)
    throw InputError("sample: " + ckpt + " holds a model of type " + name_of(cfg.model.type) +
                     "; sample needs a gpt (an encdec model translates: see 'polyhead translate "
                     "--help')");
  setup_threads(cfg);
  set_comm_timeout(cfg.runtime.comm_timeout);
  const ProcessGrid grid = make_grid(1);
  if (a.top_k.value_or(0) > cfg.model.vocab_size)
    throw InputError("sample: --top-k " + std::to_string(*a.top_k) + " exceeds the vocabulary of " +
                     std::to_string(cfg.model.vocab_size));
  SampleOptions o;
  o.max_tokens = a.max_tokens ? static_cast<int>(*a.max_tokens) : cfg.sample.max_tokens;
  o.temperature = a.temperature ? static_cast<float>(*a.temperature) : cfg.sample.temperature;
  o.top_k = a.top_k ? static_cast<int>(*a.top_k) : cfg.sample.top_k;
  o.seed = a.seed ? static_cast<uint64_t>(*a.seed) : cfg.train.seed;
  const Tokenizer tokenizer = checkpoint_tokenizer(meta, ckpt);
  o.stop_token = stop_token_of(cfg, tokenizer);
  const int V = cfg.model.vocab_size;
  const bool single = a.lines.empty();
  const std::vector<std::string> texts =
      !single ? a.lines
              : std::vector<std::string>{
                    a.prompt ? *a.prompt : (cfg.sample.prompt.empty() ? "\n" : cfg.sample.prompt)};
  std::vector<std::vector<int32_t>> prompts;
  for (size_t i = 0; i < texts.size(); ++i)
    prompts.push_back(prompt_tokens(
        tokenizer, texts[i], V,
        single ? "the prompt" : "line " + std::to_string(i + 1) + " of --prompts " + a.source));
  const size_t batch =
      std::min(prompts.size(), static_cast<size_t>(a.batch ? *a.batch : cfg.train.micro_batch));
  Compute compute = make_compute(cfg, grid);
  const std::unique_ptr<Model> model =
      make_model(*compute.backend, cfg, grid, compute.tp, static_cast<int>(batch));
  load_training_checkpoint(ckpt, cfg, *model, nullptr, grid);
  for (size_t first = 0; first < prompts.size(); first += batch) {
    const size_t last = std::min(prompts.size(), first + batch);
    const std::vector<std::vector<int32_t>> gen =
        sample_batch(*model, grid.tp_comm.get(),
                     {prompts.begin() + static_cast<std::ptrdiff_t>(first),
                      prompts.begin() + static_cast<std::ptrdiff_t>(last)},
                     o, first);
    for (size_t j = 0; j < gen.size(); ++j) {
      const std::string text = tokenizer.decode(gen[j].data(), gen[j].size());
      if (single) {
        std::printf("%s%s\n", texts[0].c_str(), text.c_str());
      } else {
        std::printf("{\"prompt\": %s, \"completion\": %s}\n", json_string(texts[first + j]).c_str(),
                    json_string(text).c_str());
      }
    }
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace ph

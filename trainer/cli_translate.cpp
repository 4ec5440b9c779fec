#include "trainer/cli_translate.h"

#include <mpi.h>

#include <cstdio>

#include "io/checkpoint.h"
#include "parallel/deadline.h"
#include "parallel/grid.h"
#include "trainer/checkpointing.h"
#include "trainer/cli_args.h"
#include "trainer/cli_setup.h"
#include "trainer/compute.h"
#include "trainer/model_factory.h"
#include "trainer/translator.h"

namespace ph {

const char* const kTranslateHelp =
    "usage: polyhead translate --checkpoint PATH [--input FILE] [--beam N] [--length-penalty A]\n"
    "                          [--max-len-a A] [--max-len-b B] [--n-best K] [--batch N]\n"
    "\n"
    "Translates each line of FILE (default: standard input) with an encoder-decoder checkpoint\n"
    "(model.type encdec) and prints one line per input line, decoded with the checkpoint's\n"
    "tokenizer. Sources are decoded in batches; a source longer than model.src_seq_len - 1\n"
    "tokens is cropped (the count is reported on standard error).\n"
    "  --beam N            hypotheses kept per sentence (default 4; 1 is greedy decoding)\n"
    "  --length-penalty A  finished hypotheses are ranked by logprob / length^A, length counting\n"
    "                      the output tokens and the end of sentence (Marian's --normalize;\n"
    "                      default 0.6)\n"
    "  --max-len-a A, --max-len-b B\n"
    "                      at most A * source length + B output tokens (fairseq's rule; default\n"
    "                      A = 0, B = 200), and never more than model.seq_len - 1\n"
    "  --n-best K          print the K best hypotheses of each line (K <= N) as\n"
    "                      'LINE ||| TEXT ||| SCORE' (LINE from 0), best first\n"
    "  --batch N           sentences decoded at once (default 32)\n";

int cmd_translate(const std::vector<std::string>& args) {
  if (args.size() >= 2 && is_help(args[1])) {
    std::printf("%s", kTranslateHelp);
    return 0;
  }
  const Parsed p = parse_args(args, "translate",
                              {"--checkpoint", "--input", "--beam", "--length-penalty",
                               "--max-len-a", "--max-len-b", "--n-best", "--batch"});
  if (!p.positional.empty())
    throw InputError("translate: unexpected argument '" + printable(p.positional[0]) + "'");
  const std::string* ckpt = option(p, "--checkpoint");
  if (!ckpt)
    throw InputError("translate: missing --checkpoint PATH (see 'polyhead translate --help')");
  BeamOptions o;
  o.length_penalty = 0.6;
  if (const std::string* v = option(p, "--beam"))
    o.beam = static_cast<int>(to_long("translate", "--beam", *v, 1, 1024));
  if (const std::string* v = option(p, "--length-penalty"))
    o.length_penalty = to_double("translate", "--length-penalty", *v, -100.0, 100.0);
  if (const std::string* v = option(p, "--max-len-a"))
    o.max_len_a = to_double("translate", "--max-len-a", *v, 0.0, 1e6);
  if (const std::string* v = option(p, "--max-len-b"))
    o.max_len_b = static_cast<int>(to_long("translate", "--max-len-b", *v, 0, 1L << 30));
  if (const std::string* v = option(p, "--n-best"))
    o.n_best = static_cast<int>(to_long("translate", "--n-best", *v, 1, 1024));
  if (o.n_best > o.beam)
    throw InputError("translate: --n-best " + std::to_string(o.n_best) + " exceeds --beam " +
                     std::to_string(o.beam));
  const std::string* batch_opt = option(p, "--batch");
  const int batch =
      batch_opt ? static_cast<int>(to_long("translate", "--batch", *batch_opt, 1, 4096)) : 32;

  const CheckpointMeta meta = read_checkpoint_meta(*ckpt, MPI_COMM_WORLD);
  const Config cfg =
      parse_config(meta.config_yaml, checkpoint_overrides({}), *ckpt + " (embedded config)");
  if (cfg.model.type != ModelType::kEncDec)
    throw InputError("translate: " + *ckpt + " holds a " + name_of(cfg.model.type) +
                     " model; translate needs an encoder-decoder (model.type encdec)");
  const std::vector<std::string> lines =
      read_input_lines("translate", "--input", option(p, "--input"));
  setup_threads(cfg);
  set_comm_timeout(cfg.runtime.comm_timeout);
  const ProcessGrid grid = make_grid(1);
  const Tokenizer tokenizer = checkpoint_tokenizer(meta, *ckpt);
  const auto id = [&](const char* key, const std::string& text) {
    const std::optional<int32_t> v = tokenizer.id_of(text);
    if (!v)
      throw InputError("translate: " + std::string(key) + " \"" + printable(text) +
                       "\" is not a token of the checkpoint's tokenizer");
    return *v;
  };
  const int32_t pad = id("data.pad_token", cfg.data.pad_token);
  const int32_t bos = id("data.bos_token", cfg.data.bos_token);
  const int32_t eos = id("data.eos_token", cfg.data.eos_token);
  Compute compute = make_compute(cfg, grid);
  const std::unique_ptr<Model> model = make_model(*compute.backend, cfg, grid, compute.tp, batch);
  load_training_checkpoint(*ckpt, cfg, *model, nullptr, grid);
  Translator translator(*model, tokenizer, pad, bos, eos, batch, o.beam);
  int64_t cropped = 0;
  for (size_t first = 0; first < lines.size(); first += static_cast<size_t>(batch)) {
    const size_t last = std::min(lines.size(), first + static_cast<size_t>(batch));
    const std::vector<std::string> chunk(lines.begin() + static_cast<std::ptrdiff_t>(first),
                                         lines.begin() + static_cast<std::ptrdiff_t>(last));
    std::vector<std::vector<double>> scores;
    const std::vector<std::vector<std::string>> out =
        translator.translate(chunk, o, &scores, &cropped);
    for (size_t j = 0; j < out.size(); ++j) {
      if (o.n_best == 1) {
        std::printf("%s\n", out[j][0].c_str());
        continue;
      }
      for (size_t k = 0; k < out[j].size(); ++k)
        std::printf("%zu ||| %s ||| %.6f\n", first + j, out[j][k].c_str(), scores[j][k]);
    }
    std::fflush(stdout);
  }
  if (cropped > 0)
    std::fprintf(stderr,
                 "translate: %lld line(s) longer than model.src_seq_len - 1 = %d tokens "
                 "were cropped\n",
                 static_cast<long long>(cropped), cfg.model.source_len() - 1);
  return 0;
}

}  // namespace ph

#include "trainer/cli_prepare_pairs.h"

#include <algorithm>
#include <cstdio>
#include <thread>

#include "io/config.h"
#include "io/prepare_pairs.h"
#include "io/shard.h"
#include "io/tokenizer.h"
#include "trainer/cli_args.h"

namespace ph {

const char* const kPreparePairsHelp =
    "usage: polyhead prepare --src FILE --tgt FILE --tokenizer T --out DIR [--val-fraction F]\n"
    "                        [--threads N]\n"
    "\n"
    "Parallel text for the encoder-decoder, one sentence per line as Marian and fairseq read it:\n"
    "line i of --src and line i of --tgt are one pair. Each line (without its line break) is\n"
    "encoded with the tokenizer T into DIR/train.pairs and DIR/val.pairs, polyhead's pair format;\n"
    "the last F of the pairs (default 0.1) become validation data, and --val-fraction 0 writes no\n"
    "validation file. The files must have the same number of lines and no blank line. Special\n"
    "tokens are not stored: training adds data.bos_token, data.eos_token and data.pad_token.\n";

bool is_prepare_pairs(const std::vector<std::string>& args) {
  return std::any_of(args.begin(), args.end(),
                     [](const std::string& a) { return a == "--src" || a == "--tgt"; });
}

int cmd_prepare_pairs(const std::vector<std::string>& args) {
  const Parsed p = parse_args(args, "prepare",
                              {"--src", "--tgt", "--tokenizer", "--out", "--val-fraction",
                               "--threads", "--input", "--doc-separator", "--eot"},
                              "--input");
  if (!p.multi.empty()) {
    throw InputError(
        "prepare: --src/--tgt (parallel text) and --input (one stream of text) cannot be combined");
  }
  for (const char* name : {"--doc-separator", "--eot"}) {
    if (option(p, name)) {
      throw InputError(std::string("prepare: ") + name +
                       " applies to --input only, not to parallel text (--src/--tgt)");
    }
  }
  if (!p.positional.empty())
    throw InputError("prepare: unexpected argument '" + printable(p.positional[0]) + "'");
  const std::string* src = option(p, "--src");
  const std::string* tgt = option(p, "--tgt");
  if (!tgt) {
    throw InputError(
        "prepare: --src needs --tgt FILE (parallel text is a source and a target file)");
  }
  if (!src) {
    throw InputError(
        "prepare: --tgt needs --src FILE (parallel text is a source and a target file)");
  }
  const std::string* out = option(p, "--out");
  if (!out) throw InputError("prepare: missing --out DIR");
  const std::string* tok = option(p, "--tokenizer");
  if (!tok) {
    throw InputError(
        "prepare: --src/--tgt need --tokenizer T (a BPE tokenizer that also holds the special "
        "tokens pad, bos and eos)");
  }
  PreparePairsOptions o;
  if (const std::string* v = option(p, "--val-fraction"))
    o.val_fraction = to_double("prepare", "--val-fraction", *v, -1e300, 1e300);
  const std::string* threads = option(p, "--threads");
  o.threads = threads ? static_cast<int>(to_long("prepare", "--threads", *threads, 1, 1024))
                      : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const Tokenizer tokenizer = Tokenizer::load(*tok);
  const PreparedPairs r = prepare_pairs(*src, *tgt, *out, tokenizer, o);
  std::printf(
      "wrote %llu training and %llu validation pairs (%llu source and %llu target tokens, %s ids) "
      "to %s; tokenizer %s\n",
      static_cast<unsigned long long>(r.train_pairs), static_cast<unsigned long long>(r.val_pairs),
      static_cast<unsigned long long>(r.source_tokens),
      static_cast<unsigned long long>(r.target_tokens),
      token_width_for(tokenizer.size()) == TokenWidth::U16 ? "uint16" : "uint32", out->c_str(),
      tokenizer.describe().c_str());
  return 0;
}

}  // namespace ph

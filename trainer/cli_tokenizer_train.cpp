#include <unistd.h>

#include <climits>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "io/bpe.h"
#include "io/bpe_trainer.h"
#include "io/config.h"
#include "trainer/cli_args.h"
#include "trainer/cli_tokenizer.h"

namespace ph {

namespace {

const std::string kCmd = "tokenizer train";

const char* kTrainUsage =
    "usage: polyhead tokenizer train --input FILE... --vocab-size N --out DIR\n"
    "                                [--min-frequency F] [--special TOKEN]... [--threads N]\n"
    "Trains a byte-level BPE tokenizer as GPT-2's was made: the text of each file is cut into\n"
    "pieces by GPT-2's pattern, and from the 256 bytes on, the most frequent adjacent pair of\n"
    "tokens is merged into a new token until the vocabulary has N tokens (ties: the pair with the\n"
    "smallest bytes merges first; the result does not depend on --threads).\n"
    "  --input FILE...      text files (each pre-tokenized whole)\n"
    "  --vocab-size N       tokens in all: the 256 bytes, the merges and the special tokens\n"
    "  --out DIR            writes DIR/vocab.json and DIR/merges.txt (GPT-2 / HF format)\n"
    "  --min-frequency F    a pair merges only if it occurs at least F times (default 2);\n"
    "                       training stops early, with a smaller vocabulary, when none does\n"
    "  --special TOKEN      a special token, added after the merges in the order given\n"
    "                       (repeatable; e.g. --special '<|endoftext|>')\n"
    "  --threads N          threads (default: every core)\n"
    "Progress goes to standard error, then one summary line.\n";

// Prints merge progress on stderr: on a terminal one line rewritten about once a second,
// otherwise a plain line about every ten seconds.
class ProgressLine {
 public:
  ProgressLine() : tty_(::isatty(STDERR_FILENO) == 1) {}

  void update(int done, int target, double seconds) {
    if (!tty_ && seconds - last_seconds_ < 10.0) return;
    const double interval = seconds - last_seconds_;
    const double rate = interval > 0 ? (done - last_done_) / interval : 0.0;
    last_seconds_ = seconds;
    last_done_ = done;
    std::fprintf(stderr, "%stokenizer train: %d/%d merges, %.0f merges/s, %.1f s%s",
                 tty_ ? "\r" : "", done, target, rate, seconds, tty_ ? "" : "\n");
    std::fflush(stderr);
    shown_ = true;
  }

  void finish() {
    if (tty_ && shown_) std::fputc('\n', stderr);
  }

 private:
  bool tty_;
  bool shown_ = false;
  double last_seconds_ = 0;
  int last_done_ = 0;
};

}  // namespace

int cmd_tokenizer_train(const std::vector<std::string>& args) {
  for (size_t i = 1; i < args.size(); ++i) {
    if (is_help(args[i])) {
      std::fputs(kTrainUsage, stdout);
      return 0;
    }
  }
  const Parsed p = parse_args(
      args, kCmd, {"--input", "--vocab-size", "--out", "--min-frequency", "--special", "--threads"},
      "--input");
  if (!p.positional.empty()) {
    throw InputError(kCmd + ": unexpected argument '" + printable(p.positional[0]) +
                     "' (see 'polyhead " + kCmd + " --help')");
  }
  const std::string* vocab = option(p, "--vocab-size");
  if (!vocab) throw InputError(kCmd + ": missing --vocab-size N");
  const std::string* out = option(p, "--out");
  if (!out) throw InputError(kCmd + ": missing --out DIR");
  std::error_code ec;
  if (std::filesystem::exists(*out, ec) && !std::filesystem::is_directory(*out, ec)) {
    throw InputError(kCmd + ": --out '" + printable(*out) + "' exists and is not a directory");
  }

  BpeTrainOptions options;
  options.vocab_size = static_cast<int>(to_long(kCmd, "--vocab-size", *vocab, 1, INT_MAX));
  if (const std::string* f = option(p, "--min-frequency")) {
    options.min_frequency =
        static_cast<uint64_t>(to_long(kCmd, "--min-frequency", *f, 0, LONG_MAX));
  }
  options.specials = ph::options(p, "--special");
  const unsigned cores = std::thread::hardware_concurrency();
  options.threads = cores > 0 ? static_cast<int>(cores) : 1;
  if (const std::string* t = option(p, "--threads")) {
    options.threads = static_cast<int>(to_long(kCmd, "--threads", *t, 1, 1024));
  }
  ProgressLine progress;
  options.progress = [&progress](int done, int target, double seconds) {
    progress.update(done, target, seconds);
  };

  BpeTrainResult result;
  const BpeTokenizer tokenizer = train_bpe(p.multi, options, &result);
  progress.finish();
  tokenizer.save(*out);
  std::string early;
  if (tokenizer.size() < options.vocab_size) {
    early = " (stopped early: no pair occurs " + std::to_string(options.min_frequency) +
            " times; --vocab-size was " + std::to_string(options.vocab_size) + ")";
  }
  std::fprintf(stderr,
               "tokenizer train: %llu bytes, %llu pieces (%llu distinct), %d merges, "
               "vocabulary %d tokens%s, %.2f s; wrote %s/vocab.json and merges.txt\n",
               static_cast<unsigned long long>(result.bytes_read),
               static_cast<unsigned long long>(result.pieces),
               static_cast<unsigned long long>(result.unique_pieces), result.merges,
               tokenizer.size(), early.c_str(), result.seconds, printable(*out).c_str());
  return 0;
}

}  // namespace ph

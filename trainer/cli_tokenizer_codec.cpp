#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "io/bpe.h"
#include "io/config.h"
#include "io/shard.h"
#include "parallel/errors.h"
#include "trainer/cli_args.h"
#include "trainer/cli_tokenizer.h"

namespace ph {

namespace {

const char* kEncodeUsage =
    "usage: polyhead tokenizer encode --tokenizer T --input FILE --out SHARD.bin [--threads N]\n"
    "Encodes the bytes of FILE as ordinary text (special tokens are never produced) with the\n"
    "byte-level BPE tokenizer T and writes the ids as an llm.c token shard (uint16 ids, or uint32\n"
    "for vocabularies past 65,536 tokens). The ids equal tiktoken's for the same tokenizer and do\n"
    "not depend on --threads.\n"
    "  --tokenizer T   a directory with vocab.json and merges.txt (GPT-2 / HF format) or a\n"
    "                  tiktoken rank file (GPT-2's gpt2.tiktoken)\n"
    "  --input FILE    the text (any bytes)\n"
    "  --out SHARD     the shard to write (replaced atomically)\n"
    "  --threads N     threads (default: every core)\n"
    "Prints one summary line on standard error: bytes, tokens and the encoding speed.\n";

const char* kDecodeUsage =
    "usage: polyhead tokenizer decode --tokenizer T --input SHARD.bin\n"
    "Writes the text of the token shard SHARD.bin, decoded with the tokenizer T (see 'polyhead\n"
    "tokenizer encode --help'), to standard output. Decoding what encode made gives the input\n"
    "back byte for byte.\n";

bool wants_help(const std::vector<std::string>& args) {
  return std::any_of(args.begin() + 1, args.end(), [](const std::string& a) { return is_help(a); });
}

Parsed parse(const std::vector<std::string>& args, const std::string& cmd,
             const std::vector<std::string>& known) {
  Parsed p = parse_args(args, cmd, known);
  if (!p.positional.empty()) {
    throw InputError(cmd + ": unexpected argument '" + printable(p.positional[0]) +
                     "' (see 'polyhead " + cmd + " --help')");
  }
  return p;
}

const std::string& required(const Parsed& p, const std::string& cmd, const std::string& name,
                            const std::string& what) {
  const std::string* v = option(p, name);
  if (v == nullptr) {
    throw InputError(cmd + ": " + name + " " + what + " is required (see 'polyhead " + cmd +
                     " --help')");
  }
  return *v;
}

std::string read_input(const std::string& cmd, const std::string& path) {
  const std::string where = cmd + ": input '" + printable(path) + "'";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw InputError(where + ": cannot open: " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) throw InputError(where + ": not a regular file");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw InputError(where + ": cannot open: " + std::strerror(errno));
  std::string text(static_cast<size_t>(st.st_size), '\0');
  const size_t got = std::fread(text.data(), 1, text.size(), f);
  const int err = errno;
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) throw InputError(where + ": cannot read: " + std::strerror(err));
  text.resize(got);
  return text;
}

}  // namespace

int cmd_tokenizer_encode(const std::vector<std::string>& args) {
  const std::string cmd = "tokenizer encode";
  if (wants_help(args)) {
    std::fputs(kEncodeUsage, stdout);
    return 0;
  }
  const Parsed p = parse(args, cmd, {"--tokenizer", "--input", "--out", "--threads"});
  const std::string& tokenizer_path = required(p, cmd, "--tokenizer", "T");
  const std::string& input = required(p, cmd, "--input", "FILE");
  const std::string& out = required(p, cmd, "--out", "SHARD.bin");
  const unsigned cores = std::thread::hardware_concurrency();
  int threads = cores > 0 ? static_cast<int>(cores) : 1;
  if (const std::string* t = option(p, "--threads")) {
    threads = static_cast<int>(to_long(cmd, "--threads", *t, 1, 1024));
  }

  const BpeTokenizer tokenizer = BpeTokenizer::load(tokenizer_path);
  const std::string text = read_input(cmd, input);
  const auto start = std::chrono::steady_clock::now();
  const std::vector<int32_t> ids = tokenizer.encode(text, threads);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  write_token_shard(out, ids.data(), ids.size(), tokenizer.size());
  std::fprintf(
      stderr,
      "tokenizer encode: %zu bytes -> %zu tokens (%.3f bytes/token) in %.3f s, %.1f MB/s "
      "on %d thread%s; wrote %s\n",
      text.size(), ids.size(),
      ids.empty() ? 0.0 : static_cast<double>(text.size()) / static_cast<double>(ids.size()),
      seconds, seconds > 0 ? static_cast<double>(text.size()) / seconds / 1e6 : 0.0, threads,
      threads == 1 ? "" : "s", out.c_str());
  return 0;
}

int cmd_tokenizer_decode(const std::vector<std::string>& args) {
  const std::string cmd = "tokenizer decode";
  if (wants_help(args)) {
    std::fputs(kDecodeUsage, stdout);
    return 0;
  }
  const Parsed p = parse(args, cmd, {"--tokenizer", "--input"});
  const std::string& tokenizer_path = required(p, cmd, "--tokenizer", "T");
  const std::string& input = required(p, cmd, "--input", "SHARD.bin");
  const BpeTokenizer tokenizer = BpeTokenizer::load(tokenizer_path);
  const Shard shard = Shard::open(input, tokenizer.size());
  constexpr size_t kBlock = size_t{1} << 20;
  std::vector<int32_t> ids(std::min(kBlock, shard.size()));
  for (size_t begin = 0; begin < shard.size(); begin += kBlock) {
    const size_t n = std::min(kBlock, shard.size() - begin);
    shard.read(begin, n, ids.data());
    const std::string text = tokenizer.decode(ids.data(), n);
    if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size()) {
      throw IoError(cmd + ": cannot write to standard output: " + std::strerror(errno));
    }
  }
  if (std::fflush(stdout) != 0) {
    throw IoError(cmd + ": cannot write to standard output: " + std::strerror(errno));
  }
  return 0;
}

}  // namespace ph

#include "trainer/cli_tokenizer.h"

#include <cstdio>

#include "io/config.h"
#include "trainer/cli_args.h"

namespace ph {

namespace {

const char* kTokenizerUsage =
    "usage: polyhead tokenizer <command> [options]\n"
    "  train  --input FILE... --vocab-size N --out DIR [--min-frequency F] [--special TOKEN]...\n"
    "         [--threads N]          byte-level BPE, written as vocab.json + merges.txt\n"
    "  encode --tokenizer T --input FILE --out SHARD.bin [--threads N]\n"
    "                                text to an llm.c token shard\n"
    "  decode --tokenizer T --input SHARD.bin\n"
    "                                a token shard back to text, on standard output\n"
    "T is a directory with vocab.json and merges.txt (GPT-2 / HF format) or a tiktoken rank\n"
    "file (GPT-2's gpt2.tiktoken). Each command has --help.\n";

}  // namespace

int cmd_tokenizer(const std::vector<std::string>& args) {
  if (args.size() < 2 || is_help(args[1])) {
    std::fputs(kTokenizerUsage, stdout);
    return args.size() < 2 ? 2 : 0;
  }
  const std::vector<std::string> sub(args.begin() + 1, args.end());
  if (sub[0] == "train") return cmd_tokenizer_train(sub);
  if (sub[0] == "encode") return cmd_tokenizer_encode(sub);
  if (sub[0] == "decode") return cmd_tokenizer_decode(sub);
  throw InputError("tokenizer: unknown command '" + printable(sub[0]) +
                   "' (expected train, encode or decode; see 'polyhead tokenizer --help')");
}

}  // namespace ph

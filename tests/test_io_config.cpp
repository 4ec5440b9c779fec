// The YAML config: defaults, nesting, overrides, every class of bad input (each with its
// message), the YAML round trip, the help text, and the shipped configs.
#include <gtest/gtest.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "io/config.h"
#include "io/config_schema.h"
#include "tests/test_paths.h"

namespace ph {
namespace {

namespace fs = std::filesystem;

// The message of the InputError that `fn` throws ("" if it throws none).
std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

std::string parse_error(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  return error_of([&] { parse_config(yaml, overrides, "test.yaml"); });
}

std::string override_error(const std::string& arg) {
  return parse_error("", {arg});
}

#define EXPECT_CONTAINS(haystack, needle)                                                         \
  do {                                                                                            \
    const std::string h_ = (haystack);                                                            \
    EXPECT_NE(h_.find(needle), std::string::npos) << "message: '" << h_ << "'\n"                  \
                                                  << "expected to contain: '" << (needle) << "'"; \
  } while (0)

// Leaf key paths of a YAML document ("model.dropout.embed", ...), in document order.
void leaf_paths(const YAML::Node& node, const std::string& prefix, std::vector<std::string>& out) {
  if (!node.IsMap()) {
    out.push_back(prefix);
    return;
  }
  for (const auto& kv : node)
    leaf_paths(kv.second, prefix.empty() ? kv.first.Scalar() : prefix + "." + kv.first.Scalar(),
               out);
}

class ConfigFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "polyhead_test_io_config_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  fs::path dir_;
};

TEST(Config, EmptyDocumentGivesDefaults) {
  EXPECT_EQ(parse_config("", {}, "test.yaml"), Config{});
  EXPECT_EQ(parse_config("# only a comment\n", {}, "test.yaml"), Config{});
  EXPECT_EQ(parse_config("model:\ntrain: {}\n", {}, "test.yaml"), Config{});
}

TEST(Config, ParsesNestedSections) {
  const Config c = parse_config(R"(
model:
  n_layers: 6
  d_model: 384
  n_heads: 6
  pos_encoding: sinusoidal
  tie_embeddings: false
  dropout:
    embed: 0.1
    attn: 0.2
    resid: 0.3
parallel: {tp: 2}
train:
  seed: 18446744073709551615
  nan_policy: stop
optim:
  lr: 6e-4
  schedule: inverse_sqrt
data:
  train: shards/train_*.bin
  val: [a.bin, b.bin]
sample:
  prompt: "1+2="
run:
  dir: runs/x
)",
                                {}, "test.yaml");
  EXPECT_EQ(c.model.n_layers, 6);
  EXPECT_EQ(c.model.d_model, 384);
  EXPECT_EQ(c.model.n_heads, 6);
  EXPECT_EQ(c.model.pos_encoding, PosEncoding::kSinusoidal);
  EXPECT_FALSE(c.model.tie_embeddings);
  EXPECT_EQ(c.model.dropout_embed, 0.1f);
  EXPECT_EQ(c.model.dropout_attn, 0.2f);
  EXPECT_EQ(c.model.dropout_resid, 0.3f);
  EXPECT_EQ(c.parallel.tp, 2);
  EXPECT_EQ(c.train.seed, UINT64_MAX);
  EXPECT_EQ(c.train.nan_policy, NanPolicy::kStop);
  EXPECT_EQ(c.optim.lr, 6e-4f);
  EXPECT_EQ(c.optim.schedule, Schedule::kInverseSqrt);
  EXPECT_EQ(c.data.train, std::vector<std::string>{"shards/train_*.bin"});
  EXPECT_EQ(c.data.val, (std::vector<std::string>{"a.bin", "b.bin"}));
  EXPECT_EQ(c.sample.prompt, "1+2=");
  EXPECT_EQ(c.run.dir, "runs/x");
  // Untouched keys keep their defaults.
  EXPECT_EQ(c.model.vocab_size, Config{}.model.vocab_size);
  EXPECT_EQ(c.optim.beta2, Config{}.optim.beta2);
}

TEST(Config, IntegersWrittenAsIntegralNumbers) {
  const Config c = parse_config("train: {max_steps: 1e5, micro_batch: +8}\n", {}, "t");
  EXPECT_EQ(c.train.max_steps, 100000);
  EXPECT_EQ(c.train.micro_batch, 8);
}

TEST(Config, OverridesApplyAfterTheFile) {
  const Config c = parse_config("train: {max_steps: 50}\noptim: {lr: 0.1, warmup_steps: 10}\n",
                                {"optim.lr=1e-3", "data.train=[a.bin,b.bin]", "train.max_steps=70",
                                 "model.dropout.attn=0.25", "model={n_layers: 3, d_model: 64}",
                                 "sample.prompt=", "data.shuffle=false", "run.dir=runs/o"},
                                "test.yaml");
  EXPECT_EQ(c.optim.lr, 1e-3f);
  EXPECT_EQ(c.optim.warmup_steps, 10);
  EXPECT_EQ(c.train.max_steps, 70);
  EXPECT_EQ(c.data.train, (std::vector<std::string>{"a.bin", "b.bin"}));
  EXPECT_EQ(c.model.dropout_attn, 0.25f);
  EXPECT_EQ(c.model.n_layers, 3);
  EXPECT_EQ(c.model.d_model, 64);
  EXPECT_EQ(c.sample.prompt, "");
  EXPECT_FALSE(c.data.shuffle);
  EXPECT_EQ(c.run.dir, "runs/o");
  // A later override wins over an earlier one.
  EXPECT_EQ(parse_config("", {"model.n_layers=3", "model.n_layers=5"}, "t").model.n_layers, 5);
  // A single string for a list key.
  EXPECT_EQ(parse_config("", {"data.train=x.bin"}, "t").data.train,
            std::vector<std::string>{"x.bin"});
}

// --- unknown names -----------------------------------------------------------------------

TEST(ConfigErrors, UnknownKeyWithDidYouMean) {
  EXPECT_EQ(parse_error("model:\n  n_layer: 4\n"),
            "test.yaml: model.n_layer: unknown key (did you mean 'model.n_layers'?)");
  EXPECT_CONTAINS(parse_error("model: {dropout: {atn: 0.1}}\n"),
                  "test.yaml: model.dropout.atn: unknown key (did you mean 'model.dropout.attn'?)");
  EXPECT_CONTAINS(parse_error("model: {dropout_embed: 0.1}\n"),
                  "model.dropout_embed: unknown key (did you mean 'model.dropout.embed'?)");
  // The same name in another section.
  EXPECT_CONTAINS(parse_error("train: {lr: 0.1}\n"),
                  "test.yaml: train.lr: unknown key (did you mean 'optim.lr'?)");
  EXPECT_CONTAINS(parse_error("model: {interval: 3}\n"),
                  "did you mean 'checkpoint.interval' or 'log.interval'?");
  // Nothing close: the keys of the section are listed.
  EXPECT_CONTAINS(parse_error("model: {wibble: 3}\n"),
                  "test.yaml: model.wibble: unknown key (keys in model: type, vocab_size,");
  // A key below a plain option.
  EXPECT_CONTAINS(override_error("model.n_layers.x=3"), "model.n_layers.x: unknown key");
}

TEST(ConfigErrors, UnknownSection) {
  EXPECT_EQ(parse_error("modle:\n  n_layers: 4\n"),
            "test.yaml: modle: unknown section (did you mean 'model'?)");
  EXPECT_CONTAINS(parse_error("trian: {}\n"), "trian: unknown section (did you mean 'train'?)");
  EXPECT_CONTAINS(parse_error("lr: 0.1\n"), "lr: unknown section (did you mean 'optim.lr'?)");
  EXPECT_CONTAINS(parse_error("zzzzzz: 1\n"),
                  "test.yaml: zzzzzz: unknown section (sections: model, parallel, train, optim, "
                  "data, checkpoint, log, sample, runtime, run)");
}

TEST(ConfigErrors, DuplicateKey) {
  EXPECT_EQ(parse_error("model:\n  n_layers: 4\n  n_layers: 5\n"),
            "test.yaml: model.n_layers: duplicate key");
}

// --- wrong types -------------------------------------------------------------------------

TEST(ConfigErrors, WrongTypes) {
  EXPECT_EQ(parse_error("model: {n_layers: many}\n"),
            "test.yaml: model.n_layers: expected an integer, got 'many'");
  EXPECT_EQ(parse_error("model: {n_layers: 2.5}\n"),
            "test.yaml: model.n_layers: expected an integer, got '2.5'");
  EXPECT_EQ(parse_error("model: {n_layers: [1, 2]}\n"),
            "test.yaml: model.n_layers: expected an integer, got a list");
  EXPECT_EQ(parse_error("model: {n_layers: {a: 1}}\n"),
            "test.yaml: model.n_layers: expected an integer, got a map");
  EXPECT_EQ(parse_error("model: {n_layers:}\n"),
            "test.yaml: model.n_layers: expected an integer, got nothing");
  EXPECT_EQ(parse_error("optim: {lr: [0.1]}\n"),
            "test.yaml: optim.lr: expected a number, got a list");
  EXPECT_EQ(parse_error("optim: {lr: .inf}\n"),
            "test.yaml: optim.lr: expected a number, got '.inf'");
  EXPECT_EQ(parse_error("optim: {lr: nan}\n"),
            "test.yaml: optim.lr: expected a finite number, got 'nan'");
  EXPECT_EQ(parse_error("optim: {lr: 1e39}\n"),
            "test.yaml: optim.lr: expected a number in float range, got '1e39'");
  EXPECT_EQ(parse_error("model: {bias: yes}\n"),
            "test.yaml: model.bias: expected true or false, got 'yes'");
  EXPECT_EQ(parse_error("model: {bias: 1}\n"),
            "test.yaml: model.bias: expected true or false, got '1'");
  EXPECT_EQ(parse_error("model: {type: [gpt]}\n"),
            "test.yaml: model.type: expected a string, got a list");
  EXPECT_EQ(parse_error("run: {dir: {a: b}}\n"),
            "test.yaml: run.dir: expected a string, got a map");
  EXPECT_EQ(parse_error("data: {train: {a: b}}\n"),
            "test.yaml: data.train: expected a string or a list of strings, got a map");
  EXPECT_EQ(parse_error("data: {train: [a.bin, [b.bin]]}\n"),
            "test.yaml: data.train: expected a list of strings, got a list as item 2");
  EXPECT_EQ(parse_error("model: 5\n"),
            "test.yaml: model: expected a map of keys (type, vocab_size, n_layers, "
            "encoder_layers, decoder_layers, d_model, n_heads, d_ff, seq_len, src_seq_len, "
            "share_embeddings, pos_encoding, norm, activation, layer_norm_eps, type_vocab_size, "
            "sentence_head, embed_scale, tie_embeddings, "
            "bias, dropout, init_std), got '5'");
  EXPECT_CONTAINS(parse_error("model: {dropout: 0.1}\n"),
                  "test.yaml: model.dropout: expected a map of keys (embed, attn, resid), got "
                  "'0.1'");
}

TEST(ConfigErrors, IntegersMustFitTheirType) {
  EXPECT_EQ(parse_error("train: {max_steps: 1e12}\n"),
            "test.yaml: train.max_steps: expected an integer in [-2147483648, 2147483647], got "
            "'1e12'");
  EXPECT_EQ(parse_error("train: {max_steps: 3000000000}\n"),
            "test.yaml: train.max_steps: expected an integer in [-2147483648, 2147483647], got "
            "'3000000000'");
  EXPECT_EQ(parse_error("train: {seed: -1}\n"),
            "test.yaml: train.seed: expected an integer in [0, 18446744073709551615], got '-1'");
  EXPECT_EQ(parse_error("train: {seed: 18446744073709551616}\n"),
            "test.yaml: train.seed: expected an integer in [0, 18446744073709551615], got "
            "'18446744073709551616'");
  EXPECT_EQ(parse_error("train: {seed: 1e20}\n"),
            "test.yaml: train.seed: expected an integer in [0, 18446744073709551615], got '1e20'");
}

TEST(ConfigErrors, MessagesStayOnOneLine) {
  EXPECT_EQ(parse_error("model:\n  n_layers: |\n    two\n    layers\n"),
            "test.yaml: model.n_layers: expected an integer, got 'two\\nlayers\\n'");
  EXPECT_EQ(override_error("model.norm=\"a\\tb\\u0001\""),
            "command line: model.norm: must be one of {pre, post}, got 'a\\tb\\x01'");
}

// A value echoed in a message is cut to 200 bytes, control bytes and bytes that are not UTF-8
// escaped: a 100 KB value or a binary file gives one short line.
TEST(ConfigErrors, EchoedValuesAreCutAndEscaped) {
  const std::string big(100000, 'x');
  const std::string m = override_error("model.norm=" + big);
  EXPECT_LT(m.size(), 400u) << m;
  EXPECT_NE(m.find("... (100000 bytes in all)"), std::string::npos) << m;
  std::string junk;
  for (int i = 0; i < 7700; ++i) junk += static_cast<char>(0x80 + i % 64);
  const std::string b = override_error("model.norm=\"" + junk + "\"");
  EXPECT_LT(b.size(), 1200u);
  EXPECT_NE(b.find("\\x80"), std::string::npos) << b;
  EXPECT_EQ(b.find('\x80'), std::string::npos);               // no raw byte
  EXPECT_EQ(printable("h\xc3\xa9llo\n"), "h\xc3\xa9llo\\n");  // UTF-8 stays, \n escaped
}

TEST(ConfigErrors, TopLevelMustBeAMap) {
  EXPECT_CONTAINS(parse_error("- a\n- b\n"),
                  "test.yaml: expected a map of sections (model, parallel, train");
  EXPECT_CONTAINS(parse_error("- a\n- b\n"), "at the top, got a list");
  EXPECT_CONTAINS(parse_error("just text\n"), "at the top, got 'just text'");
}

// --- ranges and choices ------------------------------------------------------------------

TEST(ConfigErrors, OutOfRange) {
  EXPECT_EQ(parse_error("model: {n_layers: 0}\n"),
            "test.yaml: model.n_layers: must be in [1, 4096], got 0");
  EXPECT_EQ(parse_error("model: {d_model: -8}\n"),
            "test.yaml: model.d_model: must be >= 1, got -8");
  EXPECT_EQ(parse_error("model: {d_ff: -1}\n"), "test.yaml: model.d_ff: must be >= 0, got -1");
  EXPECT_EQ(parse_error("train: {micro_batch: 0}\n"),
            "test.yaml: train.micro_batch: must be >= 1, got 0");
  EXPECT_EQ(parse_error("model: {dropout: {attn: 1.0}}\n"),
            "test.yaml: model.dropout.attn: must be in [0, 1), got 1.0");
  EXPECT_EQ(parse_error("model: {dropout: {embed: -0.1}}\n"),
            "test.yaml: model.dropout.embed: must be in [0, 1), got -0.1");
  EXPECT_EQ(parse_error("optim: {beta1: 1}\n"),
            "test.yaml: optim.beta1: must be in [0, 1), got 1.0");
  EXPECT_EQ(parse_error("optim: {beta2: 1.5}\n"),
            "test.yaml: optim.beta2: must be in [0, 1), got 1.5");
  EXPECT_EQ(parse_error("optim: {lr: 0, min_lr: 0}\n"),
            "test.yaml: optim.lr: must be > 0, got 0.0");
  EXPECT_EQ(parse_error("optim: {lr: -1e-3}\n"), "test.yaml: optim.lr: must be > 0, got -0.001");
  EXPECT_EQ(parse_error("optim: {eps: 0}\n"), "test.yaml: optim.eps: must be > 0, got 0.0");
  EXPECT_EQ(parse_error("train: {grad_clip: -1}\n"),
            "test.yaml: train.grad_clip: must be >= 0, got -1.0");
  EXPECT_EQ(parse_error("data: {task_digits: 19}\n"),
            "test.yaml: data.task_digits: must be in [1, 18], got 19");
  EXPECT_EQ(parse_error("parallel: {tp: 0}\n"), "test.yaml: parallel.tp: must be >= 1, got 0");
  EXPECT_EQ(parse_error("runtime: {comm_timeout: 0}\n"),
            "test.yaml: runtime.comm_timeout: must be > 0, got 0.0");
  EXPECT_EQ(parse_error("run: {dir: ''}\n"), "test.yaml: run.dir: must not be empty");
  EXPECT_EQ(parse_error("data: {train: [a.bin, '']}\n"),
            "test.yaml: data.train: item 2 is an empty path");
}

TEST(ConfigErrors, Choices) {
  EXPECT_EQ(parse_error("model: {pos_encoding: rotary}\n"),
            "test.yaml: model.pos_encoding: must be one of {learned, sinusoidal}, got 'rotary'");
  EXPECT_EQ(parse_error("model: {norm: mid}\n"),
            "test.yaml: model.norm: must be one of {pre, post}, got 'mid'");
  EXPECT_EQ(parse_error("model: {activation: swish}\n"),
            "test.yaml: model.activation: must be one of {gelu, relu, gelu_erf}, got 'swish'");
  EXPECT_EQ(parse_error("optim: {schedule: step}\n"),
            "test.yaml: optim.schedule: must be one of {cosine, linear, constant, inverse_sqrt, "
            "noam}, got 'step'");
  EXPECT_EQ(parse_error("train: {nan_policy: ignore}\n"),
            "test.yaml: train.nan_policy: must be one of {skip, stop}, got 'ignore'");
  EXPECT_EQ(parse_error("runtime: {device: tpu}\n"),
            "test.yaml: runtime.device: must be one of {cpu, cuda, auto}, got 'tpu'");
  EXPECT_EQ(parse_error("runtime: {precision: fp16}\n"),
            "test.yaml: runtime.precision: must be one of {fp32, bf16}, got 'fp16'");
  EXPECT_EQ(parse_error("model: {type: roberta}\n"),
            "test.yaml: model.type: must be one of {gpt, encdec, bert}, got 'roberta'");
  for (const char* device : {"cpu", "cuda", "auto"})
    EXPECT_EQ(
        name_of(parse_config("", {std::string("runtime.device=") + device}, "t").runtime.device),
        device);
  // A choice is read into its enum once; an unknown one stays an error until something valid
  // replaces it (a command-line override of a bad value in the file is fine).
  EXPECT_EQ(parse_config("model: {norm: mid}\n", {"model.norm=post"}, "t").model.norm, Norm::kPost);
  EXPECT_EQ(override_error("model.norm=mid"),
            "command line: model.norm: must be one of {pre, post}, got 'mid'");
  EXPECT_EQ(parse_error("optim: {schedule: noam, warmup_steps: 0}\n"),
            "test.yaml: optim.warmup_steps: the noam schedule needs warmup_steps >= 1 (its peak), "
            "got 0");
}

TEST(Config, TokenizerKeys) {
  const Config c = parse_config(
      "data:\n  train: [t.bin]\n  tokenizer: tok/\n  eot_token: \"<|endoftext|>\"\n  mask_token: "
      "\"[MASK]\"\n",
      {"data.sep_token=\"[SEP]\""}, "t");  // quoted: [SEP] alone is a YAML list
  EXPECT_EQ(c.data.tokenizer, "tok/");
  const std::vector<std::pair<std::string, std::string>> want = {
      {"data.eot_token", "<|endoftext|>"},
      {"data.sep_token", "[SEP]"},
      {"data.mask_token", "[MASK]"}};
  EXPECT_EQ(special_tokens(c.data), want);
  EXPECT_TRUE(special_tokens(Config{}.data).empty());
  EXPECT_EQ(parse_config(config_to_yaml(c), {}, "t"), c);
}

TEST(Config, NewKeys) {
  const Config c =
      parse_config("train: {label_smoothing: 0.1}\noptim: {schedule: noam}\n", {}, "t");
  EXPECT_EQ(c.train.label_smoothing, 0.1f);
  EXPECT_EQ(c.optim.schedule, Schedule::kNoam);
  EXPECT_EQ(parse_error("train: {label_smoothing: 1.0}\n"),
            "test.yaml: train.label_smoothing: must be in [0, 1), got 1.0");
  EXPECT_EQ(parse_error("train: {max_steps: 2000000000}\n"),
            "test.yaml: train.max_steps: must be in [1, 1073741824], got 2000000000");
  EXPECT_EQ(parse_error("model: {n_layers: 5000}\n"),
            "test.yaml: model.n_layers: must be in [1, 4096], got 5000");
}

// The keys whose values differ between two configs; the architecture keys alone for the
// checkpoint check (d_ff compared as the width it gives).
TEST(Config, Differences) {
  Config a, b;
  EXPECT_TRUE(config_differences(a, b, false).empty());
  b.model.n_layers = 4;
  b.model.norm = Norm::kPost;
  b.optim.lr = 2e-3f;
  b.model.dropout_attn = 0.1f;
  const auto all = config_differences(a, b, false);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0].key, "model.n_layers");
  EXPECT_EQ(all[0].a, "2");
  EXPECT_EQ(all[0].b, "4");
  EXPECT_EQ(all[1].key, "model.norm");
  EXPECT_EQ(all[1].b, "post");
  EXPECT_EQ(all[2].key, "model.dropout.attn");
  EXPECT_EQ(all[3].key, "optim.lr");
  const auto arch = config_differences(a, b, true);
  ASSERT_EQ(arch.size(), 2u);
  EXPECT_EQ(arch[0].key, "model.n_layers");
  EXPECT_EQ(arch[1].key, "model.norm");
  b = a;
  b.model.d_ff = 4 * b.model.d_model;  // the default width, written out
  EXPECT_TRUE(config_differences(a, b, true).empty());
  b.model.d_ff = 100;
  EXPECT_EQ(config_differences(a, b, true).at(0).b, "100");
}

// --- consistency -------------------------------------------------------------------------

TEST(ConfigErrors, Inconsistent) {
  EXPECT_EQ(parse_error("model: {d_model: 100, n_heads: 3}\n"),
            "test.yaml: model.n_heads: d_model (100) must be divisible by n_heads (3)");
  EXPECT_EQ(parse_error("model: {d_model: 130, n_heads: 2, pos_encoding: sinusoidal}\n", {}), "");
  EXPECT_EQ(parse_error("model: {d_model: 129, n_heads: 3, pos_encoding: sinusoidal}\n"),
            "test.yaml: model.pos_encoding: sinusoidal positions need an even d_model, got 129");
  EXPECT_EQ(
      parse_error("train: {max_steps: 50}\noptim: {warmup_steps: 100}\n"),
      "test.yaml: optim.warmup_steps: warmup_steps (100) must not exceed train.max_steps (50)");
  EXPECT_EQ(parse_error("optim: {lr: 1e-3, min_lr: 1e-2}\n"),
            "test.yaml: optim.min_lr: min_lr (0.01) must not exceed lr (0.001)");
  EXPECT_EQ(parse_error("train: {micro_batch: 32, global_batch: 100}\n"),
            "test.yaml: train.global_batch: global_batch (100) must be a multiple of micro_batch "
            "(32)");
  EXPECT_EQ(parse_error("train: {micro_batch: 32, global_batch: 128}\n"), "");
  // Heads and FFN width against tp are the layout's to check (validate_layout, with the world
  // size): the config alone does not reject them.
  EXPECT_EQ(parse_error("parallel: {tp: 3}\n"), "");
  EXPECT_EQ(parse_error("model: {seq_len: 15}\ndata: {task_digits: 4}\n"),
            "test.yaml: model.seq_len: seq_len (15) must hold one addition problem of 4 digits (16 "
            "tokens)");
  EXPECT_EQ(parse_error("model: {seq_len: 16}\ndata: {task_digits: 4}\n"), "");
  EXPECT_EQ(parse_error("model: {seq_len: 8}\ndata: {train: t.bin}\n"), "");
  EXPECT_EQ(parse_error("sample: {top_k: 300}\n"),
            "test.yaml: sample.top_k: top_k (300) must not exceed model.vocab_size (256)");
  EXPECT_EQ(parse_error("data: {tokenizer: tok}\n"),
            "test.yaml: data.tokenizer: a tokenizer needs token shards in data.train (the "
            "synthetic task is byte-level); make them with 'polyhead prepare --tokenizer'");
  EXPECT_EQ(parse_error("data: {train: t.bin, pad_token: '<pad>', mask_token: '<mask>'}\n"),
            "test.yaml: data.pad_token: special token \"<pad>\" needs a BPE tokenizer "
            "(data.tokenizer); the byte-level tokenizer has none");
  EXPECT_EQ(parse_error("data: {train: t.bin, tokenizer: tok, eot_token: '<|endoftext|>'}\n"), "");
}

TEST(ConfigErrors, ValidateConfigDirectly) {
  Config c;
  EXPECT_NO_THROW(validate_config(c));
  c.model.d_model = 100;
  c.model.n_heads = 3;
  EXPECT_EQ(error_of([&] { validate_config(c); }),
            "model.n_heads: d_model (100) must be divisible by n_heads (3)");
  c = Config{};
  c.model.dropout_resid = std::nanf("");
  EXPECT_CONTAINS(error_of([&] { validate_config(c); }), "model.dropout.resid: must be in [0, 1)");
}

// --- the command line --------------------------------------------------------------------

TEST(ConfigErrors, OverrideSyntax) {
  EXPECT_EQ(override_error("model.n_layers"),
            "command line: 'model.n_layers': expected key.path=value (e.g. train.lr=3e-4)");
  EXPECT_EQ(override_error("=4"), "command line: '=4': empty key (expected key.path=value)");
  EXPECT_EQ(override_error("model..n_layers=4"),
            "command line: 'model..n_layers=4': empty component in key 'model..n_layers'");
  EXPECT_EQ(override_error(".n_layers=4"),
            "command line: '.n_layers=4': empty component in key '.n_layers'");
  EXPECT_EQ(override_error("model.=4"),
            "command line: 'model.=4': empty component in key 'model.'");
  EXPECT_CONTAINS(override_error("data.train=[a.bin"),
                  "command line: data.train: cannot read '[a.bin' as a YAML value (");
}

TEST(ConfigErrors, OverrideValues) {
  EXPECT_EQ(override_error("train.lr=fast"),
            "command line: train.lr: unknown key (did you mean 'optim.lr'?)");
  EXPECT_EQ(override_error("optim.lr=fast"),
            "command line: optim.lr: expected a number, got 'fast'");
  EXPECT_EQ(override_error("model.n_layer=3"),
            "command line: model.n_layer: unknown key (did you mean 'model.n_layers'?)");
  EXPECT_EQ(override_error("modle.n_layers=3"),
            "command line: modle.n_layers: unknown key (did you mean 'model.n_layers'?)");
  EXPECT_EQ(override_error("model=5"),
            "command line: model: expected a map of keys (type, vocab_size, n_layers, "
            "encoder_layers, decoder_layers, d_model, n_heads, d_ff, seq_len, src_seq_len, "
            "share_embeddings, pos_encoding, norm, activation, layer_norm_eps, type_vocab_size, "
            "sentence_head, embed_scale, tie_embeddings, "
            "bias, dropout, init_std), got '5'");
  EXPECT_EQ(override_error("model={n_layer: 3}"),
            "command line: model.n_layer: unknown key (did you mean 'model.n_layers'?)");
  EXPECT_EQ(override_error("optim.lr="), "command line: optim.lr: expected a number, got nothing");
}

TEST(ConfigErrors, ConsistencyBlamesTheCommandLineWhenItSetAKeyInvolved) {
  const std::string file = "train: {max_steps: 2000}\noptim: {warmup_steps: 100}\n";
  EXPECT_EQ(parse_error(file, {"train.max_steps=50"}),
            "command line: optim.warmup_steps: warmup_steps (100) must not exceed "
            "train.max_steps (50)");
  EXPECT_EQ(parse_error("model: {d_model: 100}\n", {"model.n_heads=3"}),
            "command line: model.n_heads: d_model (100) must be divisible by n_heads (3)");
  EXPECT_EQ(parse_error("model: {d_model: 100, n_heads: 3}\n", {"train.max_steps=50"}),
            "test.yaml: model.n_heads: d_model (100) must be divisible by n_heads (3)");
  EXPECT_EQ(parse_error("", {"optim.beta2=1"}),
            "command line: optim.beta2: must be in [0, 1), got 1.0");
}

// --- files -------------------------------------------------------------------------------

TEST_F(ConfigFiles, LoadsAFileWithOverrides) {
  const std::string path = write("ok.yaml", "model:\n  n_layers: 3\noptim:\n  lr: 0.01\n");
  const Config c = load_config(path, {"optim.lr=0.02"});
  EXPECT_EQ(c.model.n_layers, 3);
  EXPECT_EQ(c.optim.lr, 0.02f);
}

TEST_F(ConfigFiles, ErrorsNameTheFile) {
  const std::string path = write("bad.yaml", "model:\n  n_layer: 4\n");
  EXPECT_EQ(error_of([&] { load_config(path, {}); }),
            path + ": model.n_layer: unknown key (did you mean 'model.n_layers'?)");
}

TEST_F(ConfigFiles, MissingFile) {
  const std::string path = (dir_ / "nope.yaml").string();
  EXPECT_EQ(error_of([&] { load_config(path, {}); }), path + ": config file not found");
}

TEST_F(ConfigFiles, UnreadableFile) {
  const std::string path = (dir_ / "adir.yaml").string();
  fs::create_directory(path);
  EXPECT_EQ(error_of([&] { load_config(path, {}); }), path + ": is a directory, not a config file");
}

TEST_F(ConfigFiles, YamlSyntaxErrorHasTheLine) {
  const std::string path = write("syntax.yaml", "model:\n  n_layers: 4\n  bad: [1, 2\ntrain: {}\n");
  const std::string msg = error_of([&] { load_config(path, {}); });
  EXPECT_CONTAINS(msg, path + ": line ");
  EXPECT_CONTAINS(msg, "invalid YAML: ");
  const std::string tab = write("tab.yaml", "model:\n  n_layers: 4\n   d_model: 8\n");
  EXPECT_CONTAINS(error_of([&] { load_config(tab, {}); }), tab + ": line 3, column ");
}

// --- YAML out ----------------------------------------------------------------------------

Config unusual_config() {
  Config c;
  c.model.vocab_size = 50257;
  c.model.n_layers = 12;
  c.model.d_model = 768;
  c.model.n_heads = 12;
  c.model.d_ff = 3072;
  c.model.norm = Norm::kPost;
  c.model.activation = Activation::kRelu;
  c.model.embed_scale = true;
  c.model.bias = false;
  c.model.dropout_embed = 0.1f;
  c.model.dropout_attn = 1.0f / 3.0f;
  c.model.dropout_resid = 0.123456789f;
  c.model.init_std = 0.02f / std::sqrt(24.0f);
  c.parallel.tp = 4;
  c.train.seed = UINT64_MAX;
  c.train.grad_clip = 0.0f;
  c.train.global_batch = 128;
  c.optim.lr = 6e-4f;
  c.optim.min_lr = 1e-7f;
  c.optim.eps = 1e-8f;
  c.optim.beta2 = 0.999f;
  c.optim.weight_decay = 3.0e-38f;
  c.data.train = {"data/train_*.bin", "b c.bin", "#hash.bin", "null", "true"};
  c.data.val = {"v.bin"};
  c.checkpoint.resume = "none";
  c.sample.prompt = "a: b\n# not a comment\t'\"";
  c.sample.temperature = 0.7f;
  c.runtime.device = DeviceChoice::kAuto;
  c.run.dir = "~";
  return c;
}

TEST(ConfigYaml, RoundTripsExactly) {
  for (const Config& c : {Config{}, unusual_config()}) {
    const std::string yaml = config_to_yaml(c);
    const Config back = parse_config(yaml, {}, "round trip");
    EXPECT_EQ(back, c) << yaml;
    EXPECT_EQ(config_to_yaml(back), yaml);
  }
  // Floats across the whole range come back bit for bit.
  Config c;
  uint32_t bits = 0x3a83126fu;  // a pseudo-random walk over positive finite floats < 1
  for (int i = 0; i < 200; ++i) {
    bits = bits * 1664525u + 1013904223u;
    float v;
    const uint32_t b = bits & 0x3f7fffffu;
    std::memcpy(&v, &b, sizeof v);
    if (!(v < 1.0f) || !(v > 0.0f)) continue;
    c.model.dropout_attn = v;
    c.optim.beta1 = v;
    EXPECT_EQ(parse_config(config_to_yaml(c), {}, "t"), c) << v;
  }
}

TEST(ConfigYaml, NestsByKeyPathAndListsEveryKey) {
  Config defaults;
  const std::string yaml = config_to_yaml(defaults);
  const YAML::Node root = YAML::Load(yaml);
  ASSERT_TRUE(root.IsMap());
  EXPECT_EQ(root["model"]["dropout"]["attn"].Scalar(), "0.0");
  EXPECT_EQ(root["optim"]["lr"].Scalar(), "0.001");
  EXPECT_TRUE(root["data"]["train"].IsSequence());
  std::vector<std::string> keys;
  leaf_paths(root, "", keys);
  EXPECT_EQ(keys.size(), config_detail::option_table(defaults).size());  // every key
  EXPECT_EQ(keys.front(), "model.type");
  EXPECT_EQ(keys.back(), "run.dir");
  const std::string sections[] = {"model",      "parallel", "train",  "optim",   "data",
                                  "checkpoint", "log",      "sample", "runtime", "run"};
  size_t i = 0;
  for (const auto& kv : root) EXPECT_EQ(kv.first.Scalar(), sections[i++]);
  EXPECT_EQ(i, 10u);
  // Help lists every key with its default.
  const std::string help = config_help();
  for (const std::string& k : keys) EXPECT_CONTAINS(help, "  " + k + " ");
  EXPECT_CONTAINS(help, "model.n_layers");
  EXPECT_CONTAINS(help, "number of transformer blocks L");
  EXPECT_CONTAINS(help, "{learned, sinusoidal}");
  EXPECT_CONTAINS(help, "[0, 1)");
}

TEST(ConfigYaml, HelpShowsDefaults) {
  const std::string help = config_help();
  auto line_of = [&](const std::string& key) {
    const size_t at = help.find("  " + key + " ");
    return at == std::string::npos ? std::string() : help.substr(at, help.find('\n', at) - at);
  };
  EXPECT_CONTAINS(line_of("model.n_layers"), " 2 ");
  EXPECT_CONTAINS(line_of("model.n_layers"), "in [1, 4096]");
  EXPECT_CONTAINS(line_of("model.d_model"), ">= 1");
  EXPECT_CONTAINS(line_of("model.norm"), "choice");
  EXPECT_CONTAINS(line_of("model.norm"), "one of {pre, post}");
  EXPECT_CONTAINS(line_of("optim.lr"), " 0.001 ");
  EXPECT_CONTAINS(line_of("train.seed"), " 1337 ");
  EXPECT_CONTAINS(line_of("model.tie_embeddings"), " true ");
  EXPECT_CONTAINS(line_of("data.train"), " [] ");
  EXPECT_CONTAINS(line_of("run.dir"), " runs/default ");
}

// --- the shipped configs -----------------------------------------------------------------

TEST(ConfigShipped, AllLoad) {
  const std::string dir = testing::source_dir() + "/configs/";
  const Config tiny = load_config(dir + "tiny.yaml", {});
  EXPECT_TRUE(tiny.data.train.empty());
  EXPECT_EQ(tiny.run.dir, "runs/tiny");
  EXPECT_EQ(tiny.model.vocab_size, 256);

  const Config small = load_config(dir + "small.yaml", {});
  EXPECT_EQ(small.model.n_layers, 6);
  EXPECT_EQ(small.model.d_model, 384);
  EXPECT_EQ(small.model.dropout_attn, 0.1f);
  EXPECT_EQ(small.run.dir, "runs/small");

  const Config gpt2 = load_config(dir + "gpt2-124m.yaml", {});
  EXPECT_EQ(gpt2.model.vocab_size, 50257);
  EXPECT_EQ(gpt2.model.n_layers, 12);
  EXPECT_EQ(gpt2.model.d_model, 768);
  EXPECT_EQ(gpt2.model.n_heads, 12);
  EXPECT_EQ(gpt2.model.seq_len, 1024);
  EXPECT_FALSE(gpt2.data.train.empty());
  EXPECT_FALSE(gpt2.data.val.empty());
  EXPECT_EQ(gpt2.run.dir, "runs/gpt2-124m");
}

}  // namespace
}  // namespace ph

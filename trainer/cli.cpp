#include "trainer/cli.h"

#include <mpi.h>
#include <omp.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <thread>

#include "io/checkpoint.h"
#include "io/config.h"
#include "io/prepare.h"
#include "io/shard.h"
#include "io/tokenizer.h"
#include "parallel/agreement.h"
#include "parallel/deadline.h"
#include "parallel/grid.h"
#include "parallel/mpi_communicator.h"
#include "trainer/checkpointing.h"
#include "trainer/cli_args.h"
#include "trainer/cli_prepare_pairs.h"
#include "trainer/cli_sample.h"
#include "trainer/cli_setup.h"
#include "trainer/cli_tokenizer.h"
#include "trainer/cli_translate.h"
#include "trainer/compute.h"
#include "trainer/data_source.h"
#include "trainer/evaluator.h"
#include "trainer/logits_file.h"
#include "trainer/memory_estimate.h"
#include "trainer/model_factory.h"
#include "trainer/signals.h"
#include "trainer/trainer.h"

#ifndef POLYHEAD_VERSION
#define POLYHEAD_VERSION "0.0.0"
#endif

namespace ph {

namespace {

const char* kUsage =
    "usage: polyhead <command> [options]\n"
    "\n"
    "commands:\n"
    "  train CONFIG [--dry-run] [key.path=value ...]\n"
    "                                          train a model described by a YAML config\n"
    "  eval CONFIG|--checkpoint PATH [--data PATH] [--batches N] [--logits OUT]\n"
    "       [key.path=value ...]\n"
    "                                          loss (and task accuracy) on a dataset\n"
    "  sample --checkpoint PATH [--prompt TEXT | --prompts FILE [--batch N]]\n"
    "         [--max-tokens N] [--temperature T] [--top-k K] [--seed S]\n"
    "                                          generate text from a GPT checkpoint\n"
    "  translate --checkpoint PATH [--input FILE] [--beam N] [--length-penalty A]\n"
    "         [--max-len-a A --max-len-b B] [--n-best K]\n"
    "                                          translate lines with an encoder-decoder\n"
    "  prepare --input FILE... --out DIR [--val-fraction F] [--tokenizer T ...]\n"
    "                                          tokenize text files into train/val shards\n"
    "  prepare --src FILE --tgt FILE --tokenizer T --out DIR [--val-fraction F]\n"
    "                                          parallel text into train/val pair files\n"
    "  inspect PATH                            a checkpoint's step, config, layout and tensors\n"
    "  tokenizer train|encode|decode ...       train a byte-level BPE tokenizer; text to shards\n"
    "                                          and back\n"
    "  --version                               print the version\n"
    "\n"
    "Run 'polyhead <command> --help' for the options of a command.\n";

const char* kTrainHelp =
    "usage: polyhead train CONFIG [--dry-run] [key.path=value ...]\n"
    "\n"
    "Trains the model of CONFIG (YAML). Arguments of the form key.path=value override the\n"
    "file (e.g. train.lr=1e-3 model.n_layers=4). The run directory (run.dir) receives the\n"
    "resolved config.yaml, metrics.jsonl and checkpoints/. SIGINT/SIGTERM save a checkpoint\n"
    "and exit 0; checkpoint.resume=auto (the default) continues from it.\n"
    "\n"
    "Before anything is written, the memory each rank needs (parameters, gradients, AdamW\n"
    "moments, activations at train.micro_batch, checkpoint staging, the process) is estimated\n"
    "and compared with what is available (MemAvailable shared by the ranks of a node,\n"
    "ulimit -v, free GPU memory); a run that does not fit is refused, naming the keys.\n"
    "\n"
    "  --dry-run   print the layout (dp, tp), the parameter count and the memory estimate per\n"
    "              rank against what is available, then exit without training or writing\n"
    "              anything (no run directory); exit 2 when the run would be refused\n"
    "\n"
    "config keys (default):\n";

const char* kEvalHelp =
    "usage: polyhead eval CONFIG [--data PATH] [--batches N] [key.path=value ...]\n"
    "       polyhead eval --checkpoint PATH [--data PATH] [--batches N] [--logits OUT]\n"
    "\n"
    "Prints the mean token loss (and, for the synthetic task, the exact-match accuracy) on the\n"
    "validation data of the config, or on the shard(s) given by --data. With CONFIG the\n"
    "newest checkpoint of its run directory is evaluated (the freshly initialised model if\n"
    "there is none); with --checkpoint the model and config come from that file. --batches\n"
    "limits the number of micro-batches (default train.eval_batches; 0 = the whole set).\n"
    "--logits OUT writes the logits of the first micro-batch, with its inputs, to OUT (JSON;\n"
    "README \"Exporting and importing models\") instead of evaluating; one process only.\n";

const char* kPrepareHelp =
    "usage: polyhead prepare --input FILE [FILE ...] --out DIR [--val-fraction F]\n"
    "                        [--tokenizer T [--doc-separator file|blank] [--eot TOKEN|none]\n"
    "                         [--threads N]]\n"
    "\n"
    "Tokenizes the text files (in order) into DIR/train.bin and DIR/val.bin in the llm.c shard\n"
    "format; the last F of the tokens (default 0.1) become validation data. Without --tokenizer\n"
    "every byte is a token. With --tokenizer T (a directory with vocab.json + merges.txt, or a\n"
    "tiktoken rank file) each document is encoded with it and preceded by the end-of-text token\n"
    "(--eot, default <|endoftext|>; none: no separator), as llm.c's data scripts do. A document\n"
    "is an input file (--doc-separator file, the default) or a block of lines between blank\n"
    "lines (blank). Vocabularies past 65,536 ids get llm.c's uint32 shards.\n";

const char* kInspectHelp =
    "usage: polyhead inspect PATH\n"
    "\n"
    "Prints a checkpoint's step, consumed samples, seed, layout, model, tensors and config.\n";

// Loads the config on every rank; a problem seen by any rank (a file missing on one node) is
// reported by all of them alike, so rank 0 prints it once and nobody waits for the others.
Config load_config_everywhere(const std::string& path, const std::vector<std::string>& overrides) {
  MpiCommunicator world(MPI_COMM_WORLD);
  Config cfg;
  agree(world, [&] { cfg = load_config(path, overrides); });
  return cfg;
}

// polyhead train --dry-run: the layout, the parameter count and the memory estimate per rank
// against what is available; nothing is trained or written. Collective like train().
int dry_run_train(const Config& cfg, const std::string& config_path) {
  const ProcessGrid grid = make_grid(cfg.parallel.tp);
  check_layout(cfg, grid, /*training=*/true);
  MemoryEstimate e;
  agree(*grid.world_comm, [&] { e = estimate_memory(cfg, grid); });
  const int mb = cfg.train.micro_batch;
  const int global = cfg.train.global_batch > 0 ? cfg.train.global_batch : mb * grid.dp;
  std::printf("polyhead %s: dry run of %s (nothing is trained or written)\n", POLYHEAD_VERSION,
              config_path.c_str());
  std::printf(
      "layout: dp=%d tp=%d%s (%d ranks, %d on this node); %s backend; %d threads per rank; "
      "global batch %d x %d tokens (micro-batch %d, accumulation %d)\n",
      grid.dp, grid.tp, e.zero ? " zero=1" : "", grid.world, grid.local_size,
      e.device == Device::Cuda ? "CUDA" : "CPU", omp_get_max_threads(), global, cfg.model.seq_len,
      mb, global / (mb * grid.dp));
  std::printf("model: %s, %lld parameters\n", model_summary(cfg.model).c_str(),
              static_cast<long long>(e.parameters));
  std::printf("%s", describe(e).c_str());
  const MemoryAvailable a = available_memory(e, grid);
  std::printf("%s\n", describe(a, grid.local_size).c_str());
  std::fflush(stdout);
  agree(*grid.world_comm, [&] {
    const std::string why = memory_refusal(e, a, cfg, grid.local_size);
    if (!why.empty()) throw InputError(why);
  });
  std::string fits = "the run fits: about " + format_bytes(e.host) + " per rank";
  if (e.device == Device::Cuda)
    fits += " of host memory and " + format_bytes(e.device_total) + " of GPU memory";
  std::printf("%s\n", fits.c_str());
  return 0;
}

int cmd_train(const std::vector<std::string>& args) {
  if (args.size() >= 2 && is_help(args[1])) {
    std::printf("%s%s", kTrainHelp, config_help().c_str());
    return 0;
  }
  // --dry-run is a flag (parse_args' options take a value): taken out wherever it stands.
  std::vector<std::string> rest;
  bool dry_run = false;
  for (const std::string& a : args) {
    if (a == "--dry-run")
      dry_run = true;
    else
      rest.push_back(a);
  }
  const Parsed p = parse_args(rest, "train", {});
  if (p.positional.empty())
    throw InputError(
        "train: missing CONFIG (usage: polyhead train CONFIG [--dry-run] [key.path=value ...])");
  const std::vector<std::string> overrides(p.positional.begin() + 1, p.positional.end());
  const Config cfg = load_config_everywhere(p.positional[0], overrides);
  check_device(cfg);
  setup_threads(cfg);
  if (dry_run) return dry_run_train(cfg, p.positional[0]);
  std::printf("polyhead %s: training %s (run directory %s, %d threads per rank)\n",
              POLYHEAD_VERSION, p.positional[0].c_str(), cfg.run.dir.c_str(),
              omp_get_max_threads());
  install_stop_handlers();
  train(cfg);
  return 0;
}

int cmd_eval(const std::vector<std::string>& args) {
  if (args.size() >= 2 && is_help(args[1])) {
    std::printf("%s", kEvalHelp);
    return 0;
  }
  const Parsed p = parse_args(args, "eval", {"--checkpoint", "--data", "--batches", "--logits"});
  const std::string* ckpt = option(p, "--checkpoint");
  const std::string* data = option(p, "--data");
  const std::string* batches = option(p, "--batches");
  const std::string* logits = option(p, "--logits");
  Config cfg;
  std::string from;
  std::optional<Tokenizer> tokenizer;  // the checkpoint's, else the data's (loaded below)
  if (ckpt) {
    if (!p.positional.empty() && p.positional[0].find('=') == std::string::npos)
      throw InputError("eval: give either CONFIG or --checkpoint, not both");
    const CheckpointMeta meta = read_checkpoint_meta(*ckpt, MPI_COMM_WORLD);
    cfg = parse_config(meta.config_yaml, checkpoint_overrides(p.positional),
                       *ckpt + " (embedded config)");
    tokenizer = checkpoint_tokenizer(meta, *ckpt);
    from = *ckpt;
  } else {
    if (p.positional.empty())
      throw InputError("eval: missing CONFIG or --checkpoint PATH (see 'polyhead eval --help')");
    const std::vector<std::string> overrides(p.positional.begin() + 1, p.positional.end());
    cfg = load_config_everywhere(p.positional[0], overrides);
    from = latest_checkpoint(cfg.run.dir + "/checkpoints");
  }
  check_device(cfg);
  setup_threads(cfg);
  set_comm_timeout(cfg.runtime.comm_timeout);
  const ProcessGrid grid = make_grid(cfg.parallel.tp);
  check_layout(cfg, grid, /*training=*/false);
  if (logits && grid.world != 1)
    throw InputError(
        "eval: --logits needs one process (it writes the logits of one micro-batch); "
        "run it without mpirun");
  const int max_batches =
      batches ? static_cast<int>(to_long("eval", "--batches", *batches, 0, 1L << 30))
              : cfg.train.eval_batches;
  DataSource ds;
  agree(*grid.world_comm, [&] {
    if (grid.rank == 0 && !data) generate_task_data(cfg);
  });
  agree(*grid.world_comm, [&] {
    if (!tokenizer) tokenizer = Tokenizer::load(data_tokenizer_path(cfg));
    ds = open_data(cfg, /*need_train=*/false, data ? *data : "", *tokenizer);
  });
  if (!ds.val)
    throw InputError("eval: the config names no validation data (data.val); pass --data PATH");
  Compute compute = make_compute(cfg, grid);
  const std::unique_ptr<Model> model =
      make_model(*compute.backend, cfg, grid, compute.tp, cfg.train.micro_batch);
  model->initialize(cfg.train.seed);
  if (!from.empty()) {
    const TrainState st = load_training_checkpoint(from, cfg, *model, nullptr, grid);
    std::printf("model: %s at step %lld\n", from.c_str(), static_cast<long long>(st.step));
  } else {
    std::printf("model: freshly initialised (seed %llu; no checkpoint in %s/checkpoints)\n",
                static_cast<unsigned long long>(cfg.train.seed), cfg.run.dir.c_str());
  }
  if (logits) {
    write_logits_file(*logits, *model, *ds.val, cfg.train.micro_batch);
    std::printf("logits of the first micro-batch written to %s\n", logits->c_str());
    return 0;
  }
  Evaluator ev(cfg.train.micro_batch, *model);
  const EvalResult r = ev.run(*model, *ds.val, ds.task ? &*ds.task : nullptr, max_batches, grid);
  if (r.has_mlm) {
    std::printf("val_loss %.8f\nmlm_loss %.8f over %lld predictions\n", r.total_loss(), r.loss,
                static_cast<long long>(r.tokens));
    std::printf("mlm_accuracy %.6f (%lld/%lld held-out predictions)\n", r.mlm_accuracy(),
                static_cast<long long>(r.mlm_correct), static_cast<long long>(r.tokens));
    if (r.has_sentence)
      std::printf("sentence_loss %.8f\nsentence_accuracy %.6f (%lld/%lld held-out sequences)\n",
                  r.sentence_loss(), r.sentence_accuracy(),
                  static_cast<long long>(r.sentence_correct), static_cast<long long>(r.sentences));
    return 0;
  }
  std::printf("loss %.8f over %lld tokens\n", r.loss, static_cast<long long>(r.tokens));
  // Only when the shard held task problems to score (another shard has none: no 0/0 line).
  if (r.has_task && r.task_total > 0)
    std::printf("task_accuracy %.6f (%lld/%lld held-out problems, exact match)\n",
                r.task_accuracy(), static_cast<long long>(r.task_correct),
                static_cast<long long>(r.task_total));
  return 0;
}

int cmd_prepare(const std::vector<std::string>& args) {
  if (args.size() >= 2 && is_help(args[1])) {
    std::printf("%s\n%s", kPrepareHelp, kPreparePairsHelp);
    return 0;
  }
  if (is_prepare_pairs(args)) return cmd_prepare_pairs(args);
  const Parsed p = parse_args(args, "prepare",
                              {"--input", "--out", "--val-fraction", "--tokenizer",
                               "--doc-separator", "--eot", "--threads"},
                              "--input");
  if (!p.positional.empty())
    throw InputError("prepare: unexpected argument '" + printable(p.positional[0]) + "'");
  if (p.multi.empty())
    throw InputError("prepare: missing --input FILE... (see 'polyhead prepare --help')");
  const std::string* out = option(p, "--out");
  if (!out) throw InputError("prepare: missing --out DIR");
  PrepareOptions o;
  if (const auto* v = option(p, "--val-fraction"))
    o.val_fraction = to_double("prepare", "--val-fraction", *v, -1e300, 1e300);
  const std::string* tok = option(p, "--tokenizer");
  const std::string* sep = option(p, "--doc-separator");
  const std::string* eot = option(p, "--eot");
  const std::string* threads = option(p, "--threads");
  if (!tok) {
    for (const char* name : {"--doc-separator", "--eot", "--threads"})
      if (option(p, name))
        throw InputError(std::string("prepare: ") + name +
                         " needs --tokenizer (byte-level shards have no documents)");
    const PreparedText r = prepare_text(p.multi, *out, o.val_fraction);
    std::printf("wrote %llu training and %llu validation tokens to %s\n",
                static_cast<unsigned long long>(r.train_tokens),
                static_cast<unsigned long long>(r.val_tokens), out->c_str());
    return 0;
  }
  if (sep) {
    if (*sep == "file")
      o.documents = DocSeparator::File;
    else if (*sep == "blank")
      o.documents = DocSeparator::Blank;
    else
      throw InputError("prepare: --doc-separator expects file or blank, got '" + printable(*sep) +
                       "'");
  }
  if (eot) o.eot = *eot == "none" ? "" : *eot;
  o.threads = threads ? static_cast<int>(to_long("prepare", "--threads", *threads, 1, 1024))
                      : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const Tokenizer tokenizer = Tokenizer::load(*tok);
  const PreparedText r = prepare_tokenized(p.multi, *out, tokenizer, o);
  const uint64_t tokens = r.train_tokens + r.val_tokens;
  std::printf(
      "wrote %llu training and %llu validation tokens (%s shards) to %s: %llu documents, %llu "
      "bytes, %.3f bytes per token; tokenizer %s\n",
      static_cast<unsigned long long>(r.train_tokens),
      static_cast<unsigned long long>(r.val_tokens),
      token_width_for(tokenizer.size()) == TokenWidth::U16 ? "uint16" : "uint32", out->c_str(),
      static_cast<unsigned long long>(r.documents), static_cast<unsigned long long>(r.input_bytes),
      static_cast<double>(r.input_bytes) / static_cast<double>(tokens),
      tokenizer.describe().c_str());
  return 0;
}

int cmd_inspect(const std::vector<std::string>& args) {
  if (args.size() >= 2 && is_help(args[1])) {
    std::printf("%s", kInspectHelp);
    return 0;
  }
  const Parsed p = parse_args(args, "inspect", {});
  if (p.positional.size() != 1) throw InputError("inspect: expects exactly one checkpoint PATH");
  const std::string& path = p.positional[0];
  std::printf("%s", describe_checkpoint(path, MPI_COMM_WORLD).c_str());
  // The tokenizer in full: its size and the config's special tokens with their ids.
  const CheckpointMeta meta = read_checkpoint_meta(path, MPI_COMM_WORLD);
  const Tokenizer tokenizer = checkpoint_tokenizer(meta, path);
  std::printf("tokenizer: %s\n", tokenizer.describe().c_str());
  Config cfg;
  try {
    cfg = parse_config(meta.config_yaml, {}, path + " (embedded config)");
  } catch (const InputError& e) {
    std::printf("  (special tokens unknown: %s)\n", e.what());
  }
  for (const auto& [key, text] : special_tokens(cfg.data)) {
    const std::optional<int32_t> id = tokenizer.id_of(text);
    std::printf("  %-16s %s = %s\n", key.c_str(), printable(text).c_str(),
                id ? std::to_string(*id).c_str() : "(not in the vocabulary)");
  }
  verify_checkpoint(path, MPI_COMM_WORLD);
  std::printf("checksums: every tensor verified\n");
  return 0;
}

}  // namespace

int run_cli(const std::vector<std::string>& args) {
  if (args.empty() || is_help(args[0])) {
    std::printf("%s", kUsage);
    return args.empty() ? 2 : 0;
  }
  const std::string& cmd = args[0];
  if (cmd == "--version") {
    std::printf("polyhead %s\n", POLYHEAD_VERSION);
    return 0;
  }
  if (cmd == "train") return cmd_train(args);
  if (cmd == "eval") return cmd_eval(args);
  if (cmd == "sample") return cmd_sample(args);
  if (cmd == "translate") return cmd_translate(args);
  if (cmd == "prepare") return cmd_prepare(args);
  if (cmd == "inspect") return cmd_inspect(args);
  if (cmd == "tokenizer") return cmd_tokenizer(args);
  throw InputError("unknown command '" + printable(cmd) +
                   "' (commands: train, eval, sample, prepare, inspect, tokenizer; see 'polyhead "
                   "--help')");
}

}  // namespace ph

// Checkpoints of a model and its optimizer, driven by the parameter table: parameters as
// /model/<name>, AdamW moments as /optim/m/<name> and /optim/v/<name>, each in full shape.
// Every rank takes part; each tensor-parallel slice is written by data-parallel rank 0 only,
// replicated parameters by tensor-parallel rank 0 only. Any layout loads any checkpoint.
#pragma once
#include <string>

#include "io/checkpoint.h"
#include "io/config.h"
#include "io/tokenizer.h"
#include "model/model.h"
#include "parallel/grid.h"
#include "trainer/optimizer.h"

namespace ph {

struct TrainState {
  int64_t step = 0;               // optimizer steps done
  int64_t optimizer_steps = 0;    // AdamW updates applied (steps skipped on NaN do not count)
  uint64_t consumed_samples = 0;  // global data position
  std::string best_eval;          // the best evaluation so far (trainer/best_eval.h), or ""
};

// "gpt L=.. d=.. H=.. f=.. V=.. T=.. pos=.. norm=.. act=.. tie=.. bias=.. embed_scale=..", or
// "encdec L=<enc>+<dec> d=.. H=.. f=.. V=.. S=.. T=.. pos=.. norm=.. act=.. share=.. bias=..
// embed_scale=..": the checkpoint attribute `model`, for people (the check below reads the
// embedded config).
std::string model_summary(const ModelConfig& m);

// Saves model (and optimizer moments when opt is non-null; ZeRO shards are gathered) and the
// run's tokenizer under dir; returns the path. name "": the step checkpoint (dir/latest
// updated, old ones pruned by checkpoint.keep_last); else dir/name (e.g. "best.h5"), written
// alone (io/checkpoint.h save_named_checkpoint).
std::string save_training_checkpoint(const std::string& dir, const Config& cfg,
                                     const Tokenizer& tokenizer, Model& model, AdamW* opt,
                                     const TrainState& st, const ProcessGrid& grid,
                                     const std::string& name = "");

// The tokenizer a checkpoint stores (byte-level for files before format 4).
Tokenizer checkpoint_tokenizer(const CheckpointMeta& meta, const std::string& path);

// Refuses (InputError) to continue a run whose tokenizer differs from the checkpoint's:
//   checkpoint P was trained with another tokenizer: it holds <describe>, NAME is <describe>
void check_checkpoint_tokenizer(const std::string& path, const Tokenizer& run,
                                const std::string& name);

// Refuses (InputError) a checkpoint whose model architecture differs from cfg.model: the
// architecture keys of its embedded config are compared with cfg's, and the message names every
// one that differs with both values. Returns the checkpoint's meta.
CheckpointMeta check_checkpoint_matches(const std::string& path, const Config& cfg);

// Loads parameters (and moments when opt is non-null) into model/opt; returns the state.
TrainState load_training_checkpoint(const std::string& path, const Config& cfg, Model& model,
                                    AdamW* opt, const ProcessGrid& grid);

}  // namespace ph

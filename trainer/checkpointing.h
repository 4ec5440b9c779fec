// Checkpoints of a model and its optimizer, driven by the parameter table: parameters as
// /model/<name>, AdamW moments as /optim/m/<name> and /optim/v/<name>, each in full shape.
// Every rank takes part; each tensor-parallel slice is written by data-parallel rank 0 only,
// replicated parameters by tensor-parallel rank 0 only. Any layout loads any checkpoint.
#pragma once
#include <string>

#include "io/checkpoint.h"
#include "io/config.h"
#include "model/gpt.h"
#include "parallel/grid.h"
#include "trainer/optimizer.h"

namespace ph {

struct TrainState {
  int64_t step = 0;               // optimizer steps done
  uint64_t consumed_samples = 0;  // global data position
};

// "gpt L=.. d=.. H=.. f=.. V=.. T=.. pos=.. norm=.. act=.. tie=.. bias=.. embed_scale=.."
std::string model_summary(const ModelConfig& m);

// Saves model (and optimizer moments when opt is non-null; ZeRO shards are gathered) under
// dir; returns the path.
std::string save_training_checkpoint(const std::string& dir, const Config& cfg, Gpt& model,
                                     AdamW* opt, const TrainState& st, const ProcessGrid& grid);

// Refuses (InputError) a checkpoint whose model architecture differs from cfg.model, naming
// every differing key. Returns the checkpoint's meta.
CheckpointMeta check_checkpoint_matches(const std::string& path, const Config& cfg,
                                        const ProcessGrid& grid);

// Loads parameters (and moments when opt is non-null) into model/opt; returns the state.
TrainState load_training_checkpoint(const std::string& path, const Config& cfg, Gpt& model,
                                    AdamW* opt, const ProcessGrid& grid);

}  // namespace ph

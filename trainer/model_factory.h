// The one place that names the model families: builds the model of `model.type` for a rank,
// and checks that a layout fits it (the trainer and every command share both).
#pragma once
#include <memory>

#include "io/config.h"
#include "model/model.h"
#include "parallel/grid.h"

namespace ph {

// Throws InputError (one message) when the grid does not fit the model and batch of cfg:
// tp must divide the world, the heads, the FFN width and the padded vocabulary; with
// `training`, the global batch must be a multiple of dp × micro_batch.
void check_layout(const Config& cfg, const ProcessGrid& grid, bool training);

// The model of cfg.model for this rank: tensor-parallel rank grid.tp_rank of the group whose
// device buffers `tp_comm` carries (may be null when grid.tp == 1), on backend `be`, for
// micro-batches of at most `max_batch` sequences. arena_multiple: see ModelSetup.
std::unique_ptr<Model> make_model(Backend& be, const Config& cfg, const ProcessGrid& grid,
                                  Communicator* tp_comm, int max_batch, size_t arena_multiple = 1);

}  // namespace ph

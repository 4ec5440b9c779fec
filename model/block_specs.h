// The specs of the shared blocks as a model's config gives them, for every family to start
// from (a family then sets what is its own: causality, cross-attention, dropout stacks, the
// scale of the residual projections).
#pragma once
#include <cstdint>

#include "io/config.h"
#include "model/embedding.h"
#include "model/transformer_layer.h"

namespace ph {

// An embedding of cfg's vocabulary, width, positions and scale over T_max positions, with the
// embedding dropout at `site` (kernels/common/rng_streams.h).
EmbeddingSpec embedding_spec(const ModelConfig& cfg, int max_batch, int T_max, uint32_t site);

// A layer of cfg's width, heads, FFN, norm placement, activation, biases and dropout over
// T_max positions (keys too): bidirectional, no cross-attention, the kMain dropout stack, and
// every projection initialised with init_std.
LayerSpec layer_spec(const ModelConfig& cfg, int max_batch, int T_max);

}  // namespace ph

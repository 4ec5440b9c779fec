// Model FLOPs of a training step (forward + backward) from the architecture alone: what MFU
// (model FLOP utilisation) divides by the device's peak. The PaLM-appendix convention: a matmul
// weight costs 6 FLOPs per position it is applied to (2 forward, 2 + 2 backward for the input
// and the weight gradient); attention scores and the weighted sum of values cost 12 * keys * d
// per query position and layer (the full T x T: the causal half is not discounted);
// embedding lookups, biases, LayerNorms, activations and the softmax are left out.
// The training log (trainer/training_log.h) and bench_train use these functions, and nothing
// else computes model FLOPs.
#pragma once
#include <cstdint>

#include "io/config.h"

namespace ph {

// GPT, per trained token:
//   6 * N_nonembedding + 6 * V * d (the LM head, tied or not) + 12 * L * T * d
// with N_nonembedding = n_params - wte [V, d] - wpe [T, d] (learned positions) - lm_head [V, d]
// (untied); n_params: every parameter of the model (ParamTable::full_count).
double gpt_flops_per_token(const ModelConfig& m, int64_t n_params);

// Encoder-decoder, a step computing `source` source positions and `target` target positions
// (a training step packs its rows: the real ones, up to each sample's source length and last
// counted target):
//   encoder, per source position and layer:  6 * (4d^2 + 2df) + 12 * S * d
//   decoder, per target position and layer:  6 * (6d^2 + 2df) + 12 * T * d + 12 * S * d
//            (self-attention q|k|v|proj, cross-attention q and proj, the FFN; self and cross
//            scores over the padded S = source_len() and T = seq_len keys)
//   cross-attention keys and values, per source position and decoder layer: 6 * 2d^2
//   the output layer, per target position: 6 * V * d
double encdec_flops(const ModelConfig& m, double source, double target);
// The same for B pairs of S and T positions each: encdec_flops(m, B * S, B * T).
double encdec_flops_per_step(const ModelConfig& m, int B);

// BERT, one step of B sequences of T positions with P masked-LM predictions each:
//   per position and layer 6 * (4d^2 + 2df) + 12 * T * d, except that the last layer runs its
//   output projection and FFN, 6 * (d^2 + 2df), on the R = min(T, P + 1 with a sentence head,
//   else P) rows the heads read only (model/bert.h: the prediction slots' distinct rows and
//   [CLS]; exact unless a slot sits on [CLS]); the MLM head per prediction 6 * (d^2 + V * d);
//   the sentence head (nsp, sop) per sequence 6 * (d^2 + 2d).
double bert_flops_per_step(const ModelConfig& m, int B, int P);

// The model FLOPs of one step divided by its token positions (B x T: the target side of the
// encoder-decoder, whose encoder FLOPs are spread over them): gpt_flops_per_token;
// encdec_flops_per_step(m, 1) / T; bert_flops_per_step(m, 1, P) / T with P =
// data.mlm_predictions(T). A step of B sequences costs B * T * flops_per_token.
double flops_per_token(const Config& cfg, int64_t n_params);

}  // namespace ph

// Multi-head attention blocks, tensor-parallel the Megatron way: the q, k, v projections are
// column-parallel (each rank holds H/tp whole heads), the output projection is row-parallel.
//
// SelfAttention: q, k, v from one stream ([N, C] -> fused [N, 3C/tp]); causal, key padding by
// per-sample lengths, or both. CrossAttention: q from the stream, k and v from another one
// (the memory: an encoder's output), Tq != Tk, key padding of the memory.
//
// Incremental decoding (step): one new position per hypothesis, no dropout, no backward.
// Causal self-attention keeps the keys and values of every hypothesis's earlier positions in a
// cache, which each step rebuilds in the other of two buffers: the rows of each hypothesis's
// parent (beam search reorders hypotheses) followed by its new row. Cross-attention attends
// over the memory's keys and values, computed once (memory_kv).
//
// Parameters (<p> the block's prefix, e.g. "h.0.attn." or "dec.h.0.cross."): <p>q.weight,
// <p>k.weight, <p>v.weight [C, C] (adjacent), <p>q.bias, <p>k.bias, <p>v.bias [C], <p>proj.weight
// [C, C], <p>proj.bias [C]. The heads are contiguous row blocks of q, k and v.
#pragma once
#include <cstdint>
#include <string>

#include "model/linear.h"
#include "model/pass.h"

namespace ph {

struct AttentionSpec {
  int C = 0, H = 0;     // width and heads of the unsharded layer
  bool causal = false;  // self-attention only
  bool bias = true;
  float init_std = 0.02f;  // q, k, v
  float proj_std = 0.02f;  // the output projection
  Dropout probs;           // on the attention probabilities (T_max: the query rows' maximum)
  int Tk_max = 0;          // keys per sample at most (self-attention: probs.T_max)
  int max_batch = 0;
  // Passes (and memories) may be packed (model/pass.h): plans the padded scratch that
  // attention then runs in. Unpacked passes work either way.
  bool packed_rows = false;
  // SelfAttention::forward may be given output rows (plans their context).
  bool select_rows = false;
};

// The memory cross-attention reads: B samples of Tk rows [B*Tk, C] (packed: the packed.N real
// rows of that layout), with per-sample lengths (device, may be null) and, in backward, where
// to add this rank's partial gradient of x (every decoder layer adds to it; the model sums it
// over the tensor-parallel group once).
struct Memory {
  const float* x = nullptr;
  float* dx = nullptr;
  int Tk = 0;
  const int32_t* key_len = nullptr;
  Packing packed;
  int rows(int B) const { return packed.pack ? packed.N : B * Tk; }
};

// One step of incremental decoding as every layer of a decoder sees it: n hypotheses take one
// new position `pos` each. The step's rows run in the blocks' activation buffers, which hold
// max_batch * T_max rows: n must not exceed that.
struct DecodeStep {
  int n = 0;    // hypotheses (rows of the step)
  int pos = 0;  // the position they take (the caches hold pos positions per hypothesis)
  // Hypotheses of the previous step (0: n): the old cache holds prev_n * pos rows. Fewer than n
  // never; more when hypotheses left the batch (IncrementalDecoder::retain).
  int prev_n = 0;
  // [n * (pos + 1)] device: row h * (pos + 1) + j of the rebuilt cache is row gather[...] of the
  // old one: parent(h) * pos + j for j < pos (parent(h) numbered as in the previous step), and
  // prev_n * pos + h (the new row, appended) for j = pos.
  const int32_t* gather = nullptr;
  int beams = 1;                // hypothesis h reads memory sample h / beams
  const Memory* mem = nullptr;  // the memory (Tk, key_len) of cross-attention
  // With folded memories (LayerCache::folded): the sources folded, and the folded source each
  // memory sample reads ([n / beams] device; null: sample b reads source b).
  int folded_sources = 0;
  const int32_t* folded_source = nullptr;
};

// Whether an incremental decoder runs cross-attention folded into the memory
// (FoldedCrossDims in kernels/common/attention_args.h): kAuto where the backend folds and
// folding_pays, kNever, or kAlways (a backend that cannot fold: std::logic_error).
enum class CrossFolding { kAuto, kNever, kAlways };

// Whether folding a memory of Tk keys pays for `beams` hypotheses per source with heads of
// head_size: the fold costs what projecting Tk query rows does, and then each hypothesis's
// step costs H * Tk instead of H * head_size per channel for the q and output projections.
// With as many steps as source positions (translation), it pays when
// Tk < head_size * (1 - 1 / beams); folding_pays asks for a quarter of that, since a folded
// step runs far below the packed products' speed (its rows serve a source's beams only).
// Greedy search (beams 1) never folds.
bool folding_pays(int Tk, int beams, int head_size);

class SelfAttention : public Block {
 public:
  SelfAttention(ModelCore& core, const std::string& prefix, const AttentionSpec& spec);

  // y [N, C] = proj(attention(q, k, v of x [N, C])), complete on every rank. key_len [B]
  // (device) or null. With `out` (rows of an unpacked pass, model/pass.h), y holds those rows
  // only [out->N, C]: the selected queries attend (AttentionDims::q_rows; every row's keys and
  // values are used), the projection runs on their context.
  void forward(float* y, const float* x, const Pass& pass, const int32_t* key_len,
               const Packing* out = nullptr);
  // dx [N, C] overwritten with the full input gradient (dy [out->N, C] with `out`); parameter
  // gradients accumulate.
  void backward(float* dx, const float* dy, const float* x, const Pass& pass,
                const int32_t* key_len, const Packing* out = nullptr);
  // Causal incremental step: y [n, C] for x [n, C] at position s.pos. cache[pos % 2] holds the
  // keys and values (k | v per row) of positions < pos, [prev_n, pos, 2C/tp], with room for n
  // more rows; the step writes those of positions <= pos, [n, pos + 1, 2C/tp], into
  // cache[(pos + 1) % 2].
  void step(float* y, const float* x, const DecodeStep& s, float* const cache[2]);

 private:
  AttentionDims dims(const Pass& pass, const int32_t* key_len) const;

  AttentionSpec spec_;
  int Cl_, Hl_;  // this rank's width and heads
  ColumnParallelLinear qkv_;
  RowParallelLinear proj_;
  float *qkv_out_ = nullptr, *att_ = nullptr, *ctx_ = nullptr;  // kept for backward
  float *dctx_ = nullptr, *dqkv_ = nullptr, *datt_ = nullptr;   // scratch
  // packed passes: q|k|v, their gradient and the context (or its gradient) in the padded layout
  float *pad_qkv_ = nullptr, *pad_dqkv_ = nullptr, *pad_ctx_ = nullptr;
  // selected output rows: their context (kept for backward) and its gradient
  float *sel_ctx_ = nullptr, *sel_dctx_ = nullptr;
};

class CrossAttention : public Block {
 public:
  CrossAttention(ModelCore& core, const std::string& prefix, const AttentionSpec& spec);

  // y [N, C] = proj(attention(q of x [N, C]; k, v of mem.x [B*mem.Tk, C])).
  void forward(float* y, const float* x, const Pass& pass, const Memory& mem);
  // dx [N, C] overwritten with the full gradient of x; this rank's partial gradient of the
  // memory is added to mem.dx.
  void backward(float* dx, const float* dy, const float* x, const Pass& pass, const Memory& mem);
  // kv [B*mem.Tk, 2C/tp] = the keys and values of the memory's B samples (k | v per row); with
  // `folded`, also the folded memory [folded_floats(B, mem.Tk)] (the backend must fold).
  void memory_kv(float* kv, const Memory& mem, int B, float* folded = nullptr);
  // Floats of the folded memory of B samples of Tk keys on this rank.
  size_t folded_floats(int B, int Tk) const { return be().folded_cross_floats(fold_dims(B, Tk)); }
  // Incremental step: y [n, C] for x [n, C], hypothesis h attending over sample h / s.beams of
  // kv (from memory_kv), masked by s.mem->key_len; with `folded` (memory_kv's), the folded
  // computation of the same (equal up to rounding; kv is then not read), sample b reading
  // folded source s.folded_source[b].
  void step(float* y, const float* x, const DecodeStep& s, const float* kv,
            const float* folded = nullptr);

 private:
  AttentionDims dims(const Pass& pass, const Memory& mem) const;
  FoldedCrossDims fold_dims(int B, int Tk) const;

  AttentionSpec spec_;
  int Cl_, Hl_;
  ColumnParallelLinear q_, kv_;
  RowParallelLinear proj_;
  float *q_out_ = nullptr, *kv_out_ = nullptr, *att_ = nullptr, *ctx_ = nullptr;
  float *dctx_ = nullptr, *dq_ = nullptr, *dkv_ = nullptr, *datt_ = nullptr;
  // packed passes: as SelfAttention's, and the memory's k|v and their gradient
  float *pad_q_ = nullptr, *pad_dq_ = nullptr, *pad_ctx_ = nullptr;
  float *pad_kv_ = nullptr, *pad_dkv_ = nullptr;
};

}  // namespace ph

// Multi-head attention: per (sample, head) sgemm on blocks of query rows.
//
// Strategy, measured on the 2-core target at B=16, T=256, C=384, H=6 (OMP_NUM_THREADS=2,
// OPENBLAS_CORETYPE=Haswell): the (sample, head) pairs are independent, so OpenMP splits them
// over the threads and each pair is computed by single-threaded sgemm calls on blocks of
// kRowBlock query rows. With the causal mask a block only multiplies the keys its last row can
// see, so the upper triangle is skipped except inside the diagonal blocks. A call that selects
// query rows (AttentionDims::q_rows) copies those rows into compact blocks and computes them
// alone.
// - forward + backward: 6.6 + 10.8 ms. Hand-vectorised loops (q.k dot per key, axpy into the
//   output and into dk/dv) took 17.7 + 29.7 ms; 2.7x slower.
// - OpenBLAS left at 2 threads inside this parallel region: 227 + 430 ms, the two pools
//   fighting over two cores; hence blas_single_threaded() (see blas_threads.h).
// - kRowBlock 32 / 64 / 128: 18.9 / 17.9 / 20.2 ms for forward + backward.
#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cpu/blas_threads.h"
#include "kernels/cpu/dropout_scales.h"
#include "kernels/cpu/fast_exp.h"
#include "kernels/cpu/vec8.h"

namespace ph::cpu {

namespace {

constexpr int kRowBlock = 64;  // query rows per sgemm
constexpr int kColTile = 128;  // key columns per dropout tile (tile lives on the stack)
// Forward blocks of at most this many (query, key) scores without dropout are computed with
// loops instead of two sgemm calls: incremental decoding has one query row per hypothesis
// (cross-attention: one per beam) and a few keys, where the calls cost more than their work
// (translation at d 384, beam 4: the attention's share of the decoding's CPU time fell from
// 8% to 2%). Training takes this path only on short sequences (a block of min(64, T) rows
// seeing at most 1024 / rows keys, e.g. T <= 32) and otherwise keeps the sgemm calls.
constexpr int kDirectScores = 1024;

// The operands of one (sample, head): query row i at q + i * ldq, key / value row j at
// k / v + j * ldkv; output row i at y + i * C.
struct Head {
  const float* q;
  const float* k;
  const float* v;
  int ldq, ldkv;
  int b;
  uint64_t drop_base;  // dropout index of probability (0, 0)
  int drop_ld;         // dropout index stride of a query row (Tk_max)
};

Head head_of(const float* q, const float* kv, int b, int h, const AttentionDims& a,
             const AttentionCoords& coords) {
  const int hs = a.C / a.H;
  const int H_total = coords.H_total > 0 ? coords.H_total : a.H;
  const uint64_t Tq_max = static_cast<uint64_t>(coords.Tq_max > 0 ? coords.Tq_max : a.Tq);
  const int Tk_max = coords.Tk_max > 0 ? coords.Tk_max : a.Tk;
  Head hd;
  hd.ldq = a.ldq;
  hd.ldkv = a.ldkv;
  hd.q = q + static_cast<size_t>(b) * a.Tq * a.ldq + static_cast<size_t>(h) * hs;
  hd.k = kv + static_cast<size_t>(b) * a.Tk * a.ldkv + static_cast<size_t>(h) * hs;
  hd.v = hd.k + a.C;
  hd.b = b;
  const uint64_t plane = static_cast<uint64_t>((coords.sample0 + b) * H_total + coords.head0 + h);
  hd.drop_base = plane * Tq_max * static_cast<uint64_t>(Tk_max);
  hd.drop_ld = Tk_max;
  return hd;
}

// Softmax in place over the keys j < n of a row of width Tk; all j >= n become 0. A row
// without any visible key (n == 0, or only -inf scores) becomes all zeros.
void softmax_row(float* row, int n, int Tk) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  float mx = kNegInf;
#pragma omp simd reduction(max : mx)
  for (int j = 0; j < n; ++j) mx = std::max(mx, row[j]);
  if (mx == kNegInf) n = 0;
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int j = 0; j < n; ++j) {
    const float e = exp_vec(row[j] - mx);
    row[j] = e;
    sum += e;
  }
  const float inv = 1.0f / sum;
  for (int j = 0; j < n; ++j) row[j] *= inv;
  std::fill(row + n, row + Tk, 0.0f);
}

// One block of `rows` query rows against `cols` keys with loops: scores, softmax (visible keys
// as softmax_row), y [rows, hs] = P v.
void direct_block(float* P, float* y, const float* qi, const Head& hd, int rows, int cols, int hs,
                  float scale, const AttentionDims& a, int i0, int C) {
  for (int r = 0; r < rows; ++r) {
    float* p = P + static_cast<size_t>(r) * a.Tk;
    const float* q = qi + static_cast<size_t>(r) * hd.ldq;
    for (int j = 0; j < cols; ++j) {
      const float* k = hd.k + static_cast<size_t>(j) * hd.ldkv;
      float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
      for (int c = 0; c < hs; ++c) dot += q[c] * k[c];
      p[j] = scale * dot;
    }
    softmax_row(p, attention_visible_keys(a, hd.b, i0 + r), a.Tk);
    float* yr = y + static_cast<size_t>(r) * C;
    std::fill(yr, yr + hs, 0.0f);
    for (int j = 0; j < cols; ++j) {
      const float pj = p[j];
      const float* v = hd.v + static_cast<size_t>(j) * hd.ldkv;
#pragma omp simd
      for (int c = 0; c < hs; ++c) yr[c] += pj * v[c];
    }
  }
}

// The query rows of sample b that attend when the call selects rows (AttentionDims::q_rows):
// the kernels compute those alone, kRowBlock at a time, on compact copies of their q (and
// output gradient) rows.
std::vector<int> selected_rows(const AttentionDims& a, int b) {
  std::vector<int> rows;
  for (int i = 0; i < a.Tq; ++i)
    if (attention_visible_keys(a, b, i) > 0) rows.push_back(i);
  return rows;
}

// The keys some row of idx[0, n) sees.
int block_keys(const AttentionDims& a, int b, const int* idx, int n) {
  int cols = 0;
  for (int r = 0; r < n; ++r) cols = std::max(cols, attention_visible_keys(a, b, idx[r]));
  return cols;
}

// Scratch of the selected-rows path for one (sample, head), kRowBlock rows each: q rows,
// output (gradient) rows, probabilities, their gradient and their dropped-out copy.
struct RowWork {
  std::vector<float> q, y, P, dP, Pd;
  RowWork(int hs, int Tk)
      : q(static_cast<size_t>(kRowBlock) * hs),
        y(static_cast<size_t>(kRowBlock) * hs),
        P(static_cast<size_t>(kRowBlock) * Tk),
        dP(static_cast<size_t>(kRowBlock) * Tk),
        Pd(static_cast<size_t>(kRowBlock) * Tk) {}
};

// Forward of one (sample, head) of a call that selects rows: the other rows' probabilities
// and outputs are zero.
void forward_selected(float* att_bh, float* out_bh, const Head& hd, const AttentionDims& a,
                      float scale, const DropoutSpec& drop, RowWork& w) {
  const int Tk = a.Tk, C = a.C, hs = C / a.H;
  std::fill(att_bh, att_bh + static_cast<size_t>(a.Tq) * Tk, 0.0f);
  for (int i = 0; i < a.Tq; ++i) std::fill_n(out_bh + static_cast<size_t>(i) * C, hs, 0.0f);
  const std::vector<int> idx = selected_rows(a, hd.b);
  for (size_t r0 = 0; r0 < idx.size(); r0 += kRowBlock) {
    const int* id = idx.data() + r0;
    const int rows = static_cast<int>(std::min<size_t>(kRowBlock, idx.size() - r0));
    const int cols = block_keys(a, hd.b, id, rows);
    for (int r = 0; r < rows; ++r)
      std::copy_n(hd.q + static_cast<size_t>(id[r]) * hd.ldq, hs, w.q.data() + r * hs);
    float* P = w.P.data();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, hs, scale, w.q.data(), hs,
                hd.k, hd.ldkv, 0.0f, P, Tk);
    for (int r = 0; r < rows; ++r) {
      float* p = P + static_cast<size_t>(r) * Tk;
      softmax_row(p, attention_visible_keys(a, hd.b, id[r]), Tk);
      std::copy_n(p, Tk, att_bh + static_cast<size_t>(id[r]) * Tk);
      if (drop.p > 0.0f) {  // P becomes dropout(P); att keeps the probabilities
        float* m = w.Pd.data();
        dropout_scales(m, drop, hd.drop_base + static_cast<uint64_t>(id[r]) * hd.drop_ld, cols);
        for (int j = 0; j < cols; ++j) p[j] *= m[j];
      }
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hs, cols, 1.0f, P, Tk, hd.v,
                hd.ldkv, 0.0f, w.y.data(), hs);
    for (int r = 0; r < rows; ++r)
      std::copy_n(w.y.data() + r * hs, hs, out_bh + static_cast<size_t>(id[r]) * C);
  }
}

// Backward of one (sample, head) of a call that selects rows: the other rows pass no gradient.
// dq rows at dqh (stride ldq), dk and dv rows at dk, dv (stride ldkv) accumulate.
void backward_selected(float* dqh, float* dk, float* dv, const float* dout_bh, const float* att_bh,
                       const Head& hd, const AttentionDims& a, float scale, const DropoutSpec& drop,
                       RowWork& w) {
  const int Tk = a.Tk, C = a.C, hs = C / a.H;
  const std::vector<int> idx = selected_rows(a, hd.b);
  float *P = w.P.data(), *dP = w.dP.data(), *Pd = w.Pd.data(), *q = w.q.data(), *y = w.y.data();
  for (size_t r0 = 0; r0 < idx.size(); r0 += kRowBlock) {
    const int* id = idx.data() + r0;
    const int rows = static_cast<int>(std::min<size_t>(kRowBlock, idx.size() - r0));
    const int cols = block_keys(a, hd.b, id, rows);
    for (int r = 0; r < rows; ++r) {
      std::copy_n(dout_bh + static_cast<size_t>(id[r]) * C, hs, y + r * hs);
      std::copy_n(att_bh + static_cast<size_t>(id[r]) * Tk, cols, P + static_cast<size_t>(r) * Tk);
      std::copy_n(hd.q + static_cast<size_t>(id[r]) * hd.ldq, hs, q + r * hs);
    }
    // dP = dy v^T: the gradient w.r.t. the probabilities after dropout
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, hs, 1.0f, y, hs, hd.v, hd.ldkv,
                0.0f, dP, Tk);
    // dv += dropout(P)^T dy; with dropout, dP becomes the gradient before dropout
    const float* PdV = P;
    if (drop.p > 0.0f) {
      for (int r = 0; r < rows; ++r) {
        float* m = Pd + static_cast<size_t>(r) * Tk;
        float* g = dP + static_cast<size_t>(r) * Tk;
        const float* p = P + static_cast<size_t>(r) * Tk;
        dropout_scales(m, drop, hd.drop_base + static_cast<uint64_t>(id[r]) * hd.drop_ld, cols);
        for (int j = 0; j < cols; ++j) {
          g[j] *= m[j];
          m[j] *= p[j];
        }
      }
      PdV = Pd;
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cols, hs, rows, 1.0f, PdV, Tk, y, hs, 1.0f,
                dv, a.ldkv);
    // softmax backward in place: dS = P * (dP - sum_j P dP) over the visible keys
    for (int r = 0; r < rows; ++r) {
      const float* p = P + static_cast<size_t>(r) * Tk;
      float* g = dP + static_cast<size_t>(r) * Tk;
      const int n = attention_visible_keys(a, hd.b, id[r]);
      float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
      for (int j = 0; j < n; ++j) dot += p[j] * g[j];
      for (int j = 0; j < n; ++j) g[j] = p[j] * (g[j] - dot);
      std::fill(g + n, g + cols, 0.0f);
    }
    // dk [cols, hs] += dS^T q / sqrt(hs); dq rows += dS k / sqrt(hs)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cols, hs, rows, scale, dP, Tk, q, hs, 1.0f,
                dk, a.ldkv);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hs, cols, scale, dP, Tk, hd.k,
                hd.ldkv, 0.0f, y, hs);
    for (int r = 0; r < rows; ++r) {
      float* d = dqh + static_cast<size_t>(id[r]) * a.ldq;
      const float* src = y + r * hs;
      for (int c = 0; c < hs; ++c) d[c] += src[c];
    }
  }
}

}  // namespace

void attention_forward(float* out, float* att, const float* q, const float* kv,
                       const AttentionDims& a, const DropoutSpec& drop,
                       const AttentionCoords& coords) {
  blas_single_threaded();
  const int H = a.H, C = a.C, Tq = a.Tq, Tk = a.Tk;
  const int hs = C / H;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  const bool dropout = drop.p > 0.0f;
#pragma omp parallel for schedule(dynamic, 1)
  for (int bh = 0; bh < a.B * H; ++bh) {
    const int b = bh / H, h = bh % H;
    const Head hd = head_of(q, kv, b, h, a, coords);
    float* att_bh = att + static_cast<size_t>(bh) * Tq * Tk;
    float* out_bh = out + static_cast<size_t>(b) * Tq * C + static_cast<size_t>(h) * hs;
    if (a.q_rows) {
      RowWork work(hs, Tk);
      forward_selected(att_bh, out_bh, hd, a, scale, drop, work);
      continue;
    }
    const int Tqb = attention_query_rows(a, b);  // later rows see no key: zeros
    std::fill(att_bh + static_cast<size_t>(Tqb) * Tk, att_bh + static_cast<size_t>(Tq) * Tk, 0.0f);
    for (int i = Tqb; i < Tq; ++i) std::fill_n(out_bh + static_cast<size_t>(i) * C, hs, 0.0f);
    for (int i0 = 0; i0 < Tqb; i0 += kRowBlock) {
      const int rows = std::min(kRowBlock, Tqb - i0);
      // Keys that some row of the block can see (the visible keys grow with the row).
      const int cols = attention_visible_keys(a, b, i0 + rows - 1);
      float* P = att_bh + static_cast<size_t>(i0) * Tk;
      const float* qi = hd.q + static_cast<size_t>(i0) * hd.ldq;
      float* y = out_bh + static_cast<size_t>(i0) * C;
      if (cols == 0) {  // no query of the block sees a key: zero probabilities and output
        std::fill(P, P + static_cast<size_t>(rows) * Tk, 0.0f);
        for (int r = 0; r < rows; ++r) {
          float* yr = y + static_cast<size_t>(r) * C;
          std::fill(yr, yr + hs, 0.0f);
        }
        continue;
      }
      if (!dropout && rows * cols <= kDirectScores) {
        direct_block(P, y, qi, hd, rows, cols, hs, scale, a, i0, C);
        continue;
      }
      // scores [rows, cols] = q k^T / sqrt(hs), then the softmax of each row
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, hs, scale, qi, hd.ldq, hd.k,
                  hd.ldkv, 0.0f, P, Tk);
      for (int r = 0; r < rows; ++r)
        softmax_row(P + static_cast<size_t>(r) * Tk, attention_visible_keys(a, b, i0 + r), Tk);
      // y [rows, hs] = dropout(P) v
      if (!dropout) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hs, cols, 1.0f, P, Tk, hd.v,
                    hd.ldkv, 0.0f, y, C);
        continue;
      }
      for (int j0 = 0; j0 < cols; j0 += kColTile) {
        const int w = std::min(kColTile, cols - j0);
        float tile[kRowBlock * kColTile];  // dropout(P) for these rows and keys
        for (int r = 0; r < rows; ++r) {
          float* t = tile + r * w;
          const float* p = P + static_cast<size_t>(r) * Tk + j0;
          dropout_scales(t, drop, hd.drop_base + static_cast<uint64_t>(i0 + r) * hd.drop_ld + j0,
                         w);
          for (int j = 0; j < w; ++j) t[j] *= p[j];
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hs, w, 1.0f, tile, w,
                    hd.v + static_cast<size_t>(j0) * hd.ldkv, hd.ldkv, j0 == 0 ? 0.0f : 1.0f, y, C);
      }
    }
  }
}

void attention_backward(float* dq, float* dkv, float* datt, const float* dout, const float* q,
                        const float* kv, const float* att, const AttentionDims& a,
                        const DropoutSpec& drop, const AttentionCoords& coords) {
  blas_single_threaded();
  const int H = a.H, C = a.C, Tq = a.Tq, Tk = a.Tk;
  const int hs = C / H;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  const bool dropout = drop.p > 0.0f;
#pragma omp parallel for schedule(dynamic, 1)
  for (int bh = 0; bh < a.B * H; ++bh) {
    const int b = bh / H, h = bh % H;
    const Head hd = head_of(q, kv, b, h, a, coords);
    const size_t head_col = static_cast<size_t>(h) * hs;
    float* dqh = dq + static_cast<size_t>(b) * Tq * a.ldq + head_col;
    float* dk = dkv + static_cast<size_t>(b) * Tk * a.ldkv + head_col;
    float* dv = dk + C;
    const float* att_bh = att + static_cast<size_t>(bh) * Tq * Tk;
    float* datt_bh = datt + static_cast<size_t>(bh) * Tq * Tk;
    const float* dout_bh = dout + static_cast<size_t>(b) * Tq * C + head_col;
    if (a.q_rows) {
      RowWork work(hs, Tk);
      backward_selected(dqh, dk, dv, dout_bh, att_bh, hd, a, scale, drop, work);
      continue;
    }
    const int Tqb = attention_query_rows(a, b);  // later rows pass no gradient
    for (int i0 = 0; i0 < Tqb; i0 += kRowBlock) {
      const int rows = std::min(kRowBlock, Tqb - i0);
      const int cols = attention_visible_keys(a, b, i0 + rows - 1);
      if (cols == 0) continue;  // no key seen: no gradient
      const float* P = att_bh + static_cast<size_t>(i0) * Tk;
      float* dP = datt_bh + static_cast<size_t>(i0) * Tk;
      const float* dy = dout_bh + static_cast<size_t>(i0) * C;
      // dP [rows, cols] = dy v^T: the gradient w.r.t. the probabilities after dropout
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, hs, 1.0f, dy, C, hd.v,
                  hd.ldkv, 0.0f, dP, Tk);
      // dv [cols, hs] += dropout(P)^T dy; with dropout, dP becomes mask * scale * dP, the
      // gradient w.r.t. the probabilities before dropout
      if (!dropout) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cols, hs, rows, 1.0f, P, Tk, dy, C,
                    1.0f, dv, a.ldkv);
      } else {
        for (int j0 = 0; j0 < cols; j0 += kColTile) {
          const int w = std::min(kColTile, cols - j0);
          float tile[kRowBlock * kColTile];
          for (int r = 0; r < rows; ++r) {
            float* t = tile + r * w;
            const float* p = P + static_cast<size_t>(r) * Tk + j0;
            float* g = dP + static_cast<size_t>(r) * Tk + j0;
            dropout_scales(t, drop, hd.drop_base + static_cast<uint64_t>(i0 + r) * hd.drop_ld + j0,
                           w);
            for (int j = 0; j < w; ++j) {
              g[j] *= t[j];
              t[j] *= p[j];
            }
          }
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, w, hs, rows, 1.0f, tile, w, dy, C,
                      1.0f, dv + static_cast<size_t>(j0) * a.ldkv, a.ldkv);
        }
      }
      // softmax backward in place: dS = P * (dP - sum_j P dP) over the visible keys
      for (int r = 0; r < rows; ++r) {
        const float* p = P + static_cast<size_t>(r) * Tk;
        float* g = dP + static_cast<size_t>(r) * Tk;
        const int n = attention_visible_keys(a, b, i0 + r);
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int j = 0; j < n; ++j) dot += p[j] * g[j];
        for (int j = 0; j < n; ++j) g[j] = p[j] * (g[j] - dot);
        std::fill(g + n, g + cols, 0.0f);
      }
      // dq [rows, hs] += dS k / sqrt(hs); dk [cols, hs] += dS^T q / sqrt(hs)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hs, cols, scale, dP, Tk, hd.k,
                  hd.ldkv, 1.0f, dqh + static_cast<size_t>(i0) * a.ldq, a.ldq);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cols, hs, rows, scale, dP, Tk,
                  hd.q + static_cast<size_t>(i0) * hd.ldq, hd.ldq, 1.0f, dk, a.ldkv);
    }
  }
}

// Folded cross-attention (FoldedCrossDims). Layout of the folded memory of `sources` sources:
// qk [H, sources * Tk, C], then vo [H, sources * Tk, Cout], then qb [H, sources * Tk]; head h
// of source b at row h * sources * Tk + b * Tk. Folding is two sgemm calls per head over every
// source's keys at once. A step, per query group: the scores of blocks of 4 query rows x 2 keys,
// dot products over C in 8-float vectors; softmax per head as softmax_row; then the output in
// blocks of 4 rows x 24 channels, the probabilities times the rows of vo added in (head, key)
// order, and the bias last. A row's result depends on that row and its source alone.
namespace {

constexpr int kFoldRows = 4;  // query rows of a block
constexpr int kFoldKeys = 2;  // keys of a score block
constexpr int kFoldVecs = 3;  // 8-float vectors of an output block

float sum8(f8 v) {
  float a[8];
  std::memcpy(a, &v, sizeof a);
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

// s[r][i] = x[r] . w[i] over C, for kFoldRows rows and kFoldKeys keys.
void score_block(float s[kFoldRows][kFoldKeys], const float* const x[kFoldRows],
                 const float* const w[kFoldKeys], int C) {
  f8 acc[kFoldRows][kFoldKeys] = {};
  const int C8 = C / 8 * 8;
  for (int c = 0; c < C8; c += 8) {
    f8 wv[kFoldKeys];
    for (int i = 0; i < kFoldKeys; ++i) wv[i] = load8(w[i] + c);
    for (int r = 0; r < kFoldRows; ++r) {
      const f8 xv = load8(x[r] + c);
      for (int i = 0; i < kFoldKeys; ++i) acc[r][i] += xv * wv[i];
    }
  }
  for (int r = 0; r < kFoldRows; ++r)
    for (int i = 0; i < kFoldKeys; ++i) {
      float t = sum8(acc[r][i]);
      for (int c = C8; c < C; ++c) t += x[r][c] * w[i][c];
      s[r][i] = t;
    }
}

// y[r][0, 8 V) = bias[0, 8 V) (null: 0) + the sum over keys k < n of p[r][k] * v[k][0, 8 V),
// for kFoldRows rows; y, bias and v point at the block's first channel (v[k] + c0).
template <int V>
void output_block(float* const y[kFoldRows], const float* const p[kFoldRows], const float* const* v,
                  int n, int c0, const float* bias) {
  f8 acc[kFoldRows][V] = {};
  for (int k = 0; k < n; ++k) {
    f8 vv[V];
    for (int u = 0; u < V; ++u) vv[u] = load8(v[k] + c0 + 8 * u);
    for (int r = 0; r < kFoldRows; ++r) {
      const f8 pv = splat(p[r][k]);
      for (int u = 0; u < V; ++u) acc[r][u] += pv * vv[u];
    }
  }
  for (int r = 0; r < kFoldRows; ++r) {
    float out[8 * V];
    std::memcpy(out, acc[r], sizeof out);
    for (int c = 0; c < 8 * V; ++c) y[r][c] = bias ? out[c] + bias[c0 + c] : out[c];
  }
}

}  // namespace

size_t folded_cross_floats(const FoldedCrossDims& d) {
  const size_t rows = static_cast<size_t>(d.H) * static_cast<size_t>(d.B) * d.Tk;
  return rows * static_cast<size_t>(d.C + d.Cout + 1);
}

void fold_cross_memory(float* folded, const float* kv, const float* wq, const float* bq,
                       const float* wo, const FoldedCrossDims& d) {
  if (d.B <= 0 || d.Tk <= 0) return;
  blas_single_threaded();
  const int H = d.H, hs = d.hs, C = d.C, Co = d.Cout, keys = d.B * d.Tk;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  float* qk = folded;
  float* vo = qk + static_cast<size_t>(H) * keys * C;
  float* qb = vo + static_cast<size_t>(H) * keys * Co;
#pragma omp parallel for schedule(static)
  for (int h = 0; h < H; ++h) {
    const float* k = kv + static_cast<size_t>(h) * hs;
    const float* v = k + static_cast<size_t>(H) * hs;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, keys, C, hs, scale, k, d.ldkv,
                wq + static_cast<size_t>(h) * hs * C, C, 0.0f,
                qk + static_cast<size_t>(h) * keys * C, C);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, keys, Co, hs, 1.0f, v, d.ldkv,
                wo + static_cast<size_t>(h) * hs, H * hs, 0.0f,
                vo + static_cast<size_t>(h) * keys * Co, Co);
    for (int j = 0; j < keys; ++j) {
      float sum = 0.0f;
      if (bq)
        for (int c = 0; c < hs; ++c)
          sum += k[static_cast<size_t>(j) * d.ldkv + c] * bq[static_cast<size_t>(h) * hs + c];
      qb[static_cast<size_t>(h) * keys + j] = scale * sum;
    }
  }
}

void folded_cross_attention(float* y, const float* x, const float* folded, const float* bias,
                            const FoldedCrossDims& d, int b_begin, int b_end) {
  const int H = d.H, Tk = d.Tk, C = d.C, Co = d.Cout, beams = d.beams, R = H * Tk;
  const size_t keys = static_cast<size_t>(d.sources > 0 ? d.sources : d.B) * Tk;
  const float* qk = folded;
  const float* vo = qk + static_cast<size_t>(H) * keys * C;
  const float* qb = vo + static_cast<size_t>(H) * keys * Co;
#pragma omp parallel for schedule(static)
  for (int b = b_begin; b < b_end; ++b) {
    thread_local std::vector<float> P;
    thread_local std::vector<const float*> krow, vrow;
    P.resize(static_cast<size_t>(beams) * R);
    krow.resize(static_cast<size_t>(R));
    vrow.resize(static_cast<size_t>(R));
    const size_t src = static_cast<size_t>(d.source ? d.source[b] : b);
    const int n = std::clamp(d.key_len ? d.key_len[b] : Tk, 0, Tk);
    // The visible keys of every head, adjacent: key h * n + j is (h, j).
    for (int h = 0; h < H; ++h)
      for (int j = 0; j < n; ++j) {
        const size_t row = static_cast<size_t>(h) * keys + src * Tk + static_cast<size_t>(j);
        krow[static_cast<size_t>(h * n + j)] = qk + row * C;
        vrow[static_cast<size_t>(h * n + j)] = vo + row * Co;
      }
    const int m = H * n;  // visible (head, key) pairs
    const size_t x0 = static_cast<size_t>(b) * beams;
    for (int r0 = 0; r0 < beams; r0 += kFoldRows) {
      const int rows = std::min(kFoldRows, beams - r0);
      const float* xr[kFoldRows];
      float* pr[kFoldRows];
      float* yr[kFoldRows];
      float spare[kFoldRows][8 * kFoldVecs];  // rows past the last: their outputs, discarded
      for (int r = 0; r < kFoldRows; ++r) {
        const int row = r0 + std::min(r, rows - 1);
        xr[r] = x + (x0 + static_cast<size_t>(row)) * C;
        pr[r] = P.data() + static_cast<size_t>(row) * R;
        yr[r] = r < rows ? y + (x0 + static_cast<size_t>(r0 + r)) * Co : nullptr;
      }
      for (int i0 = 0; i0 < m; i0 += kFoldKeys) {
        const float* w[kFoldKeys];
        for (int i = 0; i < kFoldKeys; ++i)
          w[i] = krow[static_cast<size_t>(std::min(i0 + i, m - 1))];
        float s[kFoldRows][kFoldKeys];
        score_block(s, xr, w, C);
        for (int r = 0; r < rows; ++r)
          for (int i = 0; i < kFoldKeys && i0 + i < m; ++i) {
            const int h = (i0 + i) / n, j = (i0 + i) % n;
            pr[r][i0 + i] = s[r][i] + qb[static_cast<size_t>(h) * keys + src * Tk + j];
          }
      }
      for (int r = 0; r < rows; ++r)
        for (int h = 0; h < H; ++h) softmax_row(pr[r] + h * n, n, n);
      // Outputs: 24 channels at a time, then 8, then one by one.
      const float* pc[kFoldRows];
      for (int r = 0; r < kFoldRows; ++r) pc[r] = pr[r];
      int c0 = 0;
      float* yo[kFoldRows];
      auto outputs = [&](auto block, int width) {
        for (; c0 + width <= Co; c0 += width) {
          for (int r = 0; r < kFoldRows; ++r) yo[r] = yr[r] ? yr[r] + c0 : spare[r];
          block(yo, pc, vrow.data(), m, c0, bias);
        }
      };
      outputs(output_block<kFoldVecs>, 8 * kFoldVecs);
      outputs(output_block<1>, 8);
      for (; c0 < Co; ++c0)
        for (int r = 0; r < rows; ++r) {
          float t = 0.0f;
          for (int k = 0; k < m; ++k) t += pr[r][k] * vrow[static_cast<size_t>(k)][c0];
          yr[r][c0] = bias ? t + bias[c0] : t;
        }
    }
  }
}

}  // namespace ph::cpu

// Times the CPU kernels at the `small` GPT shapes (B=16, T=256, C=384, H=6, FFN 1536, V=256):
// milliseconds per call of each op's forward and backward, an estimate of one training step
// built from them (6 layers), and sgemm throughput for a 4096x1536x384 GEMM.
//
//   bench_kernels [repetitions]      (default 20; each figure is the median, min in brackets)
//
// State the environment with the numbers: OMP_NUM_THREADS, OPENBLAS_CORETYPE and
// OPENBLAS_L2_SIZE are printed first. The machine may be shared: the minimum is the figure
// least disturbed by other processes.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cpu/activation.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/blas_threads.h"
#include "kernels/cpu/crossentropy.h"
#include "kernels/cpu/dropout.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/layernorm.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/optimizer.h"
#include "kernels/cpu/residual.h"

namespace {

using namespace ph;

constexpr int B = 16, T = 256, C = 384, H = 6, F = 1536, V = 256, L = 6;
constexpr int N = B * T;

int reps = 20;

struct Timing {
  double median = 0.0, min = 0.0;
};

Timing time_ms(const std::function<void()>& fn) {
  fn();  // warm up: first touch of the buffers, OpenBLAS buffers, thread start
  std::vector<double> t(static_cast<size_t>(reps));
  for (double& x : t) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    x = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  std::sort(t.begin(), t.end());
  return {t[t.size() / 2], t.front()};
}

std::vector<float> filled(size_t n, float amplitude) {
  std::vector<float> v(n);
  uint32_t s = 12345u;
  for (float& x : v) {
    s = s * 1664525u + 1013904223u;  // LCG: cheap, deterministic test data
    x = amplitude * (static_cast<float>(s >> 8) * (1.0f / 8388608.0f) - 1.0f);
  }
  return v;
}

const char* env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v ? v : fallback;
}

void print_row(const std::string& name, Timing fwd, Timing bwd) {
  std::printf("%-26s %8.3f [%7.3f] %8.3f [%7.3f] %8.3f\n", name.c_str(), fwd.median, fwd.min,
              bwd.median, bwd.min, fwd.median + bwd.median);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) reps = std::max(1, std::atoi(argv[1]));
  std::printf("bench_kernels: B=%d T=%d C=%d H=%d FFN=%d V=%d, %d repetitions\n", B, T, C, H, F, V,
              reps);
  std::printf("OMP threads %d, OMP_NUM_THREADS=%s OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s\n\n",
              omp_get_max_threads(), env_or("OMP_NUM_THREADS", "(unset)"),
              env_or("OPENBLAS_CORETYPE", "(unset)"), env_or("OPENBLAS_L2_SIZE", "(unset)"));

  const size_t NC = static_cast<size_t>(N) * C, NF = static_cast<size_t>(N) * F;
  const size_t att_n = static_cast<size_t>(B) * H * T * T;
  std::vector<int32_t> tokens(N);
  for (int i = 0; i < N; ++i) tokens[static_cast<size_t>(i)] = (i * 7919) % V;
  const std::vector<float> wte = filled(static_cast<size_t>(V) * C, 0.02f);
  const std::vector<float> wpe = filled(static_cast<size_t>(T) * C, 0.02f);
  const std::vector<float> x = filled(NC, 1.0f), dy = filled(NC, 0.01f);
  const std::vector<float> lnw = filled(C, 1.0f), lnb = filled(C, 0.1f);
  const std::vector<float> w_big = filled(static_cast<size_t>(F) * C, 0.02f);  // largest weight
  const std::vector<float> bias = filled(F, 0.01f);
  const std::vector<float> qkv = filled(3 * NC, 1.0f), h_in = filled(NF, 2.0f);
  const std::vector<float> dh = filled(NF, 0.01f);
  std::vector<float> out(NF), dx(NF, 0.0f);  // NF >= 3 NC: big enough for every op
  std::vector<float> dwte(wte.size()), dwpe(wpe.size());
  std::vector<float> mean(N), rstd(N), dlnw(C), dlnb(C), dw(w_big.size()), db(F);
  std::vector<float> att(att_n), datt(att_n), hout(NF), dhin(NF, 0.0f);
  std::vector<float> logits(static_cast<size_t>(N) * V), losses(N);
  const std::vector<float> logits0 = filled(logits.size(), 4.0f);
  std::vector<int32_t> targets(N);
  for (int i = 0; i < N; ++i) targets[static_cast<size_t>(i)] = (i * 31) % V;

  DropoutSpec no_drop, drop;
  drop.p = 0.1f;
  drop.seed = 1;
  drop.step = 1;
  drop.site = 1;
  DropoutBlock rows;  // B samples of T positions
  rows.T = T;
  rows.T_max = T;
  rows.global_cols = C;
  AttentionCoords coords;
  AttentionDims self;  // causal self-attention on the fused q|k|v buffer [N, 3C]
  self.B = B;
  self.Tq = self.Tk = T;
  self.C = C;
  self.H = H;
  self.ldq = self.ldkv = 3 * C;
  self.causal = true;
  const float* q = qkv.data();
  const float* kv = qkv.data() + C;

  std::printf("%-26s %19s %19s %8s\n", "op (ms per call)", "forward [min]", "backward [min]",
              "sum");
  // Medians summed into the step estimate: per layer, and once per step (embedding, lnf, head).
  double layer = 0.0, once = 0.0;
  auto row = [&](const std::string& name, const std::function<void()>& f,
                 const std::function<void()>& b) {
    const Timing tf = time_ms(f), tb = time_ms(b);
    print_row(name, tf, tb);
    return tf.median + tb.median;
  };
  auto matmul_row = [&](const std::string& name, int IC, int OC, bool with_bias) {
    const float* in = IC == C ? x.data() : h_in.data();
    const float* bp = with_bias ? bias.data() : nullptr;
    float* dbp = with_bias ? db.data() : nullptr;
    return row(
        name, [&] { cpu::matmul_forward(out.data(), in, w_big.data(), bp, N, IC, OC); },
        [&] {
          cpu::matmul_backward(dx.data(), dw.data(), dbp, dh.data(), in, w_big.data(), N, IC, OC);
        });
  };

  once += row(
      "embedding (wte+wpe)",
      [&] {
        cpu::embedding_forward(out.data(), tokens.data(), wte.data(), wpe.data(), B, T, C, 0, V,
                               1.0f);
      },
      [&] {
        cpu::embedding_backward(dwte.data(), dwpe.data(), dy.data(), tokens.data(), B, T, C, 0, V,
                                1.0f);
      });
  const double ln = row(
      "layernorm [N,C]",
      [&] {
        cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), lnw.data(),
                               lnb.data(), N, C);
      },
      [&] {
        cpu::layernorm_backward(dx.data(), dlnw.data(), dlnb.data(), dy.data(), x.data(),
                                lnw.data(), mean.data(), rstd.data(), N, C);
      });
  layer += 2.0 * ln;  // ln1, ln2
  once += ln;         // lnf
  layer += matmul_row("matmul qkv C->3C", C, 3 * C, true);
  layer += row(
      "attention causal",
      [&] { cpu::attention_forward(out.data(), att.data(), q, kv, self, no_drop, coords); },
      [&] {
        cpu::attention_backward(dx.data(), dx.data() + C, datt.data(), dy.data(), q, kv, att.data(),
                                self, no_drop, coords);
      });
  row(
      "attention causal, p=0.1",
      [&] { cpu::attention_forward(out.data(), att.data(), q, kv, self, drop, coords); },
      [&] {
        cpu::attention_backward(dx.data(), dx.data() + C, datt.data(), dy.data(), q, kv, att.data(),
                                self, drop, coords);
      });
  layer += matmul_row("matmul attn proj C->C", C, C, true);
  layer += matmul_row("matmul fc C->4C", C, F, true);
  layer += row(
      "gelu [N,4C]", [&] { cpu::gelu_forward(hout.data(), h_in.data(), NF); },
      [&] { cpu::gelu_backward(dhin.data(), h_in.data(), dh.data(), NF); });
  layer += matmul_row("matmul fc proj 4C->C", F, C, true);
  // Two residual connections per layer; backward: nothing (the gradient flows through to both
  // branches unchanged).
  layer += 2.0 * row(
                     "residual [N,C] (bwd: none)",
                     [&] { cpu::residual_forward(out.data(), x.data(), dy.data(), NC); }, [] {});
  row(
      "dropout [N,C], p=0.1", [&] { cpu::dropout_forward(out.data(), x.data(), N, C, drop, rows); },
      [&] { cpu::dropout_backward(dx.data(), dy.data(), N, C, drop, rows); });
  once += matmul_row("matmul lm head C->V", C, V, false);
  row(
      "crossentropy (bwd: fused)",
      [&] {
        cpu::crossentropy_forward(losses.data(), logits0.data(), targets.data(), N, V, V, -100,
                                  0.0f);
      },
      [&] {
        std::copy(logits0.begin(), logits0.end(), logits.begin());
        cpu::crossentropy_fused(logits.data(), losses.data(), targets.data(), N, V, V, -100, 0.0f,
                                1.0f / N);
      });
  row(
      "crossentropy, smoothing 0.1",
      [&] {
        cpu::crossentropy_forward(losses.data(), logits0.data(), targets.data(), N, V, V, -100,
                                  0.1f);
      },
      [&] {
        std::copy(logits0.begin(), logits0.end(), logits.begin());
        cpu::crossentropy_fused(logits.data(), losses.data(), targets.data(), N, V, V, -100, 0.1f,
                                1.0f / N);
      });
  once += time_ms([&] {
            std::copy(logits0.begin(), logits0.end(), logits.begin());
            cpu::crossentropy_fused(logits.data(), losses.data(), targets.data(), N, V, V, -100,
                                    0.0f, 1.0f / N);
          }).median;

  // Optimizer over the parameter count of the 6-layer model.
  const size_t P =
      static_cast<size_t>(L) * (12 * C * C + 13 * C) + 2 * static_cast<size_t>(V) * C + 2 * C;
  std::vector<float> params = filled(P, 0.02f), grads = filled(P, 0.001f), m(P, 0.0f), v(P, 0.0f);
  AdamWParams a{1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.1f, 0.01f, 1.0f};
  const Timing adamw =
      time_ms([&] { cpu::adamw_update(params.data(), grads.data(), m.data(), v.data(), P, a); });
  double sq = 0.0;
  const Timing norm = time_ms([&] { sq += cpu::sum_squares(grads.data(), P); });
  const Timing finite = time_ms([&] { sq += cpu::all_finite(grads.data(), P) ? 1.0 : 0.0; });
  std::printf("%-26s %8.3f [%7.3f]   (%zu parameters)\n", "adamw_update", adamw.median, adamw.min,
              P);
  std::printf("%-26s %8.3f [%7.3f]\n", "sum_squares", norm.median, norm.min);
  std::printf("%-26s %8.3f [%7.3f]\n", "all_finite", finite.median, finite.min);

  const double step = L * layer + once + adamw.median + norm.median + finite.median;
  std::printf(
      "\nestimated step, dropout off (%d layers x %.2f ms + embedding, lnf, head, loss "
      "%.2f ms + optimizer): %.1f ms = %.0f tokens/s\n",
      L, layer, once, step, static_cast<double>(N) / (step * 1e-3));

  // sgemm throughput, 4096x1536x384, as matmul_forward runs it and as one OpenBLAS call.
  const double flop = 2.0 * N * F * C;
  const Timing g_blocks =
      time_ms([&] { cpu::matmul_forward(hout.data(), x.data(), w_big.data(), nullptr, N, C, F); });
  openblas_set_num_threads(omp_get_max_threads());
  const Timing g_blas = time_ms([&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, F, C, 1.0f, x.data(), C, w_big.data(),
                C, 0.0f, hout.data(), F);
  });
  cpu::blas_single_threaded();
  std::printf(
      "\nsgemm %dx%dx%d: %.1f GFLOP/s as matmul_forward (OpenMP blocks, best %.1f), "
      "%.1f GFLOP/s as one OpenBLAS call on %d threads (best %.1f)\n",
      N, F, C, flop / (g_blocks.median * 1e6), flop / (g_blocks.min * 1e6),
      flop / (g_blas.median * 1e6), omp_get_max_threads(), flop / (g_blas.min * 1e6));
  return sq > 0.0 ? 0 : 1;  // uses the results so that nothing is optimised away
}

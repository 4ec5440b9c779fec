#include "trainer/device_peak.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <sstream>
#include <vector>

namespace ph {

namespace {

struct GpuPeak {
  const char* model;    // a word of the device name
  const char* variant;  // another word it must also have; "" for any
  double bf16, fp32;    // dense TFLOP/s
};

// Specific variants before the model's default entry.
constexpr GpuPeak kGpuPeaks[] = {
    {"H100", "PCIe", 756, 51}, {"H100", "NVL", 835, 60}, {"H100", "", 989, 67},
    {"H200", "NVL", 835, 60},  {"H200", "", 989, 67},    {"GH200", "", 989, 67},
    {"A100", "", 312, 19.5},   {"A10", "", 125, 31.2},   {"L4", "", 121, 30.3},
    {"L40S", "", 362, 91.6},
};

// The words of a device name, split at spaces and dashes ("NVIDIA A100-SXM4-80GB": NVIDIA,
// A100, SXM4, 80GB), so that A10 does not match A100.
std::vector<std::string> words_of(const std::string& name) {
  std::vector<std::string> words;
  std::string w;
  std::istringstream in(name);
  while (std::getline(in, w, ' ')) {
    std::istringstream parts(w);
    std::string part;
    while (std::getline(parts, part, '-'))
      if (!part.empty()) words.push_back(part);
  }
  return words;
}

}  // namespace

double peak_sgemm_flops(int threads, int calls) {
  const int n = 2048;
  const size_t nn = static_cast<size_t>(n) * n;
  std::vector<float> a(nn), b(nn), c(nn, 0.0f);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (size_t i = 0; i < nn; ++i) {
    a[i] = u(rng);
    b[i] = u(rng);
  }
  const int before = openblas_get_num_threads();
  openblas_set_num_threads(threads);
  double best = 1e30;
  for (int call = 0; call < calls; ++call) {
    const auto t0 = std::chrono::steady_clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a.data(), n, b.data(), n,
                0.0f, c.data(), n);
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  openblas_set_num_threads(before);
  return 2.0 * n * static_cast<double>(n) * n / best;
}

double gpu_peak_tflops(const std::string& device_name, Precision precision) {
  const std::vector<std::string> words = words_of(device_name);
  const auto has = [&](const char* w) {
    return std::find(words.begin(), words.end(), w) != words.end();
  };
  for (const GpuPeak& p : kGpuPeaks)
    if (has(p.model) && (*p.variant == '\0' || has(p.variant)))
      return precision == Precision::kBf16 ? p.bf16 : p.fp32;
  return 0.0;
}

DevicePeak device_peak(const Config& cfg, const Backend& backend) {
  const char* precision = cfg.runtime.precision == Precision::kBf16 ? "bf16" : "fp32";
  char buf[256];
  if (cfg.runtime.peak_tflops > 0) {
    std::snprintf(buf, sizeof buf, "runtime.peak_tflops = %g", cfg.runtime.peak_tflops);
    return {cfg.runtime.peak_tflops * 1e12, buf};
  }
  if (backend.device() == Device::Cpu) {
    const int threads = omp_get_max_threads();
    std::snprintf(buf, sizeof buf, "best of 3 sgemm 2048^3 at start-up, %d thread%s", threads,
                  threads > 1 ? "s" : "");
    return {peak_sgemm_flops(threads, 3), buf};
  }
  const std::string name = backend.device_name();
  const double tflops = gpu_peak_tflops(name, cfg.runtime.precision);
  if (tflops <= 0)
    return {0.0, "no known " + std::string(precision) + " peak for " + name +
                     ": set runtime.peak_tflops to report MFU"};
  std::snprintf(buf, sizeof buf, "%s dense %s peak of the %s", precision,
                precision[0] == 'b' ? "tensor-core" : "non-tensor-core", name.c_str());
  return {tflops * 1e12, buf};
}

}  // namespace ph

// The peak FLOP/s of the device a rank computes on, the denominator of MFU:
// runtime.peak_tflops when it is set (> 0); else, on the CPU backend, the best of three
// 2048 x 2048 x 2048 sgemm calls measured at start-up (OpenBLAS on the rank's threads); else,
// on the CUDA backend, the dense peak of the device's model from a table (gpu_peak_tflops).
#pragma once
#include <string>

#include "io/config.h"
#include "kernels/backend.h"

namespace ph {

struct DevicePeak {
  double flops = 0.0;  // FLOP/s; 0: unknown (a GPU missing from the table)
  std::string source;  // how it was found, for the start-up line
};

// Best FLOP/s of `calls` 2048^3 cblas_sgemm calls (the first one warms up), with OpenBLAS running
// `threads` threads (its thread count is restored afterwards). Allocates 48 MiB, freed on return.
// bench_train takes the best of 5 calls, the trainer the best of 3 (~0.3 s on 2 idle cores).
double peak_sgemm_flops(int threads, int calls);

// The dense peak TFLOP/s of a GPU named `device_name` (as cudaGetDeviceProperties reports it,
// "NVIDIA H100 80GB HBM3") for runtime.precision: bf16 on tensor cores, or fp32 without them
// (the CUDA backend's fp32 GEMMs use no TF32); 0 when the model is not in the table.
//   H100 SXM, H200, GH200: 989 bf16, 67 fp32     H100 PCIe: 756, 51     H100/H200 NVL: 835, 60
//   A100: 312, 19.5     A10: 125, 31.2     L4: 121, 30.3     L40S: 362, 91.6
double gpu_peak_tflops(const std::string& device_name, Precision precision);

// This rank's peak, chosen as the header says. On the CPU it runs peak_sgemm_flops with
// OpenMP's thread count.
DevicePeak device_peak(const Config& cfg, const Backend& backend);

}  // namespace ph

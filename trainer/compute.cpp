#include "trainer/compute.h"

#include <cstdio>
#include <utility>

#ifdef POLYHEAD_HAVE_CUDA
#include "kernels/cuda/backend.h"
#include "kernels/cuda/device.h"
#endif

namespace ph {

namespace {

std::function<std::unique_ptr<Backend>()>& cpu_factory() {
  static std::function<std::unique_ptr<Backend>()> f;
  return f;
}

bool use_cuda(const Config& cfg) {
  return cfg.runtime.device == "cuda" ||
         (cfg.runtime.device == "auto" && cuda_unavailable().empty());
}

}  // namespace

std::string cuda_unavailable() {
#ifdef POLYHEAD_HAVE_CUDA
  const cuda::DeviceInfo info = cuda::probe_cuda_devices();
  return info.count > 0 ? std::string() : info.error;
#else
  return "no CUDA device: this build has no CUDA backend (configure with nvcc on PATH)";
#endif
}

void check_device(const Config& cfg) {
  if (cfg.runtime.precision != "fp32")
    throw InputError("runtime.precision=" + cfg.runtime.precision +
                     ": bf16 mixed precision is not implemented yet; use runtime.precision=fp32");
  if (cfg.runtime.device == "cpu") return;
  const std::string why = cuda_unavailable();
  if (why.empty()) return;
  if (cfg.runtime.device == "cuda") throw InputError("runtime.device=cuda: " + why);
  std::printf("runtime.device=auto: %s; running on the CPU\n", why.c_str());
}

Compute make_compute(const Config& cfg, const ProcessGrid& grid) {
  Compute c;
  if (!use_cuda(cfg)) {
    c.backend = cpu_factory() ? cpu_factory()() : make_cpu_backend();
    c.tp = grid.tp_comm.get();
    c.dp = grid.dp_comm.get();
    return c;
  }
#ifdef POLYHEAD_HAVE_CUDA
  if (grid.world > 1)
    throw InputError(
        "runtime.device=cuda: more than one rank needs the NCCL communicator, which this "
        "version does not wire in yet; run one rank per job or use runtime.device=cpu");
  c.backend = cuda::make_cuda_backend(grid.local_rank);
  c.tp = grid.tp_comm.get();
  c.dp = grid.dp_comm.get();
  return c;
#else
  throw InputError("runtime.device=cuda: " + cuda_unavailable());
#endif
}

void set_cpu_backend_factory(std::function<std::unique_ptr<Backend>()> factory) {
  cpu_factory() = std::move(factory);
}

}  // namespace ph

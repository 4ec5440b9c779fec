#include "trainer/compute.h"

#include <cstdio>
#include <stdexcept>
#include <utility>

#ifdef POLYHEAD_HAVE_CUDA
#include "kernels/cuda/backend.h"
#include "kernels/cuda/device.h"
#include "parallel/mpi_communicator.h"
#include "parallel/nccl/nccl_communicator.h"
#endif

namespace ph {

namespace {

std::function<std::unique_ptr<Backend>(GemmPrecision)>& cpu_factory() {
  static std::function<std::unique_ptr<Backend>(GemmPrecision)> f;
  return f;
}

GemmPrecision gemm_precision(const Config& cfg) {
  return cfg.runtime.precision == Precision::kBf16 ? GemmPrecision::Bf16 : GemmPrecision::Fp32;
}

bool use_cuda(const Config& cfg) {
  return cfg.runtime.device == DeviceChoice::kCuda ||
         (cfg.runtime.device == DeviceChoice::kAuto && cuda_unavailable().empty());
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
  if (cfg.runtime.device == DeviceChoice::kCpu) return;
  const std::string why = cuda_unavailable();
  if (why.empty()) return;
  if (cfg.runtime.device == DeviceChoice::kCuda) throw InputError("runtime.device=cuda: " + why);
  std::printf("runtime.device=auto: %s; running on the CPU\n", why.c_str());
}

Compute make_compute(const Config& cfg, const ProcessGrid& grid) {
  Compute c;
  // Every rank must take the same path (their collectives pair up): with runtime.device=auto a
  // node without a usable GPU would otherwise run the CPU backend among GPU ranks.
  const int64_t cuda = use_cuda(cfg) ? 1 : 0;
  int64_t range[2] = {cuda, -cuda};  // max, -min
  if (grid.world > 1) grid.world_comm->all_reduce(range, 2, ReduceOp::Max);
  if (range[0] != -range[1])
    throw InputError("runtime.device=" + name_of(cfg.runtime.device) +
                     ": some ranks found a usable GPU and others did not; give every node GPUs "
                     "or set runtime.device=cpu");
  if (!cuda) {
    const GemmPrecision p = gemm_precision(cfg);
    c.backend = cpu_factory() ? cpu_factory()(p) : make_cpu_backend(p);
    c.tp = grid.tp_comm.get();
    c.dp = grid.dp_comm.get();
    return c;
  }
#ifdef POLYHEAD_HAVE_CUDA
  // One GPU per rank: local rank r of a node takes device r mod count (NCCL refuses two
  // ranks of one communicator on the same device).
  c.backend = cuda::make_cuda_backend(grid.local_rank, gemm_precision(cfg));
  cudaStream_t stream = cuda::compute_stream(*c.backend);
  // An NCCL communicator per group of more than one rank, bootstrapped over the group's MPI
  // communicator; every rank creates them in the same order (tp, then dp). A group of one
  // rank never carries device data (the model and trainer skip collectives over it).
  auto nccl_over = [&](const std::unique_ptr<Communicator>& group) {
    const auto* mpi = dynamic_cast<const MpiCommunicator*>(group.get());
    if (!mpi) throw std::logic_error("make_compute: the grid's groups must be MPI communicators");
    return std::make_unique<NcclCommunicator>(mpi->comm(), stream,
                                              static_cast<double>(cfg.runtime.comm_timeout));
  };
  if (grid.tp > 1) c.owned_tp = nccl_over(grid.tp_comm);
  if (grid.dp > 1) c.owned_dp = nccl_over(grid.dp_comm);
  c.tp = c.owned_tp ? c.owned_tp.get() : grid.tp_comm.get();
  c.dp = c.owned_dp ? c.owned_dp.get() : grid.dp_comm.get();
  return c;
#else
  throw InputError("runtime.device=cuda: " + cuda_unavailable());
#endif
}

void set_cpu_backend_factory(std::function<std::unique_ptr<Backend>(GemmPrecision)> factory) {
  cpu_factory() = std::move(factory);
}

}  // namespace ph

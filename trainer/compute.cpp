#include "trainer/compute.h"

#include <cstdio>
#include <stdexcept>
#include <utility>

#ifdef POLYHEAD_HAVE_CUDA
#include "kernels/cuda/backend.h"
#include "kernels/cuda/device.h"
#include "parallel/agreement.h"
#include "parallel/mpi_communicator.h"
#include "parallel/nccl/nccl_communicator.h"
#include "trainer/gpu_placement.h"
#endif

namespace ph {

namespace {

std::function<std::unique_ptr<Backend>(GemmPrecision)>& cpu_factory() {
  static std::function<std::unique_ptr<Backend>(GemmPrecision)> f;
  return f;
}

#ifdef POLYHEAD_HAVE_CUDA
// One GPU per rank, checked on every rank alike before anything is made on a GPU: a rank
// without a GPU, or two ranks of a node on one GPU (more ranks than GPUs), is an InputError
// thrown by every rank (trainer/gpu_placement.h).
void check_one_gpu_per_rank(const Config& cfg, const ProcessGrid& grid) {
  RankGpu mine;
  const cuda::DeviceInfo info = cuda::probe_cuda_devices();
  if (info.count < 1)
    mine.no_device = info.error;
  else
    mine.gpu_key = cuda::physical_gpu_key(cuda::device_for(grid.local_rank, info.count));
  mine.host = host_name();
  mine.visible_devices = cuda_visible_devices();
  const std::unique_ptr<Communicator> node = make_node_comm();
  check_gpu_placement(*grid.world_comm, *node, name_of(cfg.runtime.device), mine);
}
#endif

}  // namespace

GemmPrecision gemm_precision(const Config& cfg) {
  return cfg.runtime.precision == Precision::kBf16 ? GemmPrecision::Bf16 : GemmPrecision::Fp32;
}

bool use_cuda(const Config& cfg) {
  return cfg.runtime.device == DeviceChoice::kCuda ||
         (cfg.runtime.device == DeviceChoice::kAuto && cuda_unavailable().empty());
}

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
#ifdef POLYHEAD_HAVE_CUDA
  // Ranks on different nodes can answer differently, and an InputError thrown by one rank only
  // would end the job without its message (main prints input errors from rank 0 only): every
  // rank refuses alike, with the lowest failing rank's message.
  int mpi_up = 0, world = 1;
  MPI_Initialized(&mpi_up);
  if (mpi_up) MPI_Comm_size(MPI_COMM_WORLD, &world);
  if (cfg.runtime.device == DeviceChoice::kCuda && world > 1) {
    MpiCommunicator all(MPI_COMM_WORLD, "world");
    agree(all, [&] {
      if (!why.empty()) throw InputError("runtime.device=cuda: " + why);
    });
    return;
  }
#endif
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
  // ranks of one communicator on the same device), so a node with more ranks than GPUs is
  // refused here, before any GPU work.
  check_one_gpu_per_rank(cfg, grid);
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

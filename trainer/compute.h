// What a rank computes on: the backend chosen by runtime.device and the communicators that
// carry its device buffers over the grid's tensor- and data-parallel groups (the grid's MPI
// communicators on the CPU backend; NCCL communicators on the CUDA backend). Host data
// (scalars, metrics, checkpoint staging) keeps travelling over the grid's MPI communicators.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "io/config.h"
#include "kernels/backend.h"
#include "parallel/communicator.h"
#include "parallel/grid.h"

namespace ph {

// Members are destroyed in reverse order: the communicators (which flush their streams)
// before the backend (which owns the compute stream they order against).
struct Compute {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Communicator> owned_tp, owned_dp;
  Communicator* tp = nullptr;  // device buffers, tensor-parallel group (size grid.tp)
  Communicator* dp = nullptr;  // device buffers, data-parallel group (size grid.dp)
};

// Why runtime.device=cuda cannot be served on this machine, or "" when it can: no device or
// driver ("no CUDA device: ..."), or a build without the CUDA backend.
std::string cuda_unavailable();

// Whether a run of `cfg` computes on the CUDA backend: runtime.device cuda, or auto with a
// usable GPU (after check_device, cuda means one is usable).
bool use_cuda(const Config& cfg);

// The GEMM precision of runtime.precision.
GemmPrecision gemm_precision(const Config& cfg);

// Checks runtime.device before any work: cuda without a usable device is an InputError
// ("runtime.device=cuda: no CUDA device: ..."); auto without one prints a notice and the run
// uses the CPU backend. With runtime.device=cuda in a CUDA build it is collective over
// MPI_COMM_WORLD (every rank calls it): a rank without a device makes every rank throw.
void check_device(const Config& cfg);

// Builds the backend and device communicators for this rank (collective over the grid: every
// rank calls it). The CUDA backend takes GPU grid.local_rank modulo the devices of its node;
// before it is made, every rank checks that no two ranks of a node would share a GPU and, if
// any would (more ranks on a node than it has GPUs), every rank throws the same InputError
// naming both numbers ("runtime.device=cuda: 4 ranks on node gpu07 but it has 2 GPUs ...",
// trainer/gpu_placement.h).
// runtime.precision: bf16 makes the backend's linear-layer GEMMs take bf16-rounded operands
// (fp32 accumulation; everything else, master weights and checkpoints stay fp32).
Compute make_compute(const Config& cfg, const ProcessGrid& grid);

// For tests: the CPU backends make_compute creates come from `factory`, called with the
// precision of the run (empty: make_cpu_backend).
void set_cpu_backend_factory(std::function<std::unique_ptr<Backend>(GemmPrecision)> factory);

}  // namespace ph

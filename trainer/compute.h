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

struct Compute {
  std::unique_ptr<Backend> backend;
  Communicator* tp = nullptr;  // device buffers, tensor-parallel group (size grid.tp)
  Communicator* dp = nullptr;  // device buffers, data-parallel group (size grid.dp)
  std::unique_ptr<Communicator> owned_tp, owned_dp;
};

// Why runtime.device=cuda cannot be served on this machine, or "" when it can: no device or
// driver ("no CUDA device: ..."), or a build without the CUDA backend.
std::string cuda_unavailable();

// Checks runtime.device and runtime.precision before any work: cuda without a usable device
// is an InputError ("runtime.device=cuda: no CUDA device: ..."); auto without one prints a
// notice and the run uses the CPU backend; bf16 is refused (not implemented yet).
void check_device(const Config& cfg);

// Builds the backend and device communicators for this rank (collective over the grid: every
// rank calls it). The CUDA backend takes GPU grid.local_rank modulo the devices of its node.
Compute make_compute(const Config& cfg, const ProcessGrid& grid);

// For tests: the CPU backends make_compute creates come from `factory` (empty: the default).
void set_cpu_backend_factory(std::function<std::unique_ptr<Backend>()> factory);

}  // namespace ph

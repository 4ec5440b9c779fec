// Memory a training run needs, per rank, known before anything is allocated or written, and
// the check that refuses a run that cannot fit with one message naming the keys that drive it.
//
// How it is estimated: the model, its AdamW state, the ZeRO gradient shard and the gradient
// norm's scratch are built exactly as train() builds them, but against a backend that only
// counts what it is asked to allocate and reserve (no memory is touched, every op is a no-op).
// So the arenas are those the real run allocates, byte for byte, for every model family and
// layout. The host buffers the trainer holds beside them (micro-batches, evaluation, the host
// copy of the parameters at initialisation, checkpoint staging), the memory-mapped token shards
// and a fixed allowance for the process (libraries, MPI, threads, OpenBLAS's buffers; measured,
// bench/README.md "Memory estimate") are added.
//
// Where the memory lives: on the CPU backend the arenas are host memory; on the CUDA backend
// they are device memory and the host holds the staging. Peak host memory is the larger of two
// moments: initialisation (arenas + the host copy of the parameters) and a checkpoint save
// (arenas + AdamW moments + the host copies of the parameters and both moments).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "io/config.h"
#include "kernels/backend.h"
#include "parallel/grid.h"

namespace ph {

struct MemoryEstimate {
  Device device = Device::Cpu;  // where the arenas live (Cuda: device memory)
  int dp = 1, tp = 1;
  bool zero = false;          // ZeRO-1: moments and the synchronised gradient are shards
  int threads = 1;            // OpenMP threads per rank the allowance was sized for
  int64_t parameters = 0;     // of the whole (unsharded) model
  size_t arena_elements = 0;  // floats of this rank's parameter arena (padding included)

  // Bytes per rank. The model's arenas and the optimizer's state, as allocated:
  size_t params = 0;       // parameter arena
  size_t grads = 0;        // gradient arena
  size_t moments = 0;      // AdamW m and v (ZeRO: this rank's shard)
  size_t grad_shard = 0;   // ZeRO: the reduce-scattered gradient shard
  size_t activations = 0;  // activation arena and token buffers at train.micro_batch
  size_t scratch = 0;      // backend scratch reserved when the model is built
  // Host memory beside the arenas:
  size_t buffers = 0;    // micro-batches, per-token losses, evaluation buffers
  size_t init_copy = 0;  // host copy of the parameter arena at initialisation (freed after)
  size_t staging = 0;    // a checkpoint save: parameters and both moments copied to the host
  size_t data = 0;       // token shards, memory-mapped and read in full (file-backed pages)
  size_t process = 0;    // allowance: libraries, MPI, thread stacks, OpenBLAS buffers
  // Totals:
  size_t host = 0;           // peak resident host memory of one rank (data included)
  size_t host_needed = 0;    // what must come out of MemAvailable: host minus the data pages
  size_t address_space = 0;  // peak virtual address space (compared with RLIMIT_AS)
  size_t device_total = 0;   // CUDA: peak device memory incl. context allowance; 0 on the CPU

  // Model state (parameters, gradients, moments, shard): what the model size keys drive.
  size_t model_state() const { return params + grads + moments + grad_shard; }
};

// The estimate for this rank of `grid` (no collective; nothing is allocated or written). The
// backend is the one train() would take: CUDA when runtime.device asks for it and a device is
// usable (trainer/compute.h), else the CPU. `threads` sizes the process allowance (OpenMP
// threads per rank; 0: omp_get_max_threads()). Throws what building the model throws for a
// config that cannot be built (InputError for bad input).
MemoryEstimate estimate_memory(const Config& cfg, const ProcessGrid& grid, int threads = 0);
// The same on a given backend kind (tests; a dry run for another machine). grid needs its
// tensor-parallel communicator when grid.tp > 1 (it is never used); the data-parallel one may be
// null.
MemoryEstimate estimate_memory(const Config& cfg, const ProcessGrid& grid, Device device,
                               int threads);

// What this process may use: MemAvailable of /proc/meminfo (shared by the ranks of the node),
// RLIMIT_AS (soft limit; none when unlimited) and, on the CUDA path, the free memory of this
// rank's GPU (cudaMemGetInfo).
struct MemoryAvailable {
  bool has_mem_available = false;
  uint64_t mem_available = 0;
  bool has_rlimit_as = false;
  uint64_t rlimit_as = 0;
  bool has_device_free = false;
  uint64_t device_free = 0;
  int device_ordinal = -1;
  int device_sharers = 1;  // ranks of this node on the same GPU
};
// Reads the limits of this process (local: no collective). On the CUDA path it selects this
// rank's GPU (local_rank mod count) and creates its context, as make_compute would.
MemoryAvailable available_memory(const MemoryEstimate& estimate, const ProcessGrid& grid);

// The refusal message when the estimate does not fit what is available, "" when it fits.
// local_size: ranks on this node (they share MemAvailable). A pure function (tests).
//   memory: the run needs about 48.2 GiB per rank (parameters, gradients and AdamW moments
//   30.1 GiB from model.d_model=1048576 / model.n_layers=2 / model.vocab_size=256; activations
//   17.9 GiB from train.micro_batch=32 x model.seq_len=52 ...); 23.4 GiB are available
//   (MemAvailable)
std::string memory_refusal(const MemoryEstimate& estimate, const MemoryAvailable& available,
                           const Config& cfg, int local_size);

// Collective over grid.world_comm: every rank reads its limits and compares; if any rank's
// estimate does not fit, every rank throws the lowest such rank's InputError (printed once,
// exit 2). Call it before anything is written.
void check_memory(const MemoryEstimate& estimate, const Config& cfg, const ProcessGrid& grid);

// The estimate, one part per line (for logs and `polyhead train --dry-run`).
std::string describe(const MemoryEstimate& estimate);
// What is available, one line (for --dry-run).
std::string describe(const MemoryAvailable& available, int local_size);

// "672.3 TiB", "48.2 GiB", "70.3 MiB", "512 B".
std::string format_bytes(uint64_t bytes);

}  // namespace ph

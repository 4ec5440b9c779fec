// One rank per GPU. Every rank of a node takes visible device local_rank % count
// (kernels/cuda/device.h). With more ranks on a node than GPUs, two ranks share one: NCCL
// refuses a communicator with two ranks on one device ("duplicate GPU"), and even where it does
// not, the two ranks halve the GPU's memory and speed. make_compute (trainer/compute.h) checks
// the placement before the CUDA backend is made, on every rank alike, with the functions here;
// they need no GPU (the caller passes what the CUDA runtime reported), so the CPU tests run them.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "parallel/communicator.h"

namespace ph {

// The verdict for one node: "" when its ranks_on_node ranks can each have one of its `gpus`
// GPUs, else the message, e.g.
//   runtime.device=cuda: 4 ranks on node gpu07 but it has 2 GPUs (CUDA_VISIBLE_DEVICES=0,1):
//   two ranks cannot share a GPU; start at most one rank per GPU (e.g. mpirun --map-by
//   ppr:2:node) or make more GPUs visible
// device_setting: runtime.device as written ("cuda", "auto"); visible_devices: the value of
// CUDA_VISIBLE_DEVICES, nullopt when it is not set.
std::string gpu_sharing_error(const std::string& device_setting, int ranks_on_node, int gpus,
                              const std::string& host,
                              const std::optional<std::string>& visible_devices);

// The number of different GPUs among the keys of a node's ranks (cuda::physical_gpu_key;
// keys <= 0, ranks without a GPU, are not counted).
int distinct_gpus(const std::vector<int64_t>& keys);

// What one rank found about its GPU.
struct RankGpu {
  std::string no_device;  // why this rank has no usable GPU ("no CUDA device: ..."), or ""
  int64_t gpu_key = 0;    // > 0: the physical GPU the rank would take (cuda::physical_gpu_key)
  std::string host;       // the node's name
  std::optional<std::string> visible_devices;  // CUDA_VISIBLE_DEVICES of this rank
};

// Collective over `world` and over `node`, the ranks of this rank's node (a part of world):
// every rank of world calls it. The ranks of each node compare the physical GPUs they would
// take, so that ranks whose CUDA_VISIBLE_DEVICES each name a different GPU pass. When two ranks
// of any node would share a GPU (gpu_sharing_error, with the number of the node's ranks that
// have a GPU and the number of different GPUs they take) or a rank has no GPU
// ("runtime.device=<setting>: no CUDA device: ..."), every rank of world throws the same
// InputError: the message of the lowest failing world rank. Nodes may see different GPU
// counts; the verdict is the same everywhere.
void check_gpu_placement(Communicator& world, Communicator& node, const std::string& device_setting,
                         const RankGpu& mine);

// The ranks of MPI_COMM_WORLD on this node (MPI_COMM_TYPE_SHARED, as make_grid counts
// local_rank and local_size). Collective over MPI_COMM_WORLD.
std::unique_ptr<Communicator> make_node_comm();

// This machine's host name ("unknown host" when it cannot be read).
std::string host_name();

// CUDA_VISIBLE_DEVICES of this process; nullopt when it is not set.
std::optional<std::string> cuda_visible_devices();

}  // namespace ph

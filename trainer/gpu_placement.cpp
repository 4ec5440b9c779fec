#include "trainer/gpu_placement.h"

#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "parallel/agreement.h"
#include "parallel/errors.h"
#include "parallel/mpi_communicator.h"

namespace ph {

std::string gpu_sharing_error(const std::string& device_setting, int ranks_on_node, int gpus,
                              const std::string& host,
                              const std::optional<std::string>& visible_devices) {
  if (ranks_on_node <= gpus) return "";
  const std::string visible = visible_devices ? "CUDA_VISIBLE_DEVICES=" + *visible_devices
                                              : std::string("CUDA_VISIBLE_DEVICES not set");
  std::string message = "runtime.device=" + device_setting + ": " + std::to_string(ranks_on_node) +
                        (ranks_on_node == 1 ? " rank" : " ranks") + " on node " + host +
                        " but it has " + std::to_string(gpus) + (gpus == 1 ? " GPU" : " GPUs") +
                        " (" + visible + "): ";
  if (gpus < 1) return message + "make GPUs visible to the ranks or set runtime.device=cpu";
  const std::string per_node = "ppr:" + std::to_string(gpus) + ":node";  // Open MPI's mapping
  return message + "two ranks cannot share a GPU; start at most one rank per GPU (e.g. mpirun " +
         "--map-by " + per_node + ") or make more GPUs visible";
}

int distinct_gpus(const std::vector<int64_t>& keys) {
  std::vector<int64_t> gpus;
  for (const int64_t key : keys)
    if (key > 0) gpus.push_back(key);
  std::sort(gpus.begin(), gpus.end());
  return static_cast<int>(std::unique(gpus.begin(), gpus.end()) - gpus.begin());
}

void check_gpu_placement(Communicator& world, Communicator& node, const std::string& device_setting,
                         const RankGpu& mine) {
  // Gather the node's keys: each rank fills its own entry, the sum fills them all.
  std::vector<int64_t> keys(static_cast<size_t>(node.size()), 0);
  keys[static_cast<size_t>(node.rank())] = mine.no_device.empty() ? mine.gpu_key : 0;
  if (node.size() > 1) node.all_reduce(keys.data(), keys.size(), ReduceOp::Sum);
  agree(world, [&] {
    if (!mine.no_device.empty())
      throw InputError("runtime.device=" + device_setting + ": " + mine.no_device);
    // The node's ranks without a GPU fail on their own (above); they take none.
    const int ranks = static_cast<int>(
        std::count_if(keys.begin(), keys.end(), [](int64_t key) { return key > 0; }));
    const std::string why = gpu_sharing_error(device_setting, ranks, distinct_gpus(keys), mine.host,
                                              mine.visible_devices);
    if (!why.empty()) throw InputError(why);
  });
}

std::unique_ptr<Communicator> make_node_comm() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm node = MPI_COMM_NULL;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  auto comm = std::make_unique<MpiCommunicator>(node, "node");
  MPI_Comm_free(&node);
  return comm;
}

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "unknown host";
  return name;
}

std::optional<std::string> cuda_visible_devices() {
  const char* value = std::getenv("CUDA_VISIBLE_DEVICES");
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

}  // namespace ph

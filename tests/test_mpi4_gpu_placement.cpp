// One rank per GPU (trainer/gpu_placement.h) without a GPU: the verdict for one node, and its
// agreement over 4 ranks split into two pretend nodes of 2 ranks, whose GPUs the tests name by
// key as cuda::physical_gpu_key would.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "parallel/errors.h"
#include "parallel/mpi_communicator.h"
#include "trainer/gpu_placement.h"

namespace ph {
namespace {

TEST(GpuSharing, MoreRanksThanGpusNamesBothNumbersAndWhatToDo) {
  EXPECT_EQ(gpu_sharing_error("cuda", 4, 2, "gpu07", std::string("0,1")),
            "runtime.device=cuda: 4 ranks on node gpu07 but it has 2 GPUs "
            "(CUDA_VISIBLE_DEVICES=0,1): two ranks cannot share a GPU; start at most one rank per "
            "GPU (e.g. mpirun --map-by ppr:2:node) or make more GPUs visible");
  EXPECT_EQ(gpu_sharing_error("auto", 2, 1, "n1", std::nullopt),
            "runtime.device=auto: 2 ranks on node n1 but it has 1 GPU "
            "(CUDA_VISIBLE_DEVICES not set): two ranks cannot share a GPU; start at most one "
            "rank per GPU (e.g. mpirun --map-by ppr:1:node) or make more GPUs visible");
  EXPECT_EQ(gpu_sharing_error("cuda", 1, 0, "n1", std::string("")),
            "runtime.device=cuda: 1 rank on node n1 but it has 0 GPUs (CUDA_VISIBLE_DEVICES=): "
            "make GPUs visible to the ranks or set runtime.device=cpu");
}

TEST(GpuSharing, AtMostOneRankPerGpuPasses) {
  for (const auto& [ranks, gpus] : {std::pair{1, 1}, {2, 2}, {2, 8}, {8, 8}})
    EXPECT_EQ(gpu_sharing_error("cuda", ranks, gpus, "n1", std::nullopt), "")
        << ranks << " ranks, " << gpus << " GPUs";
}

TEST(GpuSharing, DistinctGpusCountsEachPhysicalGpuOnce) {
  EXPECT_EQ(distinct_gpus({}), 0);
  EXPECT_EQ(distinct_gpus({7}), 1);
  EXPECT_EQ(distinct_gpus({7, 9, 7, 9}), 2);  // 4 ranks round-robin on 2 GPUs
  EXPECT_EQ(distinct_gpus({1, 2, 3, 4}), 4);
  EXPECT_EQ(distinct_gpus({0, -1, 5}), 1);  // ranks without a GPU are not counted
}

// Two pretend nodes: world ranks {0, 1} are node-a, {2, 3} node-b.
class Placement : public ::testing::Test {
 protected:
  void SetUp() override {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    int world = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    ASSERT_EQ(world, 4);
    world_ = std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, "world");
    MPI_Comm part = MPI_COMM_NULL;
    MPI_Comm_split(MPI_COMM_WORLD, rank_ / 2, rank_, &part);
    node_ = std::make_unique<MpiCommunicator>(part, "node");
    MPI_Comm_free(&part);
  }

  // What check_gpu_placement threw on this rank ("" when nothing).
  std::string verdict(const RankGpu& mine, Communicator* node = nullptr) {
    try {
      check_gpu_placement(*world_, node ? *node : *node_, "cuda", mine);
    } catch (const InputError& e) {
      return e.what();
    }
    return "";
  }
  // A rank of this test's nodes that would take GPU `key`.
  RankGpu rank_gpu(int64_t key, const char* visible = "0,1") const {
    RankGpu g;
    g.gpu_key = key;
    g.host = rank_ < 2 ? "node-a" : "node-b";
    g.visible_devices = std::string(visible);
    return g;
  }

  int rank_ = 0;
  std::unique_ptr<Communicator> world_, node_;
};

TEST_F(Placement, OneRankPerGpuOnEveryNodePasses) {
  // The same PCI address on two nodes is two GPUs.
  EXPECT_EQ(verdict(rank_gpu(rank_ % 2 == 0 ? 5 : 6)), "");
}

TEST_F(Placement, RanksThatEachSeeOneDifferentGpuPass) {
  // CUDA_VISIBLE_DEVICES set per rank (one GPU each): every rank takes its device 0, and the
  // node's ranks are still on different GPUs. A check of counts alone would refuse this.
  const int local = rank_ % 2;
  EXPECT_EQ(verdict(rank_gpu(10 + local, local == 0 ? "0" : "1")), "");
}

TEST_F(Placement, TwoRanksOnOneGpuOfOneNodeAreRefusedByEveryRank) {
  // node-a is fine; node-b's two ranks would share one GPU. Every rank, node-a's too, throws
  // node-b's message.
  const int64_t key = rank_ < 2 ? 5 + rank_ : 5;
  EXPECT_EQ(verdict(rank_gpu(key, rank_ < 2 ? "0,1" : "0")),
            "runtime.device=cuda: 2 ranks on node node-b but it has 1 GPU "
            "(CUDA_VISIBLE_DEVICES=0): two ranks cannot share a GPU; start at most one rank per "
            "GPU (e.g. mpirun --map-by ppr:1:node) or make more GPUs visible");
}

TEST_F(Placement, ARankWithoutAGpuIsRefusedByEveryRank) {
  RankGpu mine = rank_gpu(rank_ % 2 == 0 ? 5 : 6);
  if (rank_ == 3) {
    mine.gpu_key = 0;
    mine.no_device =
        "no CUDA device: no CUDA-capable device is detected (cudaGetDeviceCount "
        "returned 100)";
  }
  EXPECT_EQ(verdict(mine),
            "runtime.device=cuda: no CUDA device: no CUDA-capable device is detected "
            "(cudaGetDeviceCount returned 100)");
}

TEST_F(Placement, TheLowestFailingRankIsReported) {
  // node-a shares a GPU (ranks 0 and 1), rank 3 has none: rank 0's message wins everywhere.
  RankGpu mine = rank_gpu(rank_ < 2 ? 5 : 6);
  if (rank_ == 3) {
    mine.gpu_key = 0;
    mine.no_device = "no CUDA device: test";
  }
  const std::string v = verdict(mine);
  EXPECT_EQ(v.rfind("runtime.device=cuda: 2 ranks on node node-a but it has 1 GPU ", 0), 0u) << v;
}

TEST_F(Placement, TheRealNodeCommunicatorHoldsEveryRankOfThisHost) {
  // ctest starts every rank on this host: one node of 4 ranks, here all on one GPU.
  const std::unique_ptr<Communicator> node = make_node_comm();
  EXPECT_EQ(node->size(), 4);
  EXPECT_EQ(node->rank(), rank_);
  RankGpu mine = rank_gpu(42);
  mine.host = host_name();
  mine.visible_devices = std::nullopt;
  EXPECT_EQ(verdict(mine, node.get()),
            "runtime.device=cuda: 4 ranks on node " + host_name() +
                " but it has 1 GPU (CUDA_VISIBLE_DEVICES not set): two ranks cannot share a GPU; "
                "start at most one rank per GPU (e.g. mpirun --map-by ppr:1:node) or make more "
                "GPUs visible");
  // Round-robin over two GPUs still puts two ranks on each.
  mine.gpu_key = 42 + rank_ % 2;
  EXPECT_NE(verdict(mine, node.get()).find("4 ranks on node " + host_name() + " but it has 2 GPUs"),
            std::string::npos);
  mine.gpu_key = 42 + rank_;
  EXPECT_EQ(verdict(mine, node.get()), "");
}

TEST(HostEnvironment, HostNameAndVisibleDevicesAreRead) {
  EXPECT_FALSE(host_name().empty());
  const char* set = std::getenv("CUDA_VISIBLE_DEVICES");
  const std::optional<std::string> visible = cuda_visible_devices();
  EXPECT_EQ(visible.has_value(), set != nullptr);
  if (set) {
    EXPECT_EQ(*visible, set);
  }
}

}  // namespace
}  // namespace ph

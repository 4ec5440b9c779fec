// The real NcclCommunicator (ph_nccl, CUDA configuration only). Building and linking this test
// checks that the CUDA/NCCL side compiles and links; the mapping and error-text cases run
// without a GPU; the collectives run on one rank when a CUDA device is present and are skipped
// with the reason otherwise. NcclCommunicator's logic is tested in test_nccl_logic.cpp.
#include <cuda_runtime.h>
#include <gtest/gtest.h>
#include <mpi.h>
#include <nccl.h>

#include <string>
#include <vector>

#include "parallel/nccl/cuda_device_ops.h"
#include "parallel/nccl/nccl_communicator.h"

namespace ph {
namespace {

using nccl::DataType;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(NcclCuda, HostTypesAndReductionsMapToNccl) {
  EXPECT_EQ(nccl::nccl_data_type(DataType::Float32), ncclFloat32);
  EXPECT_EQ(nccl::nccl_data_type(DataType::Float64), ncclFloat64);
  EXPECT_EQ(nccl::nccl_data_type(DataType::Int64), ncclInt64);
  EXPECT_EQ(nccl::nccl_data_type(DataType::Char), ncclChar);
  EXPECT_EQ(nccl::nccl_reduce_op(ReduceOp::Sum), ncclSum);
  EXPECT_EQ(nccl::nccl_reduce_op(ReduceOp::Max), ncclMax);
  EXPECT_EQ(nccl::nccl_reduce_op(ReduceOp::Min), ncclMin);
  EXPECT_EQ(nccl::nccl_reduce_op(ReduceOp::Avg), ncclAvg);
}

TEST(NcclCuda, LinkedNcclHasAvg) {
  int version = 0;
  ASSERT_EQ(ncclGetVersion(&version), ncclSuccess);
  EXPECT_GE(version, NCCL_VERSION(2, 14, 0));
}

TEST(NcclCuda, ErrorTextsNameTheCallAndTheCode) {
  const std::string nccl = nccl::nccl_error_text("ncclAllReduce", ncclRemoteError, nullptr);
  EXPECT_TRUE(contains(nccl, "ncclAllReduce: ")) << nccl;
  EXPECT_TRUE(contains(nccl, "(ncclResult_t 6)")) << nccl;
  const std::string cuda = nccl::cuda_error_text("cudaMalloc", cudaErrorMemoryAllocation);
  EXPECT_TRUE(contains(cuda, "cudaMalloc: ")) << cuda;
  EXPECT_TRUE(contains(cuda, "(cudaErrorMemoryAllocation)")) << cuda;
}

// One rank (MPI_COMM_SELF): every collective leaves the data as it is, Avg included.
TEST(NcclCuda, OneRankCollectivesOnTheDevice) {
  int devices = 0;
  const cudaError_t probe = cudaGetDeviceCount(&devices);
  if (probe != cudaSuccess || devices == 0) {
    (void)cudaGetLastError();
    GTEST_SKIP() << "no CUDA device: " << cudaGetErrorString(probe)
                 << " (cudaGetDeviceCount returned " << static_cast<int>(probe) << ")";
  }
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  const std::vector<float> host = {1.5f, -2.0f, 3.25f, 0.5f};
  const size_t bytes = host.size() * sizeof(float);
  void* a = nullptr;
  void* b = nullptr;
  ASSERT_EQ(cudaMalloc(&a, bytes), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&b, bytes), cudaSuccess);
  float* x = static_cast<float*>(a);
  float* y = static_cast<float*>(b);
  ASSERT_EQ(cudaMemcpyAsync(x, host.data(), bytes, cudaMemcpyHostToDevice, stream), cudaSuccess);
  {
    NcclCommunicator comm(MPI_COMM_SELF, stream, 60);
    EXPECT_EQ(comm.size(), 1);
    comm.all_reduce(x, host.size(), ReduceOp::Avg);
    comm.all_reduce_async(x, host.size(), ReduceOp::Sum).wait();
    comm.all_gather(x, y, host.size());
    comm.broadcast(y, host.size(), 0);
    comm.barrier();
  }
  std::vector<float> back(host.size());
  ASSERT_EQ(cudaMemcpyAsync(back.data(), y, bytes, cudaMemcpyDeviceToHost, stream), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  EXPECT_EQ(back, host);
  cudaFree(a);
  cudaFree(b);
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace ph

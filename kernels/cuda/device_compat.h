// The CUDA dialect of the kernel headers (kernels/cuda/*_kernels.cuh) on two compilers.
//
// nvcc provides it: this header adds nothing. On a host compiler the kernels compile only
// after the test shim (tests/cuda_shim.h), which defines __global__, __shared__, threadIdx,
// __syncthreads, warp shuffles and a launcher that runs a grid on OS threads; the CPU tests
// use it to run the very kernel code the GPU runs. The dialect the kernels may use is
// exactly what the shim emulates: 1-D blocks of whole warps, static __shared__ arrays,
// __syncthreads, __syncthreads_or, full-warp __shfl_xor_sync / __shfl_down_sync /
// __shfl_sync, __float_as_uint / __uint_as_float / __int_as_float, and the float math of
// <cmath> (expf, logf, sqrtf, fmaxf, ...).
#pragma once

#if !defined(__CUDACC__) && !defined(PH_CUDA_SHIM)
#error \
    "kernels/cuda/*_kernels.cuh are CUDA: compile them with nvcc, or include tests/cuda_shim.h first"
#endif

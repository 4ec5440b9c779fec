// PH_HD marks inline math that both backends compile: plain inline for g++, and
// __host__ __device__ under nvcc, so the CPU tests exercise the code the GPU runs.
#pragma once

#if defined(__CUDACC__)
#define PH_HD __host__ __device__ __forceinline__
#else
#define PH_HD inline
#endif

// The storage dtype: loads widen exactly to fp32, stores round to nearest even (docs/SEMANTICS.md).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include "spec.cuh"

namespace flashmoe {

template <DType> struct Storage;

template <> struct Storage<DType::fp32> {
  using T = float;
  static __device__ __forceinline__ float load(const T& v) { return v; }
  static __device__ __forceinline__ T store(float v) { return v; }
};
template <> struct Storage<DType::bf16> {
  using T = __nv_bfloat16;
  static __device__ __forceinline__ float load(const T& v) { return __bfloat162float(v); }
  static __device__ __forceinline__ T store(float v) { return __float2bfloat16_rn(v); }
};
template <> struct Storage<DType::fp16> {
  using T = __half;
  static __device__ __forceinline__ float load(const T& v) { return __half2float(v); }
  static __device__ __forceinline__ T store(float v) { return __float2half_rn(v); }
};

template <Act A>
__device__ __forceinline__ float activate(float v) {
  if constexpr (A == Act::relu) {
    return v > 0.f ? v : (v != v ? v : 0.f);
  } else if constexpr (A == Act::gelu) {
    return 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
  } else if constexpr (A == Act::gelu_tanh) {
    return 0.5f * v * (1.f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
  } else {
    return v / (1.f + expf(-v));
  }
}

}  // namespace flashmoe

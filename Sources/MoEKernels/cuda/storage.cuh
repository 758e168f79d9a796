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

#if !defined(FLASHMOE_EXACT_ERF)
// GELU's erf in about 11 fewer instructions per element than erff (offline SASS), because GEMM0's
// epilogue spent about 5.5 µs of a 35 µs task on GELU while the tensor cores waited: with it a
// GEMM0 task takes 32.4 µs instead of 35.2 and the forward 0.636 ms instead of 0.658 (8K, bf16, one
// H200, eighth session; FLASHMOE_NVRTC_DEFINES=FLASHMOE_EXACT_ERF gives erff back).
// erf(x) = sign(x) · (1 − 2^q(|x|)), where q(t) = t · (c0 + c1 t + … + c7 t⁷) ≈ log2 erfc(t),
// fitted on [0, 3.92] (erfc ≈ 2⁻²⁵ there) by scripts/fit_erf.py to minimise erf's own error: at
// most 0.83 ulp of 1.0 in float arithmetic, plus ex2.approx's 2 ulp. GELU adds erf to 1, where
// erff's error is of that size too. Beyond 3.92 the polynomial falls monotonically to −∞ (checked
// by the script), so erf is ±1 exactly there and for ±∞, as erff's: GELU of a large negative value
// is −0 and of −∞ NaN, as on the CPU.
// MoEJITTests reads these coefficients from this file and checks the bound on the CPU.
constexpr float kErfQ[8] = {-1.627908587e+00f, -9.184163809e-01f, -1.484816372e-01f, 2.825371362e-02f,
                            -7.746674819e-04f, -1.489418559e-03f, 4.455005983e-04f, -4.535775952e-05f};
__device__ __forceinline__ float erf_fast(float x) {
  const float t = fabsf(x);
  float r = kErfQ[7];
#pragma unroll
  for (int i = 6; i >= 0; --i) r = fmaf(r, t, kErfQ[i]);
  float e;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e) : "f"(r * t));
  return copysignf(1.f - e, x);
}
#endif

template <Act A>
__device__ __forceinline__ float activate(float v) {
  if constexpr (A == Act::relu) {
    return v > 0.f ? v : (v != v ? v : 0.f);
  } else if constexpr (A == Act::gelu) {
#if !defined(FLASHMOE_EXACT_ERF)
    return 0.5f * v * (1.f + erf_fast(v * 0.70710678118654752f));
#else
    return 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
#endif
  } else if constexpr (A == Act::gelu_tanh) {
    return 0.5f * v * (1.f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
  } else {
    return v / (1.f + expf(-v));
  }
}

}  // namespace flashmoe

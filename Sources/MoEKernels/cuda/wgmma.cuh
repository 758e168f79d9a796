// Hopper warpgroup MMA (sm_90a): wgmma.mma_async reads both operands from shared memory through
// matrix descriptors and accumulates a 64 × N fp32 tile in the registers of the four warps of a
// warpgroup. The operands are K-major tiles with 128-byte rows in the 128-byte swizzle layout: the
// 16-byte chunk c of row r sits at chunk c ^ (r mod 8), and each tile starts on a 1024-byte boundary.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include "ptx.cuh"

namespace flashmoe {
namespace ptx {

// Shared-memory matrix descriptor: start address, leading byte offset (unused by swizzled K-major
// layouts: 1), stride byte offset 1024 (eight 128-byte rows between core-matrix groups), 128-byte
// swizzle. Addresses are in 16-byte units.
__device__ __forceinline__ unsigned long long wgmma_desc(const void* smem) {
  const unsigned long long start = (smem_addr(smem) & 0x3FFFF) >> 4;
  return start | (1ull << 16) | ((1024ull >> 4) << 32) | (1ull << 62);
}

// Orders this thread's earlier shared-memory writes (cp.async, st.shared: the generic proxy) before
// later reads by the async proxy, which is where wgmma reads its operands.
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); }
// The same between global-memory stores (a GEMM0 epilogue) and TMA reads of them (GEMM1's A).
__device__ __forceinline__ void fence_proxy_async_global() { asm volatile("fence.proxy.async.global;" ::: "memory"); }
// Pins the accumulators in place around wgmma: the compiler cannot see inside the asm, and moving
// another access to them across a wgmma makes ptxas insert waits (C7517/C7519) that stall it.
template <int N>
__device__ __forceinline__ void fence_operands(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(N) : "memory"); }

// D[64 × N] += A[64 × kK] · B[N × kK]ᵀ (both K-major, one 32-byte step of a 128-byte row: k16 for
// bf16/fp16, k8 for tf32, whose operands hold fp32 values already rounded to tf32), fp32
// accumulators. T is the element type in shared memory. Each thread holds N / 2 accumulators: for n8 block j, d[4j], d[4j+1] are row (warp·16 + lane/4),
// columns 8j + 2·(lane%4) and +1; d[4j+2], d[4j+3] the same columns eight rows down.
template <int N, class T>
__device__ __forceinline__ void wgmma(float* d, unsigned long long descA, unsigned long long descB);

// One asm body per width; the element type, k step and trailing immediates are spliced in.
#define FLASHMOE_WGMMA_N64(TY, K, TAIL)                                                      \
  asm volatile(                                                                     \
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"                                     \
      "wgmma.mma_async.sync.aligned.m64n64" K ".f32." TY "." TY " "                       \
      "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15," \
      "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, " \
      "%32, %33, p, " TAIL ";\n}\n"                                              \
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]) \
      : "l"(descA), "l"(descB), "r"(1))

#define FLASHMOE_WGMMA_N128(TY, K, TAIL)                                                      \
  asm volatile(                                                                     \
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"                                     \
      "wgmma.mma_async.sync.aligned.m64n128" K ".f32." TY "." TY " "                       \
      "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15," \
      "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31," \
      "%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47," \
      "%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, " \
      "%64, %65, p, " TAIL ";\n}\n"                                              \
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), \
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), \
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]) \
      : "l"(descA), "l"(descB), "r"(1))

// 16-bit inputs take k16 steps and transpose flags (0: K-major); tf32 takes k8 steps, K-major only.
template <> __device__ __forceinline__ void wgmma<64, __nv_bfloat16>(float* d, unsigned long long descA, unsigned long long descB) { FLASHMOE_WGMMA_N64("bf16", "k16", "1, 1, 0, 0"); }
template <> __device__ __forceinline__ void wgmma<64, __half>(float* d, unsigned long long descA, unsigned long long descB) { FLASHMOE_WGMMA_N64("f16", "k16", "1, 1, 0, 0"); }
template <> __device__ __forceinline__ void wgmma<64, float>(float* d, unsigned long long descA, unsigned long long descB) { FLASHMOE_WGMMA_N64("tf32", "k8", "1, 1"); }
template <> __device__ __forceinline__ void wgmma<128, __nv_bfloat16>(float* d, unsigned long long descA, unsigned long long descB) { FLASHMOE_WGMMA_N128("bf16", "k16", "1, 1, 0, 0"); }
template <> __device__ __forceinline__ void wgmma<128, __half>(float* d, unsigned long long descA, unsigned long long descB) { FLASHMOE_WGMMA_N128("f16", "k16", "1, 1, 0, 0"); }
template <> __device__ __forceinline__ void wgmma<128, float>(float* d, unsigned long long descA, unsigned long long descB) { FLASHMOE_WGMMA_N128("tf32", "k8", "1, 1"); }
#undef FLASHMOE_WGMMA_N64
#undef FLASHMOE_WGMMA_N128

}  // namespace ptx
}  // namespace flashmoe

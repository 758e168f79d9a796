// The producer warpgroup (FLASHMOE_PRODUCER, sm_90a; the default on one GPU in 16-bit storage and
// the plain form since the tenth session, 2–3 % faster at 8K tokens on an H200): a
// Processor block of three warpgroups in which warpgroup 0 only fills the tile GEMM's operand
// stages (TMA for the weights and dense A, cp.async for gathered token rows) and warpgroups 1–2
// only wait for full stages and issue wgmma, as in CUTLASS's warp-specialized kernels. No math
// thread issues a copy or waits at a block barrier inside the k loop, and the producer runs ahead
// into the next task while the math warpgroups are in their epilogue (the ninth session measured
// the issue path as what stretches a task: docs/PERFORMANCE.md).
//
// The stages are a ring over every task of the block: k tile g of the block's stream goes to stage
// g % kStages; `full` completes when its operands have landed (the producer's TMA bytes and one
// arrival per producer thread), `empty` when each math warp has finished reading it.
#pragma once
#include "ptx.cuh"
#include "tma.cuh"

namespace flashmoe {
namespace ptx {

__device__ __forceinline__ void mbarrier_arrive(unsigned long long* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_addr(bar)) : "memory");
}
// The barrier counts one arrival of this thread once all of its earlier cp.async copies have landed.
__device__ __forceinline__ void cp_async_mbarrier_arrive(unsigned long long* bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];" ::"r"(smem_addr(bar)) : "memory");
}
// Register reallocation between warpgroups (every warp of the warpgroup executes it).
template <int N>
__device__ __forceinline__ void setmaxnreg_dec() { asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(N)); }
template <int N>
__device__ __forceinline__ void setmaxnreg_inc() { asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(N)); }

}  // namespace ptx

// The math warpgroups' barrier, and the producer's (hardware barriers 1 and 2; the gate's groups
// use 1 and 2 before the Processors start, never at the same time).
template <class S>
__device__ __forceinline__ void math_sync() {
  if constexpr (S::kProducer) ptx::named_barrier<S::kMathThreads>(1);
  else __syncthreads();
}
template <class S>
__device__ __forceinline__ void producer_sync() { ptx::named_barrier<S::kProducerThreads>(2); }
// One computing warpgroup's own barrier (warpgroups apart, processor.cuh's kWarpgroupsApart: hardware barriers 3 and 4).
__device__ __forceinline__ void warpgroup_sync(int wg) { ptx::named_barrier<128>(3 + wg); }

// The ring's barriers, persistent for the whole forward (outside the shared-storage union).
template <int kStages>
struct StageRing {
  unsigned long long full[kStages];   // 1 (the TMA bytes) + one per filling producer thread
  unsigned long long empty[kStages];  // one arrival per math warp
};

}  // namespace flashmoe

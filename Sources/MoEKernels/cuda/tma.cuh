// Hopper's tensor memory accelerator (sm_90a): one thread asks for a whole 2-D box of a matrix
// described by a tensor map (encoded on the host: CUDAMoE.encodeTensorMaps, Driver.tensorMap), and
// the copy lands in shared memory in the 128-byte swizzle layout wgmma reads (wgmma.cuh), counting
// its bytes on an mbarrier. The tile GEMM stages its dense operands this way (FLASHMOE_TMA_OPERANDS).
#pragma once
#include "ptx.cuh"

namespace flashmoe {
namespace ptx {

__device__ __forceinline__ void mbarrier_init(unsigned long long* bar, unsigned arrivals) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_addr(bar)), "r"(arrivals) : "memory");
}
// The barrier's memory goes back to other uses (the epilogue, Combine, the gate) after this.
__device__ __forceinline__ void mbarrier_inval(unsigned long long* bar) {
  asm volatile("mbarrier.inval.shared::cta.b64 [%0];" ::"r"(smem_addr(bar)) : "memory");
}
// Makes initialised barriers visible to the async proxy (the TMA unit) before it signals them.
__device__ __forceinline__ void fence_mbarrier_init() { asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory"); }
// One arrival that also announces `bytes` of transfers the phase must see before it completes.
__device__ __forceinline__ void mbarrier_arrive_expect_tx(unsigned long long* bar, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_addr(bar)), "r"(bytes) : "memory");
}
// True once the phase with this parity has completed (the hardware may suspend the thread a while).
__device__ __forceinline__ bool mbarrier_try_wait(unsigned long long* bar, unsigned parity) {
  unsigned done;
  asm volatile(
      "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
      : "=r"(done)
      : "r"(smem_addr(bar)), "r"(parity)
      : "memory");
  return done != 0;
}
// Box (c0 = column, c1 = row; elements) of the tensor map at `map` (global memory) into `dst`
// (1024-byte aligned for the 128-byte swizzle), completing on `bar`.
__device__ __forceinline__ void tma_load_2d(void* dst, const void* map, int c0, int c1, unsigned long long* bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];" ::"r"(
          smem_addr(dst)),
      "l"(map), "r"(c0), "r"(c1), "r"(smem_addr(bar))
      : "memory");
}

}  // namespace ptx
}  // namespace flashmoe

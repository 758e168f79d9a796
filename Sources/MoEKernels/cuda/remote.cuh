// The one device-side interface between GPUs (issue #6): how this GPU writes into a peer's
// symmetric buffers and raises a peer's signals. Two implementations, chosen at compile time:
// - peer pointers (default): the peer table holds addresses this GPU can store to directly (peer
//   access in one process, nvshmem_ptr between processes); plain stores, release signals;
// - NVSHMEM puts (FLASHMOE_TRANSPORT_NVSHMEM, KernelSpec.transport = .nvshmem): the table holds
//   this GPU's own symmetric addresses and NVSHMEM carries each write to the PE named with it, for
//   peers that loads and stores cannot reach (another host). Rows travel by put-with-signal, so
//   the receiver counts arrivals (a 64-bit word per cell or result tile) instead of trusting a
//   fence that would have to cover other threads' puts.
#pragma once
#include "ptx.cuh"
#if defined(FLASHMOE_TRANSPORT_NVSHMEM)
#include <nvshmem.h>
#include <nvshmemx.h>
#endif

namespace flashmoe::remote {

#if defined(FLASHMOE_TRANSPORT_NVSHMEM)
constexpr bool kPut = true;
#else
constexpr bool kPut = false;
#endif

// The abort word of PE `pe` (best effort: the peer's watchdog bounds it anyway).
__device__ __forceinline__ void store_abort(unsigned* word, unsigned epoch, int pe) {
#if defined(FLASHMOE_TRANSPORT_NVSHMEM)
  nvshmem_uint32_p(word, epoch, pe);
#else
  (void)pe;
  ptx::st_release_sys(word, epoch);
#endif
}

// A cell's dispatch signal (epoch << 32 | rows) on PE `pe`.
__device__ __forceinline__ void signal_cell(unsigned long long* signal, unsigned long long value, int pe) {
#if defined(FLASHMOE_TRANSPORT_NVSHMEM)
  nvshmemx_signal_op(signal, value, NVSHMEM_SIGNAL_SET, pe);
#else
  (void)pe;
  ptx::st_release_sys(signal, value);
#endif
}

#if defined(FLASHMOE_TRANSPORT_NVSHMEM)
// A warp puts `bytes` from `src` (this GPU's symmetric memory) to `dst` on PE `pe` (the symmetric
// address), then adds 1 to `arrivals` there once the data is delivered.
__device__ __forceinline__ void put_counted_warp(void* dst, const void* src, size_t bytes, unsigned long long* arrivals, int pe) {
  nvshmemx_putmem_signal_nbi_warp(dst, src, bytes, arrivals, 1, NVSHMEM_SIGNAL_ADD, pe);
}
#endif

}  // namespace flashmoe::remote

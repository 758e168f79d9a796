// Paired Processors (FLASHMOE_CLUSTER_PAIRS, sm_90a): the kernel is launched in clusters of two
// blocks, and the two Processors of a cluster run the two halves of one pair task in step. The
// operand both halves read (B: two row tiles of one expert and column tile; A: one row tile and two
// column tiles) is fetched once from L2 by a multicast TMA copy that lands in both blocks' shared
// memory, k tiles alternating between the two blocks. A 128 × 256 tile reads 48 KB of operands
// per k tile; sharing B leaves 32 KB per block, sharing A 40 KB. The eighth session's loads-only
// loop showed the forward bound by this traffic (docs/PERFORMANCE.md).
//
// The handshake is one counter per block, written only by its partner: the number of k tiles (over
// every pair task so far, plus one) whose stages the partner has finished reading. A block asks for
// a multicast copy into stage s only once its partner has released what s held. The counter only
// grows, so no phase can be mistaken for another, and each wait is bounded by the watchdog.
#pragma once
#include "ptx.cuh"
#include "tma.cuh"
#include "watchdog.cuh"

namespace flashmoe {
namespace ptx {

__device__ __forceinline__ unsigned cluster_ctarank() {
  unsigned r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
  return r;
}
// Every thread of every block of the cluster; release/acquire orders what came before.
__device__ __forceinline__ void cluster_sync() {
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;" ::: "memory");
}
// The address of `local` (this block's shared memory) in block `rank` of the cluster.
__device__ __forceinline__ unsigned cluster_map(const void* local, unsigned rank) {
  unsigned remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(smem_addr(local)), "r"(rank));
  return remote;
}
__device__ __forceinline__ void st_release_cluster(unsigned remote, unsigned v) {
  asm volatile("st.release.cluster.shared::cluster.u32 [%0], %1;" ::"r"(remote), "r"(v) : "memory");
}
__device__ __forceinline__ unsigned ld_acquire_cluster(const unsigned* local) {
  unsigned v;
  asm volatile("ld.acquire.cluster.shared::cta.u32 %0, [%1];" : "=r"(v) : "r"(smem_addr(local)) : "memory");
  return v;
}
// Like tma_load_2d, into the same offset of every block in `mask`, completing bytes on the
// barrier at that offset in each.
__device__ __forceinline__ void tma_load_2d_multicast(void* dst, const void* map, int c0, int c1, unsigned long long* bar,
                                                      unsigned short mask) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.multicast::cluster"
      " [%0], [%1, {%2, %3}], [%4], %5;" ::"r"(smem_addr(dst)),
      "l"(map), "r"(c0), "r"(c1), "r"(smem_addr(bar)), "h"(mask)
      : "memory");
}

}  // namespace ptx

// Which operand the two halves of a pair task share (and fetch once, by multicast).
enum Share : unsigned { kShareNone = 0, kShareA = 1, kShareB = 2 };

// A block's side of the pair: its rank in the cluster, whether it has a partner (the block next to
// the OS block has none and runs both halves itself), the persistent stage barriers, and the
// handshake counters. `tiles` counts the k tiles of every pair task this block has run.
struct PairState {
  unsigned long long* full;  // [kStages] persistent: phase n of stage s is tile s + n · kStages
  unsigned* released;        // this block's counter, written by the partner
  unsigned partnerReleased;  // the partner's counter, in the cluster's address space
  unsigned rank;
  bool partner;
  unsigned tiles;

  // The partner has released every stage up to k tile `upTo` (exclusive) of the pair stream.
  __device__ void wait_released(unsigned upTo, const Watchdog& dog) const {
#pragma unroll 1
    for (int i = 0; i < 64; ++i)
      if (ptx::ld_acquire_cluster(released) >= upTo + 1) return;
    dog.wait(kRoleProcessor, kPhasePartner, upTo + 1, [&] { return (unsigned long long)ptx::ld_acquire_cluster(released); },
             [&](unsigned long long v) { return v >= upTo + 1; });
  }
  // Tells the partner that this block is done with the stages of every k tile before `upTo`.
  __device__ void release(unsigned upTo) const { ptx::st_release_cluster(partnerReleased, upTo + 1); }
};

}  // namespace flashmoe

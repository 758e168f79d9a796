// A check of the NVSHMEM put transport (remote.cuh) on its own, outside the layer (issue #6):
// every PE puts rows to every other PE with put-with-signal, the way dispatch and the result path
// use it, and a second kernel checks what arrived, word by word, and how many arrivals were
// counted. Two sources are tried, as the layer has both: rows the host uploaded (dispatch puts
// tokens) and rows this kernel has just written (results are staged, then put).
// Compiled by NVRTC to LTO-IR and linked with NVSHMEM's device library like the layer's put build.
#define FLASHMOE_TRANSPORT_NVSHMEM 1
#include "remote.cuh"

namespace flashmoe::probe {

// Symmetric buffers (same offsets on every PE): src [rows, words], dst [npes, rows, words]
// (dst[s] holds what PE s sent), arrive [npes] (rows counted from PE s), signal [npes].
struct Params {
  unsigned* src;
  unsigned* dst;
  unsigned long long* arrive;
  unsigned long long* signal;
  unsigned* report;  // kReportWords (not symmetric)
  int rows, words, me, npes;
  unsigned epoch;
  int staged;        // 1: this kernel writes src first (the result path's staging), 0: the host did
};

__device__ __forceinline__ unsigned expected(int pe, int row, int word, unsigned epoch, int words) {
  return (unsigned)pe * 0x01000000u + epoch * 0x00100000u + (unsigned)(row * words + word);
}

}  // namespace flashmoe::probe

using flashmoe::probe::Params;
using flashmoe::probe::expected;

extern "C" __global__ void __launch_bounds__(128) flashmoe_probe_put(Params p) {
  const int lane = threadIdx.x & 31;
  const int warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, warps = (gridDim.x * blockDim.x) >> 5;
  if (p.staged) {
    // Like a GEMM1 tile: the block writes its rows, fences, meets, then its warps put them.
    for (int r = blockIdx.x; r < p.rows; r += gridDim.x)
      for (int w = threadIdx.x; w < p.words; w += blockDim.x) p.src[(size_t)r * p.words + w] = expected(p.me, r, w, p.epoch, p.words);
    __threadfence_system();
    __syncthreads();
    for (int r = blockIdx.x + gridDim.x * (threadIdx.x >> 5); r < p.rows; r += gridDim.x * (blockDim.x >> 5))
      for (int q = 0; q < p.npes; ++q)
        if (q != p.me)
          flashmoe::remote::put_counted_warp(
            p.dst + ((size_t)p.me * p.rows + r) * p.words, p.src + (size_t)r * p.words, p.words * sizeof(unsigned), &p.arrive[p.me], q);
  } else {
    for (int r = warp; r < p.rows; r += warps)
      for (int q = 0; q < p.npes; ++q)
        if (q != p.me)
          flashmoe::remote::put_counted_warp(
            p.dst + ((size_t)p.me * p.rows + r) * p.words, p.src + (size_t)r * p.words, p.words * sizeof(unsigned), &p.arrive[p.me], q);
  }
  __syncwarp();
  if (blockIdx.x == 0 && threadIdx.x < p.npes && (int)threadIdx.x != p.me)
    flashmoe::remote::signal_cell(&p.signal[p.me], ((unsigned long long)p.epoch << 32) | (unsigned)p.rows, threadIdx.x);
  (void)lane;
}

// report: [0] words wrong, [1] first wrong source PE, [2] its row, [3] its word, [4] value found,
// [5] value expected; [8 + 2s, 9 + 2s]: rows counted from PE s (low, high 32 bits);
// [8 + 2·npes + 2s ...]: PE s's signal (low, high).
extern "C" __global__ void __launch_bounds__(128) flashmoe_probe_check(Params p) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x, threads = gridDim.x * blockDim.x;
  const size_t per = (size_t)p.rows * p.words;
  for (int s = 0; s < p.npes; ++s) {
    if (s == p.me) continue;
    for (size_t i = t; i < per; i += threads) {
      const int row = (int)(i / p.words), word = (int)(i % p.words);
      const unsigned want = expected(s, row, word, p.epoch, p.words), got = p.dst[(size_t)s * per + i];
      if (got != want && atomicAdd(&p.report[0], 1u) == 0) {
        p.report[1] = s; p.report[2] = row; p.report[3] = word; p.report[4] = got; p.report[5] = want;
      }
    }
  }
  if (t < p.npes) {
    const unsigned long long a = p.arrive[t], g = p.signal[t];
    p.report[8 + 2 * t] = (unsigned)a;
    p.report[9 + 2 * t] = (unsigned)(a >> 32);
    p.report[8 + 2 * p.npes + 2 * t] = (unsigned)g;
    p.report[9 + 2 * p.npes + 2 * t] = (unsigned)(g >> 32);
  }
}

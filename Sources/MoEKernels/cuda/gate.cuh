// The fused gate (Algorithm 1, FusedGate): logits = x · Wgᵀ in fp32, softmax, top-k with ties to
// the lower expert, combine weights (Eq. 2–3), then capacity slots claimed in token-major order.
// The slot assignment is a deterministic scan, not racing atomics: each 32-token gate tile ranks
// its own pairs per expert (phase 1), one warp per expert scans the tiles' counts (phase 2), and
// every pair then knows its slot (phase 3). Grid barriers separate the phases.
#pragma once
#include "storage.cuh"
#include "layout.cuh"

namespace flashmoe {

template <class S>
struct GateShared {
  static constexpr int kE = S::kExperts;
  float x[S::kGateTokens][S::kGateK + 1];
  float w[S::kGateExpertsPerPass][S::kGateK];
  float logits[S::kGateTokens][kE + 1];
  int pick[S::kGateTokens][S::kTopK];
  int count[kE];
};

// Phase 1: one 32-token tile per iteration, grid-strided.
template <class S>
__device__ void gate_tiles(const Params& p, GateShared<S>& sh) {
  using St = Storage<S::kDType>;
  using T = typename St::T;
  constexpr int E = S::kExperts, K = S::kTopK, H = S::kHidden;
  constexpr int GT = S::kGateTokens, GK = S::kGateK;
  constexpr int kGroups = S::kThreads / GT;               // expert groups
  constexpr int kPass = S::kGateExpertsPerPass;
  constexpr int kPerThread = kPass / kGroups;
  const T* x = static_cast<const T*>(p.x);
  const T* wg = static_cast<const T*>(p.gate);
  const int tiles = (p.tokens + GT - 1) / GT;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;

  for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int token0 = tile * GT;
    const int valid = min(GT, p.tokens - token0);
    const int tl = threadIdx.x % GT, group = threadIdx.x / GT;
    // Experts in passes of kPass so that each thread holds at most kPerThread accumulators.
    for (int e0 = 0; e0 < E; e0 += kPass) {
      float acc[kPerThread];
#pragma unroll
      for (int j = 0; j < kPerThread; ++j) acc[j] = 0.f;
      for (int k0 = 0; k0 < H; k0 += GK) {
        for (int i = threadIdx.x; i < GT * GK; i += S::kThreads) {
          int t = i / GK, k = i % GK;
          sh.x[t][k] = t < valid ? St::load(x[(size_t)(token0 + t) * H + k0 + k]) : 0.f;
        }
        for (int i = threadIdx.x; i < kPass * GK; i += S::kThreads) {
          int e = i / GK, k = i % GK;
          sh.w[e][k] = e0 + e < E ? St::load(wg[(size_t)(e0 + e) * H + k0 + k]) : 0.f;
        }
        __syncthreads();
#pragma unroll 4
        for (int k = 0; k < GK; ++k) {
          float xv = sh.x[tl][k];
#pragma unroll
          for (int j = 0; j < kPerThread; ++j) acc[j] = fmaf(xv, sh.w[group + j * kGroups][k], acc[j]);
        }
        __syncthreads();
      }
#pragma unroll
      for (int j = 0; j < kPerThread; ++j) {
        int e = e0 + group + j * kGroups;
        if (e < E) sh.logits[tl][e] = acc[j];
      }
    }
    for (int e = threadIdx.x; e < E; e += S::kThreads) sh.count[e] = 0;
    __syncthreads();

    // Softmax and top-k: one warp per token.
    for (int t = warp; t < valid; t += S::kWarps) {
      float m = __int_as_float(0xff800000);  // -inf
      for (int e = lane; e < E; e += 32) m = fmaxf(m, sh.logits[t][e]);
      for (int o = 16; o; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
      float sum = 0.f;
      for (int e = lane; e < E; e += 32) {
        float u = expf(sh.logits[t][e] - m);
        sh.logits[t][e] = u;
        sum += u;
      }
      for (int o = 16; o; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
      __syncwarp();
      for (int e = lane; e < E; e += 32) sh.logits[t][e] = sh.logits[t][e] / sum;
      __syncwarp();
      float picked_sum = 0.f;
      float weights[K];
#pragma unroll
      for (int j = 0; j < K; ++j) {
        // Best unpicked expert: larger p wins, NaN never wins, ties go to the lower index.
        float best = 0.f;
        int bestE = -1;
        for (int e = lane; e < E; e += 32) {
          bool taken = false;
#pragma unroll
          for (int q = 0; q < j; ++q) taken |= sh.pick[t][q] == e;
          if (taken) continue;
          float v = sh.logits[t][e];
          if (bestE < 0 || (v > best) || (best != best && v == v)) { best = v; bestE = e; }
        }
        for (int o = 16; o; o >>= 1) {
          float ov = __shfl_xor_sync(0xffffffffu, best, o);
          int oe = __shfl_xor_sync(0xffffffffu, bestE, o);
          bool take;
          if (oe < 0) take = false;
          else if (bestE < 0) take = true;
          else if (ov != ov) take = (best != best) && oe < bestE;
          else if (best != best) take = true;
          else take = ov > best || (ov == best && oe < bestE);
          if (take) { best = ov; bestE = oe; }
        }
        if (lane == 0) sh.pick[t][j] = bestE;
        __syncwarp();
        weights[j] = best;
        picked_sum += best;
      }
      if (lane == 0) {
        const int token = token0 + t;
#pragma unroll
        for (int j = 0; j < K; ++j) {
          p.pairExpert[token * K + j] = sh.pick[t][j];
          p.pairWeight[token * K + j] = p.renormalize ? weights[j] / picked_sum : weights[j];
        }
      }
    }
    __syncthreads();

    // Rank each pair among the same expert's pairs of this tile, in token-major order.
    if (warp == 0) {
      for (int q0 = 0; q0 < valid * K; q0 += 32) {
        int q = q0 + lane;
        int e = q < valid * K ? sh.pick[q / K][q % K] : -1 - lane;
        unsigned peers = __match_any_sync(0xffffffffu, e);
        int before = __popc(peers & ((1u << lane) - 1u));
        int base = e >= 0 ? sh.count[e] : 0;
        __syncwarp();
        if (e >= 0) {
          p.pairRank[token0 * K + q] = base + before;
          if (before == 0) sh.count[e] = base + __popc(peers);
        }
        __syncwarp();
      }
    }
    __syncthreads();
    for (int e = threadIdx.x; e < E; e += S::kThreads) p.chunkCount[tile * E + e] = sh.count[e];
    __syncthreads();
  }
}

// Phase 2: per expert, exclusive prefix of the tiles' counts; kept = min(total, C).
template <class S>
__device__ void gate_scan(const Params& p) {
  constexpr int E = S::kExperts;
  const int lane = threadIdx.x & 31;
  const int warps = gridDim.x * S::kWarps;
  const int tiles = (p.tokens + S::kGateTokens - 1) / S::kGateTokens;
  for (int e = blockIdx.x * S::kWarps + (threadIdx.x >> 5); e < E; e += warps) {
    int running = 0;
    for (int base = 0; base < tiles; base += 32) {
      int c = base + lane;
      int v = c < tiles ? __ldcg(&p.chunkCount[c * E + e]) : 0;
      int incl = v;
      for (int o = 1; o < 32; o <<= 1) {
        int n = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += n;
      }
      if (c < tiles) p.chunkOffset[c * E + e] = running + incl - v;
      running += __shfl_sync(0xffffffffu, incl, 31);
    }
    if (lane == 0) p.expertCount[e] = min(running, p.capacity);
  }
}

// Row layout of the grouped buffers: expert e owns rows [rowBase[e], rowBase[e+1]), padded to the
// tile height so that a row tile never spans two experts (in-place padding, §3.2.1).
template <class S>
__device__ void row_bases(const Params& p, int* rowBase) {
  if (threadIdx.x == 0) {
    int r = 0;
    for (int e = 0; e < S::kExperts; ++e) {
      rowBase[e] = r;
      r += (__ldcg(&p.expertCount[e]) + S::kTileM - 1) / S::kTileM * S::kTileM;
    }
    rowBase[S::kExperts] = r;
  }
  __syncthreads();
}

// Phase 3: every pair's slot and row; padding rows marked; per-forward counters zeroed.
template <class S>
__device__ void gate_slots(const Params& p, const int* rowBase) {
  constexpr int E = S::kExperts, K = S::kTopK, TM = S::kTileM;
  const int pairs = p.tokens * K;
  const int stride = gridDim.x * S::kThreads;
  for (int q = blockIdx.x * S::kThreads + threadIdx.x; q < pairs; q += stride) {
    int e = __ldcg(&p.pairExpert[q]);
    int tile = (q / K) / S::kGateTokens;
    int slot = __ldcg(&p.chunkOffset[tile * E + e]) + __ldcg(&p.pairRank[q]);
    if constexpr (S::kRanks > 1) {
      // The destination index e · C' + slot: the owner's incoming row on the way out and this
      // GPU's combine row on the way back (MemoryPlan.destinationIndex).
      p.pairRow[q] = slot < p.capacity ? e * p.cellRows + slot : -1;
      continue;
    }
    if (slot < p.capacity) {
      int row = rowBase[e] + slot;
      p.pairRow[q] = row;
      p.rowToken[row] = q / K;
    } else {
      p.pairRow[q] = -1;
    }
  }
  if constexpr (S::kRanks > 1) {
    // This GPU's combine counters, before any owner can have sent a result of this forward.
    const int counters = E * (p.cellRows / TM);
    unsigned* combineCount = p.peers[p.rank].combineCount;
    for (int i = blockIdx.x * S::kThreads + threadIdx.x; i < counters; i += stride) combineCount[i] = 0;
  }
  for (int e = blockIdx.x; e < E && S::kRanks == 1; e += gridDim.x) {
    for (int r = rowBase[e] + __ldcg(&p.expertCount[e]) + threadIdx.x; r < rowBase[e + 1]; r += S::kThreads) p.rowToken[r] = -1;
    for (int rt = rowBase[e] / TM + threadIdx.x; rt < rowBase[e + 1] / TM; rt += S::kThreads) p.rowTileExpert[rt] = e;
  }
  const int rowTiles = p.maxRows / TM;
  for (int rt = blockIdx.x * S::kThreads + threadIdx.x; rt < rowTiles; rt += stride) p.rowDone[rt] = 0;
  if (blockIdx.x == 0 && threadIdx.x == 0) *p.gemm1Done = 0;
}

}  // namespace flashmoe

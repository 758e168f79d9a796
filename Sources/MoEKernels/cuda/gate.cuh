// The fused gate (Algorithm 1, FusedGate): logits = x · Wgᵀ in fp32, softmax, top-k with ties to
// the lower expert, combine weights (Eq. 2–3), then capacity slots claimed in token-major order.
// The slot assignment is a deterministic scan, not racing atomics: each 32-token gate tile ranks
// its own pairs per expert (phase 1), one warp per expert scans the tiles' counts (phase 2), and
// every pair then knows its slot (phase 3). Grid barriers separate the phases.
#pragma once
#include "storage.cuh"
#include "layout.cuh"
#include "ptx.cuh"
#include "tile_gemm.cuh"

namespace flashmoe {

// The logits GEMM stages x and Wg in k chunks of kGateK, widened once to fp32 so that the inner
// loop is LDS.128 + FFMA only, double-buffered: the next chunk's cp.async copies are in flight while
// this one is multiplied (16-bit storage lands in `raw` first and is widened by the thread that
// copied it; fp32 lands in place). Row pitch kGateK + 4 floats: the rows one LDS.128 of a warp
// reads fall on distinct bank quads. A chunk holds kGateK / 4 consecutive k of each quarter of H:
// warp q of a group sums quarter q (`part` keeps warps 1–3's partial logits for warp 0).
template <class S>
struct GateShared {
  static constexpr int kE = S::kExperts;
  static constexpr int kRow = S::kGateK + 4;
  static constexpr int kRawVecs = S::kDType == DType::fp32 ? 1 : (S::kGateTokens + S::kGateExpertsPerPass) * S::kGateK / 8;
  alignas(16) float x[2][S::kGateTokens][kRow];
  alignas(16) float w[2][S::kGateExpertsPerPass][kRow];
  uint4 raw[kRawVecs];
  float logits[S::kGateTokens][kE + 1];
  float part[3][S::kGateTokens][S::kGateExpertsPerPass + 1];
  int pick[S::kGateTokens][S::kTopK];
  int count[kE];
};

// The gate runs in groups of one warpgroup (128 threads), each on its own 32-token tiles with its
// own GateShared: a block of two warpgroups is two gate groups, so the gate keeps the same threads
// per SM whether a Processor block is one warpgroup or two. A group meets at its own named barrier.
template <class S>
struct GateGroup {
  static constexpr int kThreads = 128, kWarps = 4;
  int thread, index, count;  // thread within the group; the group's index and the count over the grid
  __device__ GateGroup()
      : thread(threadIdx.x % kThreads), index(blockIdx.x * S::kMathWarpgroups + threadIdx.x / kThreads),
        count(gridDim.x * S::kMathWarpgroups) {}
  __device__ __forceinline__ void sync() const {
    if constexpr (S::kMathWarpgroups == 1) __syncthreads();
    else ptx::named_barrier<kThreads>(1 + (int)(threadIdx.x / kThreads));
  }
};

// The gate GEMM's thread tile. Shared memory returns 128 bytes per cycle (an LDS.128 of a warp
// takes 4 cycles, broadcast or not), so loads per FMA bound this loop: each warp of a group takes
// one quarter of H for the whole 32-token × kPass tile, so that a thread holds 4 tokens × kPass / 4
// experts (12 loads per 128 FMAs at kPass = 32, against 6 per 32 with the whole of H per warp).
// Measured at 8K tokens on an H200 (tenth session): the gate's tiles took 53–55 µs before and 51
// after, 46 without any global loads, so shared memory is no longer all that bounds the loop.
// Lanes: bits 0–2 the token group (tokens t, t + 8, t + 16, t + 24), bits 3–4 the expert group
// (experts e, e + 4, …).
template <class S>
struct GateTile {
  static constexpr int kPass = S::kGateExpertsPerPass;
  static constexpr int kSplit = 4;  // quarters of H, one warp each
  static constexpr int kTokens = 4, kExperts = kPass / 4;
  static constexpr int kTokenStride = 8, kExpertStride = 4;
  static_assert(S::kGateTokens == 32, "8 token groups × 4 tokens cover a 32-token tile");
  static_assert(kPass % 4 == 0 && kPass <= 32, "kGateExpertsPerPass must split into the thread tiles");
  static_assert(S::kGateK % (4 * kSplit) == 0, "each quarter's share of a chunk is whole k steps");
};

// Phase 1: one 32-token tile per iteration, strided over every gate group of the grid. Each logit
// is ((q0 + q1) + q2) + q3, qi one fmaf chain over quarter i of H in increasing k: a fixed order,
// so every run, GPU count and grid gives the same bits (docs/SEMANTICS.md: the CPU backend sums in
// other blocks, and the comparison allows for near-ties).
template <class S>
__device__ void gate_tiles(const Params& p, GateShared<S>& sh) {
  const GateGroup<S> g;
  constexpr int NT = GateGroup<S>::kThreads, NW = GateGroup<S>::kWarps;
  using St = Storage<S::kDType>;
  using T = typename St::T;
  using G = GateTile<S>;
  constexpr int E = S::kExperts, K = S::kTopK, H = S::kHidden;
  constexpr int GT = S::kGateTokens, GK = S::kGateK, kRow = GateShared<S>::kRow;
  constexpr int kPass = G::kPass, kPasses = (E + kPass - 1) / kPass, kChunks = H / GK;
  constexpr int kRt = G::kTokens, kRe = G::kExperts;
  constexpr bool kRaw = S::kDType != DType::fp32;
  // 16-byte vectors of one chunk: x (GT rows) then Wg (kPass rows), consecutive threads along a row.
  constexpr int kVec = 16 / sizeof(T), kRowVecs = GK / kVec;
  constexpr int kVecs = (GT + kPass) * kRowVecs, kN = (kVecs + NT - 1) / NT;
  constexpr int kQ = GK / G::kSplit;  // k of each quarter of H per chunk
  static_assert(kQ % kVec == 0 && H % GK == 0, "gate k chunk");
  // Where in H element `pos` of chunk `chunk`'s staged row comes from.
  auto source_k = [](int chunk, int pos) { return pos / kQ * (H / G::kSplit) + chunk * kQ + pos % kQ; };
  // Element k of a widened row is at swizzle(k): the two 16-byte stores of a vector of 8 go by
  // quarter warp, and vectors with bit 2 set store their halves swapped, so that each store's 8
  // lanes hit 8 distinct bank quads.
  auto swizzle = [](int k) { return kVec == 8 ? k ^ (k >> 3 & 4) : k; };
  const T* x = static_cast<const T*>(p.x);
  const T* wg = static_cast<const T*>(p.gate);
  const int tiles = (p.tokens + GT - 1) / GT;
  const int lane = g.thread & 31, warp = g.thread >> 5;
  // This thread's first token and expert (within the tile and the pass), and its quarter of H.
  const int t0 = lane & 7, e0 = lane >> 3, q0 = warp * kQ;

  // Rows past S (x) or E (Wg) are clamped into range: they only feed logits that are never written.
  auto fetch = [&](int tile, int pass, int chunk, int buf) {
#if defined(FLASHMOE_EXP_GATE_SKIP_LOADS)
    // A timing experiment (wrong routing on purpose): the gate GEMM on whatever shared memory holds.
    if (threadIdx.y == 0) {
      ptx::cp_async_commit();
      return;
    }
#endif
#pragma unroll
    for (int n = 0; n < kN; ++n) {
      const int v = g.thread + n * NT, r = v / kRowVecs, c = v % kRowVecs;
      if (kVecs % NT != 0 && v >= kVecs) break;
      const T* src = r < GT ? x + (size_t)min(tile * GT + r, p.tokens - 1) * H
                            : wg + (size_t)min(pass * kPass + r - GT, E - 1) * H;
      void* dst = kRaw ? static_cast<void*>(&sh.raw[v]) : r < GT ? &sh.x[buf][r][c * kVec] : &sh.w[buf][r - GT][c * kVec];
      ptx::cp_async16(dst, src + source_k(chunk, c * kVec), 16);
    }
    ptx::cp_async_commit();
  };
  // Waits for this thread's copies; 16-bit storage is then widened exactly (Storage::load). tf32
  // on wgmma: the first pass over a token tile also writes its x chunk, rounded, to p.xRounded.
  auto land = [&](int buf, int tile, int pass, int chunk) {
    ptx::cp_async_wait<0>();
    if constexpr (kRoundedTokens<S>) {
      if (pass == 0) {
        float* xr = static_cast<float*>(p.xRounded);
#pragma unroll
        for (int n = 0; n < kN; ++n) {
          const int v = g.thread + n * NT, r = v / kRowVecs, c = v % kRowVecs;
          if (kVecs % NT != 0 && v >= kVecs) break;
          if (r >= GT || tile * GT + r >= p.tokens) continue;
          const float4 s = *reinterpret_cast<const float4*>(&sh.x[buf][r][c * kVec]);
          *reinterpret_cast<float4*>(xr + (size_t)(tile * GT + r) * H + source_k(chunk, c * kVec)) =
              make_float4(__uint_as_float(ptx::to_tf32(s.x)), __uint_as_float(ptx::to_tf32(s.y)),
                          __uint_as_float(ptx::to_tf32(s.z)), __uint_as_float(ptx::to_tf32(s.w)));
        }
      }
    }
    if constexpr (kRaw) {
#pragma unroll
      for (int n = 0; n < kN; ++n) {
        const int v = g.thread + n * NT, r = v / kRowVecs, c = v % kRowVecs;
        if (kVecs % NT != 0 && v >= kVecs) break;
        const uint4 raw = sh.raw[v];
        const T* e = reinterpret_cast<const T*>(&raw);
        float* row = r < GT ? sh.x[buf][r] : sh.w[buf][r - GT];
#pragma unroll
        for (int h = 0; h < kVec; h += 4)
          *reinterpret_cast<float4*>(row + swizzle(c * kVec + h)) =
              make_float4(St::load(e[h]), St::load(e[h + 1]), St::load(e[h + 2]), St::load(e[h + 3]));
      }
    }
  };

  int tile = g.index, buf = 0;
  if (tile < tiles) {
    fetch(tile, 0, 0, 0);
    land(0, tile, 0, 0);
  }
  for (; tile < tiles; tile += g.count) {
    const int token0 = tile * GT;
    const int valid = min(GT, p.tokens - token0);
    for (int pass = 0; pass < kPasses; ++pass) {
      float acc[kRt][kRe];
#pragma unroll
      for (int i = 0; i < kRt; ++i)
#pragma unroll
        for (int j = 0; j < kRe; ++j) acc[i][j] = 0.f;
      for (int chunk = 0; chunk < kChunks; ++chunk) {
        // Chunk `chunk` is in `buf`; everyone is done with the other buffer.
        g.sync();
        int nextTile = tile, nextPass = pass, nextChunk = chunk + 1;
        if (nextChunk == kChunks) {
          nextChunk = 0;
          if (++nextPass == kPasses) nextPass = 0, nextTile += g.count;
        }
        const bool more = nextTile < tiles;
        if (more) fetch(nextTile, nextPass, nextChunk, buf ^ 1);
        const float* xs = &sh.x[buf][t0][0];
        const float* ws = &sh.w[buf][e0][0];
        // Fragments are loaded one step of 4 k ahead of their FMAs (LDS latency; two steps ahead
        // would not fit the producer kernel's 168 registers), and the FMAs go component-major so
        // that consecutive FMAs belong to different chains.
        float4 a[2][kRt], b[2][kRe];
        auto fragments = [&](int f, int k) {
#pragma unroll
          for (int i = 0; i < kRt; ++i) a[f][i] = *reinterpret_cast<const float4*>(xs + i * G::kTokenStride * kRow + swizzle(q0 + k));
#pragma unroll
          for (int j = 0; j < kRe; ++j) b[f][j] = *reinterpret_cast<const float4*>(ws + j * G::kExpertStride * kRow + swizzle(q0 + k));
        };
        fragments(0, 0);
#pragma unroll
        for (int k = 0; k < kQ; k += 4) {
          const int f = k / 4 % 2;
          if (k + 4 < kQ) fragments(f ^ 1, k + 4);
#pragma unroll
          for (int c = 0; c < 4; ++c)
#pragma unroll
            for (int i = 0; i < kRt; ++i)
#pragma unroll
              for (int j = 0; j < kRe; ++j) {
                const float xv = c == 0 ? a[f][i].x : c == 1 ? a[f][i].y : c == 2 ? a[f][i].z : a[f][i].w;
                const float wv = c == 0 ? b[f][j].x : c == 1 ? b[f][j].y : c == 2 ? b[f][j].z : b[f][j].w;
                acc[i][j] = fmaf(xv, wv, acc[i][j]);
              }
        }
        if (more) land(buf ^ 1, nextTile, nextPass, nextChunk);
        buf ^= 1;
      }
      // Warps 1–3 leave their quarter's partial logits; warp 0 adds them in order.
      if (warp > 0) {
#pragma unroll
        for (int j = 0; j < kRe; ++j)
#pragma unroll
          for (int i = 0; i < kRt; ++i) sh.part[warp - 1][t0 + i * G::kTokenStride][e0 + j * G::kExpertStride] = acc[i][j];
      }
      g.sync();
      if (warp == 0) {
#pragma unroll
        for (int j = 0; j < kRe; ++j) {
          const int el = e0 + j * G::kExpertStride, e = pass * kPass + el;
#pragma unroll
          for (int i = 0; i < kRt; ++i) {
            const int t = t0 + i * G::kTokenStride;
            if (e < E) sh.logits[t][e] = ((acc[i][j] + sh.part[0][t][el]) + sh.part[1][t][el]) + sh.part[2][t][el];
          }
        }
      }
    }
    for (int e = g.thread; e < E; e += NT) sh.count[e] = 0;
    g.sync();

    // Softmax and top-k: one warp per token.
    for (int t = warp; t < valid; t += NW) {
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
    g.sync();

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
    g.sync();
    for (int e = g.thread; e < E; e += NT) p.chunkCount[tile * E + e] = sh.count[e];
    g.sync();
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

}  // namespace flashmoe

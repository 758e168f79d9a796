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

// The logits GEMM, two forms by storage dtype (GateShared::kMMA):
// - 16-bit storage: on the tensor cores (mma.sync m16n8k16, fp32 accumulators, GateMMA below),
//   x and Wg staged as stored in a ring of kStages k chunks of cp.async copies.
// - fp32 storage: on FMA in exact fp32 (the gate never uses TF32, docs/SEMANTICS.md), x and Wg in
//   k chunks of kGateK, double-buffered. Row pitch kGateK + 4 floats: the rows one LDS.128 of a warp
//   reads fall on distinct bank quads. A chunk holds kGateK / 4 consecutive k of each quarter of H:
//   warp q of a group sums quarter q (`part` keeps warps 1–3's partial logits for warp 0).
template <class S>
struct GateShared {
  static constexpr int kE = S::kExperts, GT = S::kGateTokens, kPass = S::kGateExpertsPerPass, GK = S::kGateK;
  static constexpr bool kMMA = S::kDType != DType::fp32;
  using T = typename Storage<S::kDType>::T;
  // Four chunks: three in flight while one is multiplied (with two, the tensor-core gate waited
  // on each chunk's round trip to memory). A row's padding of 16 bytes puts the 8 rows of an
  // ldmatrix on distinct bank quads.
  static constexpr int kStages = 4, kMRow = GK + 8;
  static constexpr int kRow = GK + 4;
  struct MMAStages {
    alignas(16) T x[kStages][GT][kMRow];
    alignas(16) T w[kStages][kPass][kMRow];
  };
  struct FMAStages {
    alignas(16) float x[2][GT][kRow];
    alignas(16) float w[2][kPass][kRow];
    float part[3][GT][kPass + 1];
  };
  typename Pick<kMMA, MMAStages, FMAStages>::type stages;
  float logits[GT][kE + 1];
  int pick[GT][S::kTopK];
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

// The fp32 gate GEMM's thread tile. Shared memory returns 128 bytes per cycle (an LDS.128 of a
// warp takes 4 cycles, broadcast or not), so loads per FMA bound this loop: each warp of a group
// takes one quarter of H for the whole 32-token × kPass tile, so that a thread holds 4 tokens ×
// kPass / 4 experts (12 loads per 128 FMAs at kPass = 32, against 6 per 32 with the whole of H per
// warp). Lanes: bits 0–2 the token group (tokens t, t + 8, t + 16, t + 24), bits 3–4 the expert
// group (experts e, e + 4, …).
template <class S>
struct GateTile {
  static constexpr int kPass = S::kGateExpertsPerPass;
  static constexpr int kSplit = 4;  // quarters of H, one warp each
  static constexpr int kTokens = 4, kExperts = kPass / 4;
  static constexpr int kTokenStride = 8, kExpertStride = 4;
  static_assert(S::kGateTokens == 32, "8 token groups × 4 tokens cover a 32-token tile");
  static_assert(kPass % 8 == 0 && kPass <= 32, "kGateExpertsPerPass must split into the thread tiles and n8 tiles");
  static_assert(S::kGateK % (4 * kSplit) == 0, "each quarter's share of a chunk is whole k steps");
};

// The 16-bit gate GEMM on the tensor cores. The FMA form was bound by issue, not memory (tenth
// session, ncu at 8K tokens on an H200: 51 µs, 0.5 instructions per cycle per scheduler, 25 M
// instructions, two thirds of them FFMA); mma.sync does a 16 × 8 × 16 block in one instruction.
// A group's chunks form one stream over its tiles (step s: the group's tile s / kPerTile, pass,
// chunk), so that the copies run ahead across tile boundaries while the routing of a tile runs.
// Warp w computes row tile w % 2 (16 tokens) and n8 tiles w / 2 and w / 2 + 2 of each pass: a
// logit is one accumulator chain over H in k steps of 16, in increasing k (a fixed order: every
// run, GPU count and grid gives the same bits).
template <class S>
struct GateMMA {
  using Sh = GateShared<S>;
  using T = typename Sh::T;
  static constexpr int H = S::kHidden, E = S::kExperts, GT = Sh::GT, GK = Sh::GK, kPass = Sh::kPass;
  static constexpr int kStages = Sh::kStages, kNT = kPass / 8;
  // n8 tiles per warp: warps 2j and 2j + 1 take tiles j, j + 2, j + 4, … (two slots at least, the
  // form of up to 32 experts).
  static constexpr int kJ = kNT <= 4 ? 2 : (kNT + 1) / 2;
  static constexpr int kPasses = (E + kPass - 1) / kPass, kChunks = H / GK, kPerTile = kPasses * kChunks;
  static constexpr int kRowVecs = GK / 8, kVecs = (GT + kPass) * kRowVecs;
  static_assert(GT == 32 && kPass % 8 == 0 && kNT <= 16 && GK % 32 == 0, "two m16 tiles, up to sixteen n8 tiles, k steps of 32");
  const Params& p;
  Sh& sh;
  const GateGroup<S>& g;
  const int tiles;  // token tiles of the forward
  int fetched = 0;  // steps of this group's stream whose copies went out

  __device__ GateMMA(const Params& p_, Sh& sh_, const GateGroup<S>& g_)
      : p(p_), sh(sh_), g(g_), tiles((p_.tokens + GT - 1) / GT) {}

  // Copies of the next step; one commit group per step, empty past the group's last tile, so that
  // wait_group counts steps. This thread copies 16-byte column c of rows r0, r0 + 8, …: their
  // addresses are worked out once per tile and pass (`rows`). Rows past S (x) or E (Wg) are clamped
  // into range: they only feed logits that are never used.
  static constexpr int kN = (kVecs + 127) / 128, kRowStep = 128 / kRowVecs;
  const T* rows[kN];
  __device__ void fetch_next() {
    const int s = fetched++, tile = g.index + s / kPerTile * g.count, chunk = s % kChunks;
    bool copy = tile < tiles;
#if defined(FLASHMOE_EXP_GATE_SKIP_LOADS)
    // A timing experiment (wrong routing on purpose): the gate GEMM on whatever shared memory holds.
    if (threadIdx.y == 0) copy = false;
#endif
    if (copy) {
      const int buf = s % kStages, r0 = g.thread / kRowVecs, c = g.thread % kRowVecs;
      if (chunk == 0) {
        const int pass = s % kPerTile / kChunks;
        const T* x = static_cast<const T*>(p.x);
        const T* wg = static_cast<const T*>(p.gate);
#pragma unroll
        for (int n = 0; n < kN; ++n) {
          const int r = min(r0 + n * kRowStep, GT + kPass - 1);
          rows[n] = (r < GT ? x + (size_t)min(tile * GT + r, p.tokens - 1) * H : wg + (size_t)min(r - GT + pass * kPass, E - 1) * H) + c * 8;
        }
      }
#pragma unroll
      for (int n = 0; n < kN; ++n) {
        const int r = r0 + n * kRowStep;
        if (kVecs % 128 != 0 && r >= GT + kPass) break;
        T* dst = r < GT ? &sh.stages.x[buf][r][c * 8] : &sh.stages.w[buf][r - GT][c * 8];
        ptx::cp_async16(dst, rows[n] + chunk * GK, 16);
      }
    }
    ptx::cp_async_commit();
  }
  __device__ void start() {
#pragma unroll 1
    for (int i = 0; i < kStages - 1; ++i) fetch_next();
  }

  // The logits of the group's n-th tile into sh.logits (columns past E not written).
  __device__ void logits(int n) {
    const int lane = g.thread & 31, warp = g.thread >> 5, m = warp & 1;
#pragma unroll 1
    for (int pass = 0; pass < kPasses; ++pass) {
      float acc[kJ][4] = {};
#pragma unroll 1
      for (int chunk = 0; chunk < kChunks; ++chunk) {
        // Step s (this one) has landed for every thread, and every warp is done with step s − 1,
        // whose buffer the next fetch refills.
        const int buf = (n * kPerTile + pass * kChunks + chunk) % kStages;
        ptx::cp_async_wait<kStages - 2>();
        g.sync();
        fetch_next();
        const T* xs = &sh.stages.x[buf][m * 16 + (lane & 15)][(lane >> 4) * 8];
#pragma unroll
        for (int k = 0; k < GK; k += 32) {
          unsigned a[2][4];
          ptx::ldmatrix_x4(a[0], xs + k);
          ptx::ldmatrix_x4(a[1], xs + k + 16);
#pragma unroll
          for (int j = 0; j < kJ; ++j) {
            const int nt = (warp >> 1) + 2 * j;
            if (nt < kNT) {
              unsigned b[4];
              ptx::ldmatrix_x4(b, &sh.stages.w[buf][nt * 8 + (lane & 7)][k + (lane >> 3) * 8]);
              ptx::mma_16816<S::kDType == DType::bf16>(acc[j], a[0], b[0], b[1]);
              ptx::mma_16816<S::kDType == DType::bf16>(acc[j], a[1], b[2], b[3]);
            }
          }
        }
      }
#pragma unroll
      for (int j = 0; j < kJ; ++j) {
        const int nt = (warp >> 1) + 2 * j, t = m * 16 + (lane >> 2), e = pass * kPass + nt * 8 + 2 * (lane & 3);
        if (nt >= kNT) continue;
#pragma unroll
        for (int c = 0; c < 4; ++c)
          if (e + (c & 1) < E) sh.logits[t + (c >> 1) * 8][e + (c & 1)] = acc[j][c];
      }
    }
  }
};

// The fp32 gate GEMM on FMA: each logit is ((q0 + q1) + q2) + q3, qi one fmaf chain over quarter
// i of H in increasing k (a fixed order). Chunks are double-buffered over the group's tiles: the
// next chunk's copies are in flight while this one is multiplied.
template <class S>
struct GateFMA {
  using Sh = GateShared<S>;
  using G = GateTile<S>;
  static_assert(!Sh::kMMA, "16-bit storage takes the tensor-core gate");
  static constexpr int H = S::kHidden, E = S::kExperts, GT = Sh::GT, GK = Sh::GK, kRow = Sh::kRow;
  static constexpr int kPass = G::kPass, kPasses = (E + kPass - 1) / kPass, kChunks = H / GK;
  static constexpr int kRt = G::kTokens, kRe = G::kExperts;
  // 16-byte vectors of one chunk: x (GT rows) then Wg (kPass rows), consecutive threads along a row.
  static constexpr int kRowVecs = GK / 4, kVecs = (GT + kPass) * kRowVecs, kN = (kVecs + 127) / 128;
  static constexpr int kQ = GK / G::kSplit;  // k of each quarter of H per chunk
  static_assert(kQ % 4 == 0 && H % GK == 0, "gate k chunk");
  const Params& p;
  Sh& sh;
  const GateGroup<S>& g;
  const int tiles;
  int buf = 0;

  __device__ GateFMA(const Params& p_, Sh& sh_, const GateGroup<S>& g_)
      : p(p_), sh(sh_), g(g_), tiles((p_.tokens + GT - 1) / GT) {}

  // Where in H element `pos` of chunk `chunk`'s staged row comes from.
  static __device__ int source_k(int chunk, int pos) { return pos / kQ * (H / G::kSplit) + chunk * kQ + pos % kQ; }

  // Rows past S (x) or E (Wg) are clamped into range: they only feed logits that are never written.
  __device__ void fetch(int tile, int pass, int chunk, int b) {
    const float* x = static_cast<const float*>(p.x);
    const float* wg = static_cast<const float*>(p.gate);
#pragma unroll
    for (int n = 0; n < kN; ++n) {
      const int v = g.thread + n * 128, r = v / kRowVecs, c = v % kRowVecs;
      if (kVecs % 128 != 0 && v >= kVecs) break;
      const float* src = r < GT ? x + (size_t)min(tile * GT + r, p.tokens - 1) * H
                                : wg + (size_t)min(pass * kPass + r - GT, E - 1) * H;
      float* dst = r < GT ? &sh.stages.x[b][r][c * 4] : &sh.stages.w[b][r - GT][c * 4];
      ptx::cp_async16(dst, src + source_k(chunk, c * 4), 16);
    }
    ptx::cp_async_commit();
  }
  // Waits for this thread's copies. tf32 on wgmma: the first pass over a token tile also writes
  // its x chunk, rounded, to p.xRounded.
  __device__ void land(int b, int tile, int pass, int chunk) {
    ptx::cp_async_wait<0>();
    if constexpr (kRoundedTokens<S>) {
      if (pass == 0) {
        float* xr = static_cast<float*>(p.xRounded);
#pragma unroll
        for (int n = 0; n < kN; ++n) {
          const int v = g.thread + n * 128, r = v / kRowVecs, c = v % kRowVecs;
          if (kVecs % 128 != 0 && v >= kVecs) break;
          if (r >= GT || tile * GT + r >= p.tokens) continue;
          const float4 s = *reinterpret_cast<const float4*>(&sh.stages.x[b][r][c * 4]);
          *reinterpret_cast<float4*>(xr + (size_t)(tile * GT + r) * H + source_k(chunk, c * 4)) =
              make_float4(__uint_as_float(ptx::to_tf32(s.x)), __uint_as_float(ptx::to_tf32(s.y)),
                          __uint_as_float(ptx::to_tf32(s.z)), __uint_as_float(ptx::to_tf32(s.w)));
        }
      }
    }
  }
  __device__ void start() {
    if (g.index < tiles) {
      fetch(g.index, 0, 0, 0);
      land(0, g.index, 0, 0);
    }
  }

  // The logits of the group's n-th tile into sh.logits.
  __device__ void logits(int n) {
    const int tile = g.index + n * g.count;
    const int lane = g.thread & 31, warp = g.thread >> 5;
    // This thread's first token and expert (within the tile and the pass), and its quarter of H.
    const int t0 = lane & 7, e0 = lane >> 3, q0 = warp * kQ;
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
        const float* xs = &sh.stages.x[buf][t0][0];
        const float* ws = &sh.stages.w[buf][e0][0];
        // Fragments are loaded one step of 4 k ahead of their FMAs (LDS latency), and the FMAs go
        // component-major so that consecutive FMAs belong to different chains.
        float4 a[2][kRt], b[2][kRe];
        auto fragments = [&](int f, int k) {
#pragma unroll
          for (int i = 0; i < kRt; ++i) a[f][i] = *reinterpret_cast<const float4*>(xs + i * G::kTokenStride * kRow + q0 + k);
#pragma unroll
          for (int j = 0; j < kRe; ++j) b[f][j] = *reinterpret_cast<const float4*>(ws + j * G::kExpertStride * kRow + q0 + k);
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
          for (int i = 0; i < kRt; ++i) sh.stages.part[warp - 1][t0 + i * G::kTokenStride][e0 + j * G::kExpertStride] = acc[i][j];
      }
      g.sync();
      if (warp == 0) {
#pragma unroll
        for (int j = 0; j < kRe; ++j) {
          const int el = e0 + j * G::kExpertStride, e = pass * kPass + el;
#pragma unroll
          for (int i = 0; i < kRt; ++i) {
            const int t = t0 + i * G::kTokenStride;
            if (e < E) sh.logits[t][e] = ((acc[i][j] + sh.stages.part[0][t][el]) + sh.stages.part[1][t][el]) + sh.stages.part[2][t][el];
          }
        }
      }
    }
  }
};

// Phase 1: one 32-token tile per iteration, strided over every gate group of the grid: its logits
// (GateMMA or GateFMA, each a fixed order of summation, so every run, GPU count and grid gives the
// same bits; docs/SEMANTICS.md: the CPU backend sums in other blocks, and the comparison allows
// for near-ties), then softmax, top-k and the tile's ranks.
template <class S>
__device__ void gate_tiles(const Params& p, GateShared<S>& sh) {
  const GateGroup<S> g;
  constexpr int NT = GateGroup<S>::kThreads;
  constexpr int E = S::kExperts, K = S::kTopK, GT = S::kGateTokens;
  const int tiles = (p.tokens + GT - 1) / GT;
  const int lane = g.thread & 31, warp = g.thread >> 5;
  typename Pick<GateShared<S>::kMMA, GateMMA<S>, GateFMA<S>>::type gemm(p, sh, g);
  gemm.start();
  for (int tile = g.index, n = 0; tile < tiles; tile += g.count, ++n) {
    const int token0 = tile * GT;
    const int valid = min(GT, p.tokens - token0);
    gemm.logits(n);
    for (int e = g.thread; e < E; e += NT) sh.count[e] = 0;
    g.sync();

    // Softmax and top-k: lane t of warp 0 routes token t, expert by expert in order (the sum as
    // docs/SEMANTICS.md states it). One warp per token with shuffles took a third of the gate's
    // 31 µs once its GEMM was on the tensor cores (eleventh session): short chains of dependent
    // shuffles, eight tokens in turn per warp.
    if (warp == 0 && lane < valid) {
      float* l = sh.logits[lane];
      float m = __int_as_float(0xff800000);  // -inf
      for (int e = 0; e < E; ++e) m = fmaxf(m, l[e]);
      float sum = 0.f;
      for (int e = 0; e < E; ++e) {
        const float u = expf(l[e] - m);
        l[e] = u;
        sum += u;
      }
      for (int e = 0; e < E; ++e) l[e] = l[e] / sum;
      float picked_sum = 0.f;
      float weights[K];
      int picks[K];
#pragma unroll
      for (int j = 0; j < K; ++j) {
        // Best unpicked expert: larger p wins, NaN never wins, ties go to the lower index.
        float best = 0.f;
        int bestE = -1;
        for (int e = 0; e < E; ++e) {
          bool taken = false;
#pragma unroll
          for (int q = 0; q < j; ++q) taken |= picks[q] == e;
          const float v = l[e];
          if (!taken && (bestE < 0 || v > best || (best != best && v == v))) {
            best = v;
            bestE = e;
          }
        }
        picks[j] = bestE;
        sh.pick[lane][j] = bestE;
        weights[j] = best;
        picked_sum += best;
      }
      const int token = token0 + lane;
#pragma unroll
      for (int j = 0; j < K; ++j) {
        p.pairExpert[token * K + j] = picks[j];
        p.pairWeight[token * K + j] = p.renormalize ? weights[j] / picked_sum : weights[j];
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

// The Processor's tile GEMM (fGET in Algorithm 2): C[tileM × BN] = A[tileM × K] · Bᵀ for one or
// two B matrices (two for the gated form's W1 and W3), operands staged by cp.async in a
// multi-stage shared-memory pipeline. A's rows are given one pointer per row, which lets GEMM0
// gather token rows straight from x through the routing table (a null row is zero padding).
// Loads are coalesced: consecutive threads fetch consecutive 16-byte chunks of a row. With
// FLASHMOE_TMA_OPERANDS (wgmma only) the dense operands come by TMA instead (the expert weights,
// and A where it is dense: GEMM1's intermediate): one thread asks for each stage's whole box, which
// lands swizzled and completes on the stage's mbarrier, and the warps spend no instructions on it.
// On one H200 this took 8K tokens from 0.754 to 0.66 ms (sixth session).
// Math: on sm_90a, 16-bit inputs go to wgmma (operands in 128-byte-swizzled shared memory,
// wgmma.cuh): one warpgroup computes the whole tile, or with two warpgroups (S::kWarpgroups) each
// computes its half of the tile's columns against the same staged A rows, which halves the A
// traffic per FLOP of a 128 × 256 tile against two 128 × 128 ones. Elsewhere mma.sync m16n8k16
// (bf16/fp16); fp32 storage uses mma.sync m16n8k8 tf32 (tf32 math) or fp32 FMA (fp32 math).
// Accumulators stay in registers for the caller's epilogue.
#pragma once
#include "storage.cuh"
#include "ptx.cuh"
#include "wgmma.cuh"
#include "tma.cuh"
#include "watchdog.cuh"
#include "producer.cuh"

namespace flashmoe {

template <bool kFirst, class A, class B> struct Pick { using type = A; };
template <class A, class B> struct Pick<false, A, B> { using type = B; };

// Where the TMA path finds its operands: a tensor map per B matrix (global memory, 128 bytes
// each: CUDAMoE encodes them) and the first of the tile's BN rows, optionally A's map and first
// row; the watchdog bounds the waits.
template <int NB>
struct OperandMaps {
  const void* map[NB];
  int row0;
  const Watchdog* dog;
  const void* aMap;  // run<K, true>: A too comes by TMA, rows aRow0.. of this map
  int aRow0;
};

template <class S, int NB, int BN>
struct TileGemm {
  using St = Storage<S::kDType>;
  using T = typename St::T;
  static constexpr int TM = S::kTileM, STAGES = S::kStages;
  // 128-byte rows per stage: 64 elements of a 16-bit type, 32 of fp32.
  static constexpr int TK = 128 / sizeof(T);
  static constexpr int kVec = 16 / sizeof(T);             // elements per 16-byte chunk
  static constexpr int kRow = TK + kVec;                  // smem row length (one chunk of padding)
  static constexpr int kChunks = TK / kVec;               // 16-byte chunks per row per stage (8)
  static constexpr int kARowsPerThread = TM * kChunks / S::kMathThreads;
  static constexpr bool kMMA16 = S::kDType != DType::fp32;
  static constexpr bool kTF32 = S::kDType == DType::fp32 && S::kMath == MathMode::tf32;
  static constexpr bool kFMA = !kMMA16 && !kTF32;
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  // wgmma.cuh instantiates the 64- and 128-wide forms; other widths keep mma.sync. tf32 goes to
  // wgmma only when the spec asks for it (KernelSpec.tf32OnWGMMA defines FLASHMOE_TF32_WGMMA).
  static constexpr int kBNw = BN / S::kMathWarpgroups;   // columns of each B one warpgroup computes
#if defined(FLASHMOE_TF32_WGMMA)
  static constexpr bool kWG = (kMMA16 || kTF32) && (kBNw == 64 || kBNw == 128);
#else
  static constexpr bool kWG = kMMA16 && (kBNw == 64 || kBNw == 128);
#endif
#else
  static constexpr int kBNw = BN;
  static constexpr bool kWG = false;
#endif
  // mma layouts: 2×2 warps, warp (wm, wn) covers rows wm·64.. and columns wn·BN/2..
  static constexpr int kNT = BN / 16;                     // n8 tiles per warp
  // FMA layout: thread (ty, tx) of 16 × 8 covers rows ty + 16i (i < 8), columns tx + 8j (j < BN/8).
  static constexpr int kFJ = BN / 8;
  static constexpr int kAcc = kWG ? kBNw : kFMA ? 8 * kFJ : 4 * kNT * 4;
  static_assert(TM == 128, "warp layouts assume 128-row tiles");
  static_assert(S::kMathThreads == 128 || (kWG && S::kMathThreads == 256),
                "4 warps, or two warpgroups on wgmma (KernelSpec allows 256 threads only there)");
  static_assert(BN % 16 == 0 && kBNw <= 128, "BN");
  static_assert(TM * kChunks % S::kMathThreads == 0, "A staging");
  // This thread's index among the computing threads (after the producer warpgroup, if any).
  // (Unsigned, as threadIdx.x: without a producer the code is the same as with threadIdx.x.)
  static __device__ __forceinline__ unsigned mt() { return threadIdx.x - (unsigned)S::kMathOffset; }
#if defined(FLASHMOE_TMA_OPERANDS)
  static constexpr bool kTMA = true;
  static_assert(kWG, "TMA operands need the wgmma path (KernelSpec.validate says which layers have it)");
#else
  static constexpr bool kTMA = false;
#endif

  // The epilogue stages the finished tile here (over the drained pipeline) so that it leaves in
  // 16-byte vectors, whole row segments at a time: coalesced, and few, full packets over NVLink.
  static constexpr int kCRow = BN + kVec;  // one chunk of padding: fragment writes are conflict-free
  // wgmma wants unpadded 128-byte rows (the swizzle spreads the banks) and 1024-byte-aligned tiles.
  static constexpr int kSmemRow = kWG ? TK : kRow;
  struct alignas(kWG ? 1024 : 16) SmemOperands {
    T a[STAGES][TM][kSmemRow];
    T b[STAGES][NB][BN][kSmemRow];
  };
  struct alignas(kWG ? 1024 : 16) SmemWithBarriers : SmemOperands {
    unsigned long long full[STAGES];  // TMA: stage s's boxes have landed (one phase per use)
  };
  using Smem = typename Pick<kTMA, SmemWithBarriers, SmemOperands>::type;
  // Where chunk c of row r is staged: swizzled for wgmma (bank-conflict-free without padding).
  static __device__ __forceinline__ int chunkAt(int r, int c) { return kWG ? (c ^ (r & 7)) : c; }
  static_assert(sizeof(Smem) >= sizeof(T) * TM * kCRow, "the staged tile fits in the drained pipeline");

  float acc[NB][kAcc];

  // Timing experiments (FLASHMOE_NVRTC_DEFINES; wrong results on purpose): the k loop without its
  // refills (FLASHMOE_EXP_SKIP_LOADS: it computes on the prologue's stages) or without its math
  // (FLASHMOE_EXP_SKIP_MMA). The skip is a run-time test that is always true (blockDim.y is 1), so
  // the compiled loop keeps the registers and schedule of the real one.
  template <bool kMath = false>
  static __device__ __forceinline__ bool experiment_skips() {
#if defined(FLASHMOE_EXP_SKIP_LOADS)
    if (!kMath) return threadIdx.y == 0;
#endif
#if defined(FLASHMOE_EXP_SKIP_MMA)
    if (kMath) return threadIdx.y == 0;
#endif
    return false;
  }

  // An experiment (FLASHMOE_NVRTC_DEFINES=FLASHMOE_EXP_KLOOP_SYNC): the all-TMA loop keeps the
  // proxy fence and block barrier before each k tile's wgmma, as before the seventh session.
#if defined(FLASHMOE_EXP_KLOOP_SYNC)
  static constexpr bool kKLoopSync = true;
#else
  static constexpr bool kKLoopSync = false;
#endif

  // aRow(r): row r of A (null: a zero row). bRows[b]: the first of BN rows of matrix b; row n of it
  // is bRows[b] + n · K.
  // tf32 on wgmma: both operands must arrive rounded to tf32 (kRoundedTokens below says who
  // rounds them); the tensor cores would truncate them.
  // kTmaA: A is a dense matrix with a tensor map (maps.aMap), copied by TMA like B; aRow is unused.
  template <int K, bool kTmaA = false, class ARow>
  __device__ void run(Smem& sm, ARow aRow, const T* const (&bRows)[NB], const OperandMaps<NB>& maps = {}) {
    static_assert(K % TK == 0, "K must be a multiple of the k tile");
    static_assert(!kTmaA || kTMA, "A by TMA only with the TMA pipeline");
    constexpr int kTiles = K / TK;
    if constexpr (kTMA) {
      // Fresh barriers for this task (phase k of stage s is tile s + k · STAGES). The stages were
      // last written through the generic proxy (an epilogue, Combine, the gate): the proxy fence
      // and the barrier order those writes before the TMA's.
      if (threadIdx.x == 0) {
#pragma unroll
        for (int s = 0; s < STAGES; ++s) ptx::mbarrier_init(&sm.full[s], 1);
        ptx::fence_mbarrier_init();
        // A by TMA reads what other blocks' epilogues stored through the generic proxy (they
        // fenced before releasing it; this thread acquired it): order those stores before the TMA.
        if constexpr (kTmaA) ptx::fence_proxy_async_global();
      }
      ptx::fence_proxy_async();
      __syncthreads();
    }
#pragma unroll
    for (int b = 0; b < NB; ++b)
#pragma unroll
      for (int i = 0; i < kAcc; ++i) acc[b][i] = 0.f;
    fence_accumulators();
    const T* rows[kARowsPerThread];
#pragma unroll
    for (int j = 0; j < kARowsPerThread; ++j) rows[j] = kTmaA ? nullptr : aRow((threadIdx.x + j * S::kThreads) / kChunks);
    const int chunk = threadIdx.x % kChunks;
    auto load = [&](int stage, int kt) {
      const int k0 = kt * TK + chunk * kVec;
      // Timing experiments (wrong results on purpose): B (FLASHMOE_EXP_HALF_B) or A
      // (FLASHMOE_EXP_HALF_A) is loaded for even k tiles only, odd ones compute on what the stage
      // last held: the operand traffic a cluster's multicast would save.
#if defined(FLASHMOE_EXP_HALF_B)
      const bool withB = (kt & 1) == 0;
#else
      constexpr bool withB = true;
#endif
#if defined(FLASHMOE_EXP_HALF_A)
      const bool withA = (kt & 1) == 0;
#else
      constexpr bool withA = true;
#endif
      if (!kTmaA && withA) {
#pragma unroll
        for (int j = 0; j < kARowsPerThread; ++j) {
          const int r = (threadIdx.x + j * S::kThreads) / kChunks;
          ptx::cp_async16(&sm.a[stage][r][chunkAt(r, chunk) * kVec], rows[j] ? rows[j] + k0 : bRows[0], rows[j] ? 16 : 0);
        }
      }
      if constexpr (kTMA) {
        if (threadIdx.x == 0) {
          ptx::mbarrier_arrive_expect_tx(&sm.full[stage], ((withB ? NB * BN : 0) + (kTmaA && withA ? TM : 0)) * 128);
          if (kTmaA && withA) ptx::tma_load_2d(&sm.a[stage][0][0], maps.aMap, kt * TK, maps.aRow0, &sm.full[stage]);
#pragma unroll
          for (int b = 0; b < NB; ++b)
            if (withB) ptx::tma_load_2d(&sm.b[stage][b][0][0], maps.map[b], kt * TK, maps.row0, &sm.full[stage]);
        }
      } else {
#pragma unroll
        for (int b = 0; b < NB; ++b) {
#pragma unroll
          for (int j = 0; j < BN * kChunks / S::kThreads; ++j) {
            const int n = (threadIdx.x + j * S::kThreads) / kChunks;
            ptx::cp_async16(&sm.b[stage][b][n][chunkAt(n, chunk) * kVec], bRows[b] + (size_t)n * K + k0, 16);
          }
        }
      }
    };
#pragma unroll
    for (int s = 0; s < STAGES - 1; ++s) {
      if (s < kTiles) load(s, s);
      ptx::cp_async_commit();
    }
    for (int kt = 0; kt < kTiles; ++kt) {
      ptx::cp_async_wait<STAGES - 2>();
      if constexpr (kTMA) wait_operands(sm.full[kt % STAGES], (kt / STAGES) & 1, maps.dog);
      if constexpr (kWG) {
        // Tile kt's wgmma is issued while tile kt − 1's may still run (the tensor cores never wait
        // for the loop), then tile kt − 1's is awaited by every warp before its stage is refilled.
        // Where a stage has cp.async rows, every thread's copies must be visible to the async proxy
        // (each thread's fence, then the block barrier) before wgmma reads them. Where every operand
        // came by TMA (GEMM1; GEMM0 for a peer's rows), each thread's own wait on the stage's
        // mbarrier is enough: one block barrier per k tile instead of two.
        if (!kTmaA || kKLoopSync) {
          ptx::fence_proxy_async();
          __syncthreads();
        }
        compute(sm, kt % STAGES);
#if defined(FLASHMOE_KLOOP_DRAIN)
        // The compiler's second try (KernelCompiler) where ptxas serialised every wgmma of the
        // loop (C7514: it moves in-flight accumulators at the back edge, seen for gated layers and
        // some plain epilogues at H = 2048): tile kt's group is drained here, so none is in flight
        // across the back edge and the group's wgmmas still run back to back.
        ptx::wgmma_wait<0>();
#else
        ptx::wgmma_wait<1>();
#endif
        __syncthreads();
      } else {
        __syncthreads();
      }
      // The stage refilled here was read by tile kt − 1, which every warp has finished with.
      if (kt + STAGES - 1 < kTiles && !experiment_skips()) load((kt + STAGES - 1) % STAGES, kt + STAGES - 1);
      ptx::cp_async_commit();
      if constexpr (!kWG) compute(sm, kt % STAGES);
    }
    if constexpr (kWG) {
      ptx::wgmma_wait<0>();
      fence_accumulators();
    }
    ptx::cp_async_wait<0>();
    __syncthreads();
    if constexpr (kTMA) {
      // Every phase issued has been waited for: the barriers can give their memory back.
      if (threadIdx.x == 0) {
#pragma unroll
        for (int s = 0; s < STAGES; ++s) ptx::mbarrier_inval(&sm.full[s]);
      }
    }
  }

  // Waits for a stage's TMA boxes. try_wait suspends in hardware a while; past a few tries the
  // wait goes through the watchdog, which bounds it and names the Processor and this phase.
  static __device__ __forceinline__ void wait_operands(unsigned long long& bar, unsigned parity, const Watchdog* dog) {
#pragma unroll 1
    for (int i = 0; i < 4; ++i)
      if (ptx::mbarrier_try_wait(&bar, parity)) return;
    dog->wait(kRoleProcessor, kPhaseOperands, parity, [&] { return (unsigned long long)ptx::mbarrier_try_wait(&bar, parity); },
              [](unsigned long long v) { return v != 0; });
  }

  __device__ __forceinline__ void fence_accumulators() {
    if constexpr (kWG) {
#pragma unroll
      for (int b = 0; b < NB; ++b) ptx::fence_operands(acc[b]);
    }
  }

  __device__ void compute(SmemOperands& sm, int stage) {
    const int lane = mt() & 31, warp = mt() >> 5;
    if constexpr (kWG) {
      // Two 64-row halves of A against each B; each k step (k16, or k8 for tf32) moves 32 bytes
      // inside the swizzled 128-byte rows. (No operand fence here: the previous tile's group may
      // still be in flight, and touching its accumulators would serialise it.)
      // A warpgroup's B rows start kBNw · 128 bytes in: a multiple of 1024, as the swizzle needs.
      const int n0 = S::kMathWarpgroups > 1 ? (mt() >> 7) * kBNw : 0;
      ptx::wgmma_fence();
#pragma unroll
      for (int k16 = 0; k16 < 4; ++k16) {
        if (experiment_skips<true>()) break;
#pragma unroll
        for (int mh = 0; mh < 2; ++mh) {
          const unsigned long long da = ptx::wgmma_desc(&sm.a[stage][mh * 64][0]) + 2 * k16;
#pragma unroll
          for (int b = 0; b < NB; ++b)
            ptx::wgmma<kBNw, T>(&acc[b][mh * (kBNw / 2)], da, ptx::wgmma_desc(&sm.b[stage][b][n0][0]) + 2 * k16);
        }
      }
      ptx::wgmma_commit();
    } else if constexpr (kMMA16) {
      const int wm = warp >> 1, wn = warp & 1;
#pragma unroll
      for (int k16 = 0; k16 < TK; k16 += 16) {
        unsigned a[4][4];
#pragma unroll
        for (int mt = 0; mt < 4; ++mt)
          ptx::ldmatrix_x4(a[mt], &sm.a[stage][wm * 64 + mt * 16 + (lane & 15)][k16 + (lane >> 4) * 8]);
#pragma unroll
        for (int b = 0; b < NB; ++b) {
#pragma unroll
          for (int np = 0; np < kNT / 2; ++np) {
            unsigned bf[4];
            ptx::ldmatrix_x4(bf, &sm.b[stage][b][wn * (BN / 2) + np * 16 + (lane >> 4) * 8 + (lane & 7)][k16 + ((lane >> 3) & 1) * 8]);
#pragma unroll
            for (int mt = 0; mt < 4; ++mt) {
              ptx::mma_16816<S::kDType == DType::bf16>(*reinterpret_cast<float(*)[4]>(&acc[b][(mt * kNT + np * 2) * 4]), a[mt], bf[0], bf[1]);
              ptx::mma_16816<S::kDType == DType::bf16>(*reinterpret_cast<float(*)[4]>(&acc[b][(mt * kNT + np * 2 + 1) * 4]), a[mt], bf[2], bf[3]);
            }
          }
        }
      }
    } else if constexpr (kTF32) {
      const int wm = warp >> 1, wn = warp & 1, g = lane >> 2, t = lane & 3;
#pragma unroll
      for (int k8 = 0; k8 < TK; k8 += 8) {
        unsigned a[4][4];
#pragma unroll
        for (int mt = 0; mt < 4; ++mt) {
          const int r = wm * 64 + mt * 16 + g;
          a[mt][0] = ptx::to_tf32(sm.a[stage][r][k8 + t]);
          a[mt][1] = ptx::to_tf32(sm.a[stage][r + 8][k8 + t]);
          a[mt][2] = ptx::to_tf32(sm.a[stage][r][k8 + t + 4]);
          a[mt][3] = ptx::to_tf32(sm.a[stage][r + 8][k8 + t + 4]);
        }
#pragma unroll
        for (int b = 0; b < NB; ++b) {
#pragma unroll
          for (int nt = 0; nt < kNT; ++nt) {
            const int n = wn * (BN / 2) + nt * 8 + g;
            const unsigned b0 = ptx::to_tf32(sm.b[stage][b][n][k8 + t]);
            const unsigned b1 = ptx::to_tf32(sm.b[stage][b][n][k8 + t + 4]);
#pragma unroll
            for (int mt = 0; mt < 4; ++mt)
              ptx::mma_1688_tf32(*reinterpret_cast<float(*)[4]>(&acc[b][(mt * kNT + nt) * 4]), a[mt], b0, b1);
          }
        }
      }
    } else {
      const int ty = threadIdx.x >> 3, tx = threadIdx.x & 7;
#pragma unroll 2
      for (int k = 0; k < TK; ++k) {
        float av[8];
#pragma unroll
        for (int i = 0; i < 8; ++i) av[i] = sm.a[stage][ty + 16 * i][k];
#pragma unroll
        for (int b = 0; b < NB; ++b) {
#pragma unroll
          for (int j = 0; j < kFJ; ++j) {
            const float bv = sm.b[stage][b][tx + 8 * j][k];
#pragma unroll
            for (int i = 0; i < 8; ++i) acc[b][i * kFJ + j] = fmaf(av[i], bv, acc[b][i * kFJ + j]);
          }
        }
      }
    }
  }

  // Calls f(row, col, i) for every accumulator element i this thread holds; acc[b][i] is its value.
  template <class F>
  __device__ void for_each(F f) const {
    const int lane = mt() & 31, warp = mt() >> 5;
    if constexpr (kFMA) {
      const int ty = mt() >> 3, tx = mt() & 7;
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < kFJ; ++j) f(ty + 16 * i, tx + 8 * j, i * kFJ + j);
    } else if constexpr (kWG) {
      const int g = lane >> 2, t = lane & 3, w = warp & 3, n0 = (warp >> 2) * kBNw;
#pragma unroll
      for (int mh = 0; mh < 2; ++mh)
#pragma unroll
        for (int j = 0; j < kBNw / 8; ++j) {
          const int r = mh * 64 + w * 16 + g, c = n0 + 8 * j + 2 * t, i = mh * (kBNw / 2) + 4 * j;
          f(r, c, i);
          f(r, c + 1, i + 1);
          f(r + 8, c, i + 2);
          f(r + 8, c + 1, i + 3);
        }
    } else {
      const int wm = warp >> 1, wn = warp & 1, g = lane >> 2, t = lane & 3;
#pragma unroll
      for (int mt = 0; mt < 4; ++mt)
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt) {
          const int r = wm * 64 + mt * 16 + g, c = wn * (BN / 2) + nt * 8 + 2 * t, i = (mt * kNT + nt) * 4;
          f(r, c, i);
          f(r, c + 1, i + 1);
          f(r + 8, c, i + 2);
          f(r + 8, c + 1, i + 3);
        }
    }
  }

  // The epilogue: value(col, i) turns accumulator i (for tile column col) into the output value;
  // rows [0, rows) of the tile are rounded to T and stored at out + r · ld (row-major, BN columns).
  // Call after run(): the pipeline is drained, so its shared memory holds the tile.
  template <class Value>
  __device__ void store(Smem& sm, Value value, T* out, size_t ld, int rows) const {
    store_via(&sm, value, out, ld, rows);
  }
  template <class Value>
  __device__ void store_via(void* area, Value value, T* out, size_t ld, int rows) const {
    stage_via(area, value, rows, [&](int r, int c, const uint4& chunk) { *reinterpret_cast<uint4*>(out + r * ld + c) = chunk; });
  }
  // The same with each staged 16-byte chunk (tile row r, columns c ..< c + kVec) handed to `emit`.
  // Thread mt() emits chunk mt() + j · kMathThreads, j = 0, 1, …
  template <class Value, class Emit>
  __device__ void stage_via(void* area, Value value, int rows, Emit emit) const {
    T (*tile)[kCRow] = reinterpret_cast<T (*)[kCRow]>(area);
    for_each([&](int r, int c, int i) { tile[r][c] = St::store(value(c, i)); });
    math_sync<S>();
    constexpr int kPerRow = BN / kVec;
    for (int i = (int)mt(); i < rows * kPerRow; i += S::kMathThreads) {
      const int r = i / kPerRow, c = (i % kPerRow) * kVec;
      emit(r, c, *reinterpret_cast<const uint4*>(&tile[r][c]));
    }
  }

  // Half h of the fragments (tile rows h · TM / 2 ..< (h + 1) · TM / 2) into shared memory for the
  // two-pass epilogues: value(c, i) rounded to T at at(row within the half, c). Fragments hold
  // column pairs (c even): one 4-byte store per pair.
  template <class Value, class At>
  __device__ void stage_half(int h, Value value, At at) const {
    constexpr int kHalf = TM / 2;
    struct alignas(2 * sizeof(T)) Pair { T v[2]; };
    for_each([&](int r, int c, int i) {
      if (r / kHalf == h && c % 2 == 0)
        *reinterpret_cast<Pair*>(at(r - h * kHalf, c)) = Pair{{St::store(value(c, i)), St::store(value(c + 1, i + 1))}};
    });
  }

  // The same in two passes of TM / 2 rows through a tile of its own (`area`: kStagingBytes), so
  // that a producer warpgroup keeps four stages (a whole tile's staging would leave room for three)
  // and fills the next task's stages meanwhile. The caller syncs the math warps before `area` is
  // written again. `mark`: as stage_halves_via's.
  static constexpr int kStagingBytes = (int)sizeof(T) * (TM / 2) * kCRow;
  template <class Value, class Mark>
  __device__ void store_halves_via(void* area, Value value, T* out, size_t ld, int rows, Mark mark) const {
    stage_halves_via(
        area, value, rows, [&](int r, int c, const uint4& chunk) { *reinterpret_cast<uint4*>(out + r * ld + c) = chunk; }, mark);
  }
  // The two passes, with each staged 16-byte chunk (tile row r, columns c ..< c + kVec) handed to
  // `emit`. Thread mt() emits chunk mt() + j · kMathThreads of each half, j = 0, 1, … Every thread
  // calls mark(0) once half 0 is staged, mark(1) once every thread has emitted it, and mark(2) once
  // half 1 is staged (a traced forward's split of the epilogue).
  template <class Value, class Emit, class Mark>
  __device__ void stage_halves_via(void* area, Value value, int rows, Emit emit, Mark mark) const {
    static_assert(kWG, "rows r and r + 8 of a fragment lie in the same half only on wgmma");
    T (*tile)[kCRow] = reinterpret_cast<T (*)[kCRow]>(area);
    constexpr int kPerRow = BN / kVec, kHalf = TM / 2;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      if (h > 0) {
        math_sync<S>();
        mark(1);
      }
      stage_half(h, value, [&](int r, int c) { return &tile[r][c]; });
      math_sync<S>();
      mark(2 * h);
      const int n = min(rows - h * kHalf, kHalf) * kPerRow;
      for (int i = (int)mt(); i < n; i += S::kMathThreads) {
        const int r = i / kPerRow, c = (i % kPerRow) * kVec;
        emit(h * kHalf + r, c, *reinterpret_cast<const uint4*>(&tile[r][c]));
      }
    }
  }

  // The warpgroups apart (processor.cuh, kWarpgroupsApart): the two passes with each computing
  // warpgroup staging and emitting only its own kBNw columns, through its own half of `area` and
  // behind its own barrier (`sync`), so that one warpgroup can start the next task's k loop while
  // the other is still in this epilogue. A region's rows are unpadded, their 16-byte chunks
  // XOR-swizzled by row (fragment writes stay conflict-free, and both regions fit in
  // kStagingBytes). Warp w of a warpgroup emits, at each of its 8 steps j, rows
  // 4 · (2j + lane / 16) + w of the half, lanes % 16 covering a row: emit(r, c, chunk) as
  // stage_halves_via's (r a row of the tile, c a column of the whole tile). `mark`: as
  // stage_halves_via's, for the calling warpgroup only.
  static constexpr int kApartChunks = kBNw / kVec;  // 16-byte chunks in a region's row
  template <class Value, class Emit, class Mark, class Sync>
  __device__ void stage_halves_apart(void* area, Value value, Emit emit, Mark mark, Sync sync) const {
    static_assert(kWG && S::kMathWarpgroups == 2 && kApartChunks == 16 && TM == 128,
                  "two computing warpgroups of 128 16-bit columns each, 128-row tiles");
    static_assert(2 * (TM / 2) * kBNw * (int)sizeof(T) <= kStagingBytes, "both regions fit the staging tile");
    constexpr int kHalf = TM / 2;
    const int wg = (int)(mt() >> 7), lane = (int)(mt() & 31), w = (int)((mt() >> 5) & 3), n0w = wg * kBNw;
    T* region = static_cast<T*>(area) + wg * kHalf * kBNw;
    // The XOR is computed where each address is used (an opaque instruction): left to the compiler,
    // GEMM0's epilogue kept sixteen swizzled offsets live through GELU and spilled.
    auto at = [&](int r, int c) {
      unsigned chunk;
      asm volatile("xor.b32 %0, %1, %2;" : "=r"(chunk) : "r"((unsigned)(c / kVec)), "r"((unsigned)(r & 7)));
      return region + r * kBNw + (int)chunk * kVec + c % kVec;
    };
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      if (h > 0) {
        sync();
        mark(1);
      }
      stage_half(h, value, [&](int r, int c) { return at(r, c - n0w); });
      sync();
      mark(2 * h);
#pragma unroll 1
      for (int j = 0; j < kHalf * kApartChunks / 128; ++j) {
        const int r = 4 * (2 * j + lane / 16) + w, cc = lane % 16;
        emit(h * kHalf + r, n0w + cc * kVec, *reinterpret_cast<const uint4*>(at(r, cc * kVec)));
      }
    }
  }

  // The two passes with each staged half leaving by bulk copies issued by a few threads
  // (FLASHMOE_COMBINE_BULK: GEMM1's atomic combine), instead of every thread's 16-byte stores:
  // math thread hr < TM / 2 calls issue(h, staged row hr of half h) once half h is staged, and
  // the caller's copy reads it asynchronously. The issuers wait for those reads before the area
  // is written again (half 1, and the next task's epilogue). `mark`: as stage_halves_via's.
  template <class Value, class Issue, class Mark>
  __device__ void stage_halves_bulk(void* area, Value value, Issue issue, Mark mark) const {
    static_assert(kWG, "rows r and r + 8 of a fragment lie in the same half only on wgmma");
    static_assert(kCRow * sizeof(T) % 16 == 0 && BN * sizeof(T) % 16 == 0, "bulk copies: 16-byte rows");
    T (*tile)[kCRow] = reinterpret_cast<T (*)[kCRow]>(area);
    constexpr int kHalf = TM / 2;
    const bool issuer = (int)mt() < kHalf;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      if (h > 0) {
        if (issuer) ptx::bulk_wait_read();
        math_sync<S>();
        mark(1);
      }
      stage_half(h, value, [&](int r, int c) { return &tile[r][c]; });
      // Each thread's st.shared before the async proxy's reads of them.
      ptx::fence_proxy_async();
      math_sync<S>();
      mark(2 * h);
      if (issuer) {
        issue(h, &tile[mt()][0]);
        ptx::bulk_commit();
      }
    }
    if (issuer) ptx::bulk_wait_read();
  }

  // FLASHMOE_BIAS_EARLY (an experiment, producer path): the bias values of this thread's
  // accumulator columns (wgmma layout: columns n0 + 8j + 2t and the next), two per word, loaded
  // before the k loop; bias_at(i) is accumulator i's.
  struct BiasFragment {
    unsigned w[kBNw / 8];
  };
  __device__ BiasFragment load_bias(const T* row) const {
    static_assert(kWG && kMMA16, "wgmma fragments of a 16-bit type");
    BiasFragment f;
    const int lane = mt() & 31, warp = mt() >> 5, t = lane & 3, n0 = (warp >> 2) * kBNw;
#pragma unroll
    for (int j = 0; j < kBNw / 8; ++j) f.w[j] = __ldg(reinterpret_cast<const unsigned*>(row + n0 + 8 * j + 2 * t));
    return f;
  }
  static __device__ __forceinline__ float bias_at(const BiasFragment& f, int i) {
    const unsigned w = f.w[(i % (kBNw / 2)) / 4];
    T v[2];
    memcpy(v, &w, sizeof w);
    return St::load(v[i & 1]);
  }

  // ---- The producer warpgroup's side and the math warpgroups' side (producer.cuh). ----

  // Producer warpgroup (all 128 threads): fills the stages of this task's k tiles, k tile kt into
  // stage (g + kt) % STAGES once every math warp has released what it held. Eight threads gather
  // each row of A by cp.async unless A comes by TMA; thread 0 asks for the TMA boxes.
  template <int K, bool kTmaA, class ARow>
  static __device__ void produce(SmemOperands& sm, StageRing<STAGES>& ring, unsigned g, ARow aRow, const T* const (&bRows)[NB],
                          const OperandMaps<NB>& maps) {
    static_assert(kTMA && kWG && TM == 128, "the producer warpgroup needs the TMA pipeline and 128-row tiles");
    constexpr int kTiles = K / TK;
    const int t = threadIdx.x;
    // Eight threads per row, a chunk each, as the default loop: a warp's copy covers four whole
    // 128-byte rows (one row per thread made each copy 32 partial lines: GEMM0's k loop 15 %
    // longer, tenth session).
    constexpr int kRowsPerThread = TM * kChunks / 128;
    const T* rows[kTmaA ? 1 : kRowsPerThread];
    if constexpr (!kTmaA) {
#pragma unroll
      for (int j = 0; j < kRowsPerThread; ++j) rows[j] = aRow(t / kChunks + j * (128 / kChunks));
    }
    const int chunk = t % kChunks;
    // A by TMA reads what other blocks' epilogues stored (their fence, then the Scheduler's
    // release, this warpgroup's acquire of the task): order those stores before the TMA's reads.
    if (t == 0 && kTmaA) ptx::fence_proxy_async_global();
#pragma unroll 1
    for (int kt = 0; kt < kTiles; ++kt) {
      const unsigned gt = g + kt;
      const int stage = (int)(gt % STAGES);
      if (gt >= STAGES) wait_operands(ring.empty[stage], ((gt / STAGES) - 1) & 1, maps.dog);
      if (t == 0) {
        ptx::mbarrier_arrive_expect_tx(&ring.full[stage], (NB * BN + (kTmaA ? TM : 0)) * 128);
        if constexpr (kTmaA) ptx::tma_load_2d(&sm.a[stage][0][0], maps.aMap, kt * TK, maps.aRow0, &ring.full[stage]);
#pragma unroll
        for (int b = 0; b < NB; ++b) ptx::tma_load_2d(&sm.b[stage][b][0][0], maps.map[b], kt * TK, maps.row0, &ring.full[stage]);
      }
      if constexpr (!kTmaA) {
#pragma unroll
        for (int j = 0; j < kRowsPerThread; ++j) {
          const int r = t / kChunks + j * (128 / kChunks);
          ptx::cp_async16(&sm.a[stage][r][chunkAt(r, chunk) * kVec], rows[j] ? rows[j] + kt * TK + chunk * kVec : bRows[0],
                          rows[j] ? 16 : 0);
        }
        ptx::cp_async_mbarrier_arrive(&ring.full[stage]);
      } else {
        ptx::mbarrier_arrive(&ring.full[stage]);
      }
    }
  }

  // Math warpgroups: the k loop on the ring. Each k tile waits for its stage, issues its wgmma
  // while the previous tile's may still run, then releases the previous tile's stage (one arrival
  // per warp once that tile's group has retired). No block barrier.
  template <int K, bool kTmaA>
  __device__ void consume(SmemOperands& sm, StageRing<STAGES>& ring, unsigned g, const Watchdog* dog) {
    static_assert(kWG, "the math warpgroups issue wgmma");
    constexpr int kTiles = K / TK;
#pragma unroll
    for (int b = 0; b < NB; ++b)
#pragma unroll
      for (int i = 0; i < kAcc; ++i) acc[b][i] = 0.f;
    fence_accumulators();
    const int lane = mt() & 31;
#pragma unroll 1
    for (int kt = 0; kt < kTiles; ++kt) {
      const unsigned gt = g + kt;
      const int stage = (int)(gt % STAGES);
      wait_operands(ring.full[stage], (gt / STAGES) & 1, dog);
      // Gathered rows came through the generic proxy (cp.async): make them visible to wgmma's.
      if constexpr (!kTmaA) ptx::fence_proxy_async();
      compute(sm, stage);
#if defined(FLASHMOE_KLOOP_DRAIN)
      ptx::wgmma_wait<0>();
#else
      ptx::wgmma_wait<1>();
#endif
      if (kt > 0) {
        __syncwarp();
        if (lane == 0) ptx::mbarrier_arrive(&ring.empty[(gt - 1) % STAGES]);
      }
    }
    ptx::wgmma_wait<0>();
    fence_accumulators();
    __syncwarp();
    if (lane == 0) ptx::mbarrier_arrive(&ring.empty[(g + kTiles - 1) % STAGES]);
  }
};

// tf32 on wgmma: the tensor cores read fp32 bits and drop the low mantissa bits, so operands are
// rounded to tf32 (cvt.rna, docs/SEMANTICS.md) before they are staged: the weights on upload
// (CUDAMoE), GEMM0's results in its epilogue, and the tokens by the gate as it stages x
// (p.xRounded), which GEMM0 and the dispatch then read. Rounding both operands in shared memory at
// every stage instead cost 40 % of the forward (one H200, 8K tokens: 2.206 against 1.249 ms).
template <class S>
constexpr bool kRoundedTokens = TileGemm<S, S::kGated ? 2 : 1, S::kGemm0N>::kWG && S::kDType == DType::fp32 &&
                                S::kMath == MathMode::tf32;

}  // namespace flashmoe

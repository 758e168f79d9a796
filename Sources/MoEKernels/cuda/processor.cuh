// The Processor actor (Algorithm 2): a block that waits for a task from the Scheduler in its
// mailbox, runs it (GEMM0 with the fused bias/activation/gating epilogue, GEMM1 with the bias
// epilogue, or Combine), signals completion, and repeats until it receives Stop.
#pragma once
#include "tile_gemm.cuh"
#include "watchdog.cuh"
#include "trace.cuh"

namespace flashmoe {

// Combine's view of the tile: each token's rows (−1 when dropped) and weights, in pick order.
template <class S>
struct CombineShared {
  int row[S::kTileM][S::kTopK];
  float weight[S::kTileM][S::kTopK];
};

template <class S>
union ProcessorSharedOneRole {
  typename TileGemm<S, S::kGated ? 2 : 1, S::kGemm0N>::Smem gemm0;
  typename TileGemm<S, 1, S::kTileN>::Smem gemm1;
  CombineShared<S> combine;
};
// With a producer warpgroup (producer.cuh) the epilogue's tile and Combine's routing have memory of
// their own, so that the producer can fill the next task's stages meanwhile. (GEMM0's and GEMM1's
// stages lie at the same offsets: A then B, 48 KB per stage either way.)
template <class S>
struct ProcessorSharedWithProducer {
  using G0 = TileGemm<S, S::kGated ? 2 : 1, S::kGemm0N>;
  using G1 = TileGemm<S, 1, S::kTileN>;
  static constexpr int kStaging = G0::kStagingBytes > G1::kStagingBytes ? G0::kStagingBytes : G1::kStagingBytes;
  union {
    typename G0::Smem gemm0;
    typename G1::Smem gemm1;
  };
  union {
    alignas(16) unsigned char staging[kStaging];
    CombineShared<S> combine;
  };
};
template <class S>
using ProcessorShared = typename Pick<S::kProducer, ProcessorSharedWithProducer<S>, ProcessorSharedOneRole<S>>::type;

// Expert parallelism: whether row tile `rowTile` lies in one of this GPU's own cells (its rows are
// still in x) rather than a peer's (its rows arrived in the dispatch cell).
template <class S>
__device__ __forceinline__ bool own_row_tile(const Params& p, unsigned rowTile) {
  return (int)rowTile / (p.cellRows / S::kTileM) / (S::kExperts / S::kRanks) == p.rank;
}

// A finished task goes out: its stores (every computing thread's, ordered before this thread by
// a block barrier or a block-scope release) and its mailbox read are ordered by one acquire-release
// fence before two relaxed writes, a release pattern for each: the row tile's GEMM0 count or the
// GEMM1 count grows, and `finished` tells the Scheduler the mailbox slot is free. (A sequentially
// consistent fence and then st.release's own fence cost 1–2 % of the forward: BENCHMARKS.md,
// twelfth session.)
__device__ __forceinline__ void signal_finished(const Params& p, int me, unsigned seq, unsigned type, unsigned rowTile) {
  ptx::fence_acq_rel_gpu();
  if (type == kTaskGEMM0) atomicAdd(&p.rowDone[rowTile], 1u);
  else if (type == kTaskGEMM1) atomicAdd(&p.counters[kGemm1Done], 1u);
  ptx::st_relaxed(&p.finished[me], ((unsigned long long)p.epoch << 32) | seq);
}

// Atomic combine (Spec::kAtomicCombine): adds w · y for eight values of one result row y (a 16-byte
// chunk in the storage dtype) to the output at `dst`. Each product is rounded to the storage dtype
// and the sum of a token's two picks once more, in either order (k ≤ 2); Combine tasks instead
// round only the fp32 sum (docs/SEMANTICS.md).
template <class S>
__device__ __forceinline__ void add_weighted(typename Storage<S::kDType>::T* dst, const uint4& chunk, float weight) {
  using St = Storage<S::kDType>;
  static_assert(S::kDType != DType::fp32, "16-bit storage: packed pairs");
  union Vec { uint4 raw; typename St::T v[8]; };
  Vec in, product;
  in.raw = chunk;
#pragma unroll
  for (int v = 0; v < 8; ++v) product.v[v] = St::store(__fmul_rn(weight, St::load(in.v[v])));
#if defined(FLASHMOE_EXP_COMBINE_STORE)
  // Experiment (wrong results): a plain store instead of the reduction, to time what the
  // reductions cost the k loops running beside them.
  *reinterpret_cast<uint4*>(dst) = product.raw;
#else
  ptx::red_add_x8<S::kDType == DType::bf16>(dst, product.raw);
#endif
}

// Atomic combine: the token and weight of the rows whose chunks this thread adds, read before the
// k loop so that the epilogue does not wait for them. Both epilogues (TileGemm::stage_via and
// stage_halves_via) hand warp w the rows r with r % 8 == w, a whole row of 256 16-bit columns per
// warp and step, so lane r / 8 of each warp holds row r's. With the warpgroups apart
// (stage_halves_apart, kWarps = 4) warp w of each warpgroup emits the rows r with r % 4 == w, so
// lane r / 4 of its warp r % 4 holds row r's.
template <class S, int kWarps = 8>
struct CombineRoute {
  static_assert(!S::kAtomicCombine || (S::kMathThreads == 256 && S::kTileN == 256 && S::kTileM == 128 && S::kDType != DType::fp32),
                "eight computing warps, 16-byte chunks of 256 16-bit columns: one row per warp");
  static_assert(kWarps == 8 || kWarps == 4, "the rows' holders: all eight computing warps, or each warpgroup's four");
  static constexpr int kShift = kWarps == 8 ? 3 : 2;  // row r's holder lane: r >> kShift
  int token = -1;
  float weight = 0.f;
  __device__ void load(const Params& p, unsigned rowTile, unsigned mathThread) {
    const int lane = (int)(mathThread & 31), warp = (int)(mathThread >> 5);
    if (lane < S::kTileM / kWarps) {
      const int row = (int)rowTile * S::kTileM + kWarps * lane + (kWarps == 8 ? warp : warp & 3);
      token = __ldcg(&p.rowToken[row]);
      weight = __ldcg(&p.rowWeight[row]);
    }
  }
  // The epilogue's `emit`: w · (a chunk of row r's results) into its token's output row (padding
  // rows, token −1, add nothing). Every lane of the warp calls it (the shuffles).
  __device__ auto adder(const Params& p, int n0) const {
    using T = typename Storage<S::kDType>::T;
    T* out = static_cast<T*>(p.out);
    return [=, *this](int r, int c, const uint4& chunk) {
      const int t = __shfl_sync(0xffffffffu, token, r >> kShift);
      const float w = __shfl_sync(0xffffffffu, weight, r >> kShift);
      if (t >= 0) add_weighted<S>(out + (size_t)t * S::kHidden + n0 + c, chunk, w);
    };
  }
};

// The computing warpgroups finish their epilogues apart, each through its own staging region
// (TileGemm::stage_halves_apart): one GPU, the producer path. Measured on an H200 at 8K against
// both warpgroups together in nine alternating pairs over three calls: about 1 % faster on average
// (faster in six, slower in two; BENCHMARKS.md, fifteenth session). FLASHMOE_WG_TOGETHER
// restores the shared epilogue (for A/B); the bulk combine (FLASHMOE_COMBINE_BULK) uses it too,
// as its barriers and last wait span both warpgroups.
#if defined(FLASHMOE_WG_TOGETHER) || defined(FLASHMOE_COMBINE_BULK)
template <class S>
constexpr bool kWarpgroupsApart = false;
#else
template <class S>
constexpr bool kWarpgroupsApart = S::kRanks == 1;
#endif

// The atomic combine by bulk reductions (FLASHMOE_COMBINE_BULK, TileGemm::stage_halves_bulk):
// the weights of the four tile rows whose values this thread holds (wgmma layout: rows r, r + 8
// of each 64-row half, r = 16 · warp + lane / 4; accumulator i's is weight[slot(i)]) and, for
// math thread t < 64, the tokens of rows t and t + 64 (the rows it issues), read before the k
// loop. Each product w · (y + b) is rounded once, then added by the TMA unit.
template <class S>
struct BulkRoute {
  static constexpr int kHalfI = S::kTileN / S::kMathWarpgroups / 2;  // accumulators per 64-row half
  float weight[4];
  int token[2];
  __device__ void load(const Params& p, unsigned rowTile, unsigned mathThread) {
    const int lane = (int)(mathThread & 31), w = (int)(mathThread >> 5) & 3;
    const int row0 = (int)rowTile * S::kTileM, r = row0 + w * 16 + (lane >> 2);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      weight[2 * h] = __ldcg(&p.rowWeight[r + 64 * h]);
      weight[2 * h + 1] = __ldcg(&p.rowWeight[r + 64 * h + 8]);
      token[h] = (int)mathThread < 64 ? __ldcg(&p.rowToken[row0 + 64 * h + (int)mathThread]) : -1;
    }
  }
  // Accumulator i of the wgmma fragment: half i / kHalfI, row r + 8 where i & 2.
  __device__ float weight_of(int i) const { return weight[2 * (i / kHalfI) + ((i >> 1) & 1)]; }
};

// GEMM0: a = φ(x·W1ᵀ + b1) [⊙ (x·W3ᵀ + b3)] for one row tile and tileN columns of D, rounded to
// the storage dtype. Rows are gathered from x through the routing table.
// GEMM0 and GEMM1 return, in thread 0 of a traced forward, the ns their k loop took (else 0).
template <class S>
__device__ unsigned long long gemm0_task(const Params& p, ProcessorShared<S>& sh, const Task& task) {
  using G = TileGemm<S, S::kGated ? 2 : 1, S::kGemm0N>;
  using St = typename G::St;
  using T = typename G::T;
  constexpr int H = S::kHidden, D = S::kFFN, TM = S::kTileM, TN = S::kGemm0N;
  const int e = task.expert, row0 = task.rowTile * TM, n0 = task.colTile * TN;
  const T* x = static_cast<const T*>(kRoundedTokens<S> ? p.xRounded : p.x);
  const T* incoming = S::kRanks > 1 ? static_cast<const T*>(p.peers[p.rank].dispatchIn) : nullptr;
  // P > 1: is this row tile in one of this GPU's own cells (rows still in x)?
  const bool own = S::kRanks > 1 && own_row_tile<S>(p, task.rowTile);
  auto aRow = [&](int r) -> const T* {
    if constexpr (S::kRanks > 1) {
      // Rows past the cell's count are padding. A peer's rows arrived contiguously in the cell;
      // this GPU's own are gathered from x through the token map.
      if (r >= (int)task.rows) return nullptr;
      return own ? x + (size_t)__ldcg(&p.rowToken[row0 + r]) * H : incoming + (size_t)(row0 + r) * H;
    } else {
      const int token = __ldcg(&p.rowToken[row0 + r]);
      return token >= 0 ? x + (size_t)token * H : nullptr;
    }
  };
  const T* w1 = static_cast<const T*>(p.w1) + ((size_t)e * D + n0) * H;
  const T* bRows[S::kGated ? 2 : 1];
  bRows[0] = w1;
  if constexpr (S::kGated) bRows[1] = static_cast<const T*>(p.w3) + ((size_t)e * D + n0) * H;
  G g;
  const Watchdog dog{p};
  OperandMaps<S::kGated ? 2 : 1> maps{};
  if constexpr (G::kTMA) {
    // Tensor maps W1, W3 (layout.cuh): rows are (local expert, D) pairs, columns H.
    maps.map[0] = p.tensorMaps;
    if constexpr (S::kGated) maps.map[S::kGated ? 1 : 0] = static_cast<const char*>(p.tensorMaps) + 128;
    maps.row0 = e * D + n0;
    maps.dog = &dog;
  }
  const bool timed = p.trace && threadIdx.x == 0;
  const unsigned long long loopStart = timed ? ptx::globaltimer() : 0;
#if defined(FLASHMOE_EXP_GEMM0_DENSE_TMA)
  // Experiment (wrong results): A is the intermediate's rows of this tile, by TMA (H = D only):
  // GEMM0 as GEMM1 loads its operands, to time the gather against a dense A.
  static_assert(!G::kTMA || H == D, "the experiment reads the intermediate's map as A");
  if constexpr (G::kTMA) {
    maps.aMap = static_cast<const char*>(p.tensorMaps) + 384;
    maps.aRow0 = row0;
  }
  g.template run<H, G::kTMA>(sh.gemm0, aRow, bRows, maps);
#elif defined(FLASHMOE_EXP_GEMM0_DENSE_CPASYNC)
  // Experiment (wrong results): A's rows are consecutive rows of x, by cp.async.
  g.template run<H>(sh.gemm0, [&](int r) -> const T* { return x + (size_t)((row0 + r) % p.tokens) * H; }, bRows, maps);
#else
  // A peer's rows lie dense in this GPU's dispatch cell, so they come by TMA in one 128-row box per
  // stage (map 4) like GEMM1's A; this GPU's own rows are gathered from x by cp.async. Rows past
  // the cell's count are whatever the cell last held: they feed only their own rows of the
  // intermediate, which GEMM1 computes and never sends home. On 2 H200s at 8K tokens per GPU this
  // took the forward from 0.727–0.791 to 0.715–0.718 ms in bf16 and from 1.210–1.219 to
  // 1.183–1.198 ms in tf32 (eighth session); FLASHMOE_NVRTC_DEFINES=FLASHMOE_PEER_ROWS_CPASYNC
  // gathers them by cp.async again.
#if defined(FLASHMOE_PEER_ROWS_CPASYNC)
  constexpr bool kPeerRowsTMA = false;
#else
  constexpr bool kPeerRowsTMA = S::kRanks > 1 && G::kTMA;
#endif
  if (kPeerRowsTMA && !own) {
    maps.aMap = static_cast<const char*>(p.tensorMaps) + 512;
    maps.aRow0 = row0;
    g.template run<H, kPeerRowsTMA>(sh.gemm0, aRow, bRows, maps);
  } else {
    g.template run<H>(sh.gemm0, aRow, bRows, maps);
  }
#endif
  const unsigned long long loop = timed ? ptx::globaltimer() - loopStart : 0;
  T* out = static_cast<T*>(p.hidden);
  const T* b1 = static_cast<const T*>(p.b1);
  const T* b3 = static_cast<const T*>(p.b3);
  auto value = [&](int c, int i) {
    const int col = n0 + c;
    float v = g.acc[0][i];
    if constexpr (S::kBiases) v += St::load(b1[e * D + col]);
    v = activate<S::kAct>(v);
    if constexpr (S::kGated) {
      float u = g.acc[S::kGated ? 1 : 0][i];
      if constexpr (S::kBiases) u += St::load(b3[e * D + col]);
      v *= u;
    }
    // tf32 math: GEMM1 reads these rounded (as the CPU backend stores them), so they are stored
    // rounded and GEMM1 stages them as they are.
    if constexpr (S::kDType == DType::fp32 && S::kMath == MathMode::tf32) v = __uint_as_float(ptx::to_tf32(v));
    return v;
  };
  g.store(sh.gemm0, value, out + (size_t)row0 * D + n0, D, TM);
  // TMA operands: GEMM1 reads these rows by TMA (the async proxy), so each thread orders its own
  // stores before the row tile's release (processor(): fence, then rowDone).
  if constexpr (TileGemm<S, 1, S::kTileN>::kTMA) ptx::fence_proxy_async_global();
  return loop;
}

// GEMM1: y = a·W2ᵀ + b2 for one row tile and tileN columns of H, rounded to the storage dtype.
template <class S>
__device__ unsigned long long gemm1_task(const Params& p, ProcessorShared<S>& sh, const Task& task) {
  using G = TileGemm<S, 1, S::kTileN>;
  using St = typename G::St;
  using T = typename G::T;
  constexpr int H = S::kHidden, D = S::kFFN, TM = S::kTileM, TN = S::kTileN;
  const int e = task.expert, row0 = task.rowTile * TM, n0 = task.colTile * TN;
  const T* hidden = static_cast<const T*>(p.hidden);
  auto aRow = [&](int r) -> const T* { return hidden + (size_t)(row0 + r) * D; };
  const T* bRows[1] = {static_cast<const T*>(p.w2) + ((size_t)e * H + n0) * D};
  G g;
  const Watchdog dog{p};
  OperandMaps<1> maps{};
  if constexpr (G::kTMA) {
    // Tensor map W2: rows are (local expert, H) pairs, columns D.
    maps.map[0] = static_cast<const char*>(p.tensorMaps) + 256;
    maps.row0 = e * H + n0;
    maps.dog = &dog;
    // A, the intermediate a, is dense: its 128-row boxes come by TMA too.
    maps.aMap = static_cast<const char*>(p.tensorMaps) + 384;
    maps.aRow0 = row0;
  }
  [[maybe_unused]] CombineRoute<S> route;
  if constexpr (S::kAtomicCombine) route.load(p, task.rowTile, G::mt());
  const bool timed = p.trace && threadIdx.x == 0;
  const unsigned long long loopStart = timed ? ptx::globaltimer() : 0;
  g.template run<D, G::kTMA>(sh.gemm1, aRow, bRows, maps);
  const unsigned long long loop = timed ? ptx::globaltimer() - loopStart : 0;
  const T* b2 = static_cast<const T*>(p.b2);
  auto value = [&](int c, int i) {
    float v = g.acc[0][i];
    if constexpr (S::kBiases) v += St::load(b2[e * H + n0 + c]);
    return v;
  };
  if constexpr (S::kRanks > 1) {
    // Results travel back tile by tile into the source's combine cell L[g][p = rank, r = 1, b = 1],
    // real rows only; the source counts arrived column tiles per (expert, row tile).
    constexpr int EL = S::kExperts / S::kRanks;
    const int tiles = p.cellRows / TM, cell = task.rowTile / tiles, t = task.rowTile % tiles;
    const int source = cell / EL, expert = p.rank * EL + cell % EL;
#if defined(FLASHMOE_EXP_GEMM1_RESULTS_LOCAL)
    // Experiment (wrong results): every result stays in this GPU's own combine cells, only the
    // counter crosses, to time GEMM1 with peers but without result traffic over NVLink (its tasks
    // take 35–40 µs on 4 GPUs against 25 on one; eighth session).
    T* home = static_cast<T*>(p.peers[p.rank].combineIn) + ((size_t)expert * p.cellRows + t * TM) * H + n0;
#else
    T* home = static_cast<T*>(p.peers[source].combineIn) + ((size_t)expert * p.cellRows + t * TM) * H + n0;
#endif
#if defined(FLASHMOE_TRANSPORT_NVSHMEM)
    if (source != p.rank) {
      // Staged in this GPU's symmetric memory (a remote put cannot read shared memory), then one
      // put-with-signal per row; the source counts rows × column tiles per (expert, row tile).
      T* stage = static_cast<T*>(p.stageOut) + (size_t)row0 * H + n0;
      g.store(sh.gemm1, value, stage, H, (int)task.rows);
      __threadfence_system();
      __syncthreads();
      for (int r = threadIdx.x >> 5; r < (int)task.rows; r += S::kWarps)
        remote::put_counted_warp(home + (size_t)r * H, stage + (size_t)r * H, TN * sizeof(T), &p.combineArrive[expert * tiles + t], source);
      return loop;
    }
#endif
    g.store(sh.gemm1, value, home, H, (int)task.rows);
    __syncthreads();
    if (threadIdx.x == 0) {
      __threadfence_system();
      atomicAdd_system(&p.peers[source].combineCount[expert * tiles + t], 1u);
    }
    return loop;
  }
  if constexpr (S::kAtomicCombine) {
    g.stage_via(&sh.gemm1, value, TM, route.adder(p, n0));
    return loop;
  }
  g.store(sh.gemm1, value, static_cast<T*>(p.expertOut) + (size_t)row0 * H + n0, H, TM);
  return loop;
}

// Combine (Eq. 2–4): out_i = Σ_j w_j · y_j over the token's kept picks in pick order, each product
// and sum rounded separately (no fused multiply-add), exactly as the CPU backend does. The tile's
// routing is staged in shared memory first, so that the result rows' loads do not wait on it one
// token at a time; each thread handles 16 bytes of a row, kBatch tokens at once.
template <class S>
__device__ void combine_task(const Params& p, CombineShared<S>& sh, const Task& task) {
  using St = Storage<S::kDType>;
  using T = typename St::T;
  constexpr int H = S::kHidden, K = S::kTopK, TM = S::kTileM, CN = S::kCombineN;
  constexpr int kVec = 16 / sizeof(T);
  constexpr int kLanes = CN / kVec;                       // threads per token row
  constexpr int kRowsAtOnce = S::kMathThreads / kLanes;
  // Tokens per thread in flight, and picks requested at once: kPicks · kBatch ≤ 16 loads of 16
  // bytes per thread are issued before any is summed. Combine is memory-bound and is the forward's
  // tail, so what bounds it is the bytes each SM keeps in flight (Little's law).
  constexpr int kBatch = K >= 8 ? 2 : 16 / K < 8 ? 16 / K : 8;
  constexpr int kPicks = K < 16 / kBatch ? K : 16 / kBatch;
  static_assert(CN % kVec == 0 && S::kMathThreads % kLanes == 0, "combine layout");
  const unsigned tid = threadIdx.x - (unsigned)S::kMathOffset;  // the computing threads run Combine
  union Vec { uint4 raw; T v[kVec]; };
  const T* y = static_cast<const T*>(p.expertOut);
  T* out = static_cast<T*>(p.out);
  const int token0 = task.rowTile * TM, c = task.colTile * CN + (tid % kLanes) * kVec;
  const int tokens = min(TM, p.tokens - token0);
  for (int i = (int)tid; i < tokens * K; i += S::kMathThreads) {
    sh.row[i / K][i % K] = __ldcg(&p.pairRow[token0 * K + i]);
    sh.weight[i / K][i % K] = __ldcg(&p.pairWeight[token0 * K + i]);
  }
  math_sync<S>();
  if (c >= H) return;
  for (int t0 = (int)(tid / kLanes); t0 < tokens; t0 += kRowsAtOnce * kBatch) {
    float acc[kBatch][kVec];
#pragma unroll
    for (int b = 0; b < kBatch; ++b)
#pragma unroll
      for (int v = 0; v < kVec; ++v) acc[b][v] = 0.f;
#pragma unroll 1
    for (int j0 = 0; j0 < K; j0 += kPicks) {
      Vec in[kPicks][kBatch];
#pragma unroll
      for (int j = 0; j < kPicks; ++j)
#pragma unroll
        for (int b = 0; b < kBatch; ++b) {
          const int t = t0 + b * kRowsAtOnce;
          const int row = t < tokens && j0 + j < K ? sh.row[t][j0 + j] : -1;
          in[j][b].raw = row >= 0 ? __ldcg(reinterpret_cast<const uint4*>(&y[(size_t)row * H + c])) : make_uint4(0, 0, 0, 0);
        }
      // Summed in pick order, each product and sum rounded (the CPU backend's order).
#pragma unroll
      for (int j = 0; j < kPicks; ++j)
#pragma unroll
        for (int b = 0; b < kBatch; ++b) {
          const int t = t0 + b * kRowsAtOnce;
          if (t >= tokens || j0 + j >= K || sh.row[t][j0 + j] < 0) continue;
          const float w = sh.weight[t][j0 + j];
#pragma unroll
          for (int v = 0; v < kVec; ++v) acc[b][v] = __fadd_rn(acc[b][v], __fmul_rn(w, St::load(in[j][b].v[v])));
        }
    }
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
      const int t = t0 + b * kRowsAtOnce;
      if (t >= tokens) continue;
      Vec result;
#pragma unroll
      for (int v = 0; v < kVec; ++v) result.v[v] = St::store(acc[b][v]);
      *reinterpret_cast<uint4*>(&out[(size_t)(token0 + t) * H + c]) = result.raw;
    }
  }
}

// A traced task into the Processor's tally: started at t0, k loop `loop` ns, the lead's epilogue
// stores issued at `stored`, its signal from `signalled` to t1.
__device__ __forceinline__ void tally_task(ProcessorTrace& tally, unsigned type, unsigned long long t0, unsigned long long loop,
                                           unsigned long long stored, unsigned long long signalled, unsigned long long t1) {
  tally.add(type, t0, t1, loop);
  if (type != kTaskCombine) tally.add_tail(t0, loop, stored, signalled, t1);
}

// Reads task `seq` from this Processor's mailbox into *dst (Stop when the wait gave up).
__device__ __forceinline__ void fetch_task(const Params& p, int me, unsigned seq, const Watchdog& dog, Task* dst) {
  MailboxSlot* slot = &p.mailbox[me * kMailboxDepth + (seq - 1) % kMailboxDepth];
  const unsigned long long want = ((unsigned long long)p.epoch << 32) | seq;
  const bool ok = dog.wait(kRoleProcessor, kPhaseTasks, want, [&] { return ptx::ld_acquire(&slot->tag); },
                           [&](unsigned long long v) { return v == want; });
  if (!ok) {
    dst->type = kTaskStop;
    return;
  }
  const volatile Task* t = &slot->task;
  dst->type = t->type;
  dst->rowTile = t->rowTile;
  dst->colTile = t->colTile;
  dst->expert = t->expert;
  dst->rows = t->rows;
}

template <class S>
__device__ void processor(const Params& p, ProcessorShared<S>& sh, Task* current) {
  const int me = blockIdx.x;
  const Watchdog dog{p};
  __shared__ ProcessorTrace tally;
  if (threadIdx.x == 0) tally.reset();
  for (unsigned seq = 1;; ++seq) {
    if (threadIdx.x == 0) {
      if (seq == 1 && me == 0) dog.stall_if(kRoleProcessor);
      const unsigned long long asked = p.trace ? ptx::globaltimer() : 0;
      // (fetch_task's read; calling it here changed this kernel's SASS, so it waits for a GPU check.)
      MailboxSlot* slot = &p.mailbox[me * kMailboxDepth + (seq - 1) % kMailboxDepth];
      const unsigned long long want = ((unsigned long long)p.epoch << 32) | seq;
      bool ok = dog.wait(kRoleProcessor, kPhaseTasks, want, [&] { return ptx::ld_acquire(&slot->tag); },
                         [&](unsigned long long v) { return v == want; });
      if (ok) {
        const volatile Task* t = &slot->task;
        current->type = t->type;
        current->rowTile = t->rowTile;
        current->colTile = t->colTile;
        current->expert = t->expert;
        current->rows = t->rows;
      } else {
        current->type = kTaskStop;
      }
      if (p.trace) tally.fetch += ptx::globaltimer() - asked;
    }
    __syncthreads();
    const Task task = *current;
    if (task.type == kTaskStop) {
      if (threadIdx.x == 0) tally.write(p, me);
      return;
    }
    const unsigned long long t0 = p.trace && threadIdx.x == 0 ? ptx::globaltimer() : 0;
    if (p.trace && threadIdx.x == 0 && tally.first == 0) trace_first(p, kTraceFirstTask);
    unsigned long long loop = 0;
    if (task.type == kTaskGEMM0) loop = gemm0_task<S>(p, sh, task);
    else if (task.type == kTaskGEMM1) loop = gemm1_task<S>(p, sh, task);
    else combine_task<S>(p, sh.combine, task);
    const unsigned long long stored = p.trace && threadIdx.x == 0 ? ptx::globaltimer() : 0;
    __syncthreads();
    if (threadIdx.x == 0) {
      const unsigned long long signalled = p.trace ? ptx::globaltimer() : 0;
      signal_finished(p, me, seq, task.type, task.rowTile);
      if (p.trace) tally_task(tally, task.type, t0, loop, stored, signalled, ptx::globaltimer());
    }
  }
}

// ---- Processors with a producer warpgroup (FLASHMOE_PRODUCER, producer.cuh) ----

// kZeroLate (slots.cuh): the producer warpgroup zeroes this Processor's share of the output, then
// counts it with a release (its threads' stores ordered by their barrier before the fence).
template <class S>
__device__ void zero_share(const Params& p) {
  zero_output<S>(p, threadIdx.x, S::kProducerThreads, blockIdx.x, (unsigned)p.processors);
  producer_sync<S>();
  if (threadIdx.x == 0) {
    __threadfence();
    atomicAdd(&p.counters[kSharesZeroed], 1u);
  }
}

// The producer warpgroup's GEMM0: this task's token rows (gathered) and W1 slice into the ring.
template <class S>
__device__ void gemm0_produce(const Params& p, ProcessorShared<S>& sh, StageRing<S::kStages>& ring, unsigned g,
                              const Task& task, const Watchdog& dog) {
  using G = TileGemm<S, 1, S::kGemm0N>;
  using T = typename G::T;
  constexpr int H = S::kHidden, D = S::kFFN, TM = S::kTileM;
  const int e = task.expert, row0 = task.rowTile * TM, n0 = task.colTile * S::kGemm0N;
  const T* x = static_cast<const T*>(p.x);
  const T* bRows[1] = {static_cast<const T*>(p.w1) + ((size_t)e * D + n0) * H};
  OperandMaps<1> maps{};
  maps.map[0] = p.tensorMaps;
  maps.row0 = e * D + n0;
  maps.dog = &dog;
  if constexpr (S::kRanks > 1) {
    // Expert parallelism (as gemm0_task): a peer's rows lie dense in this GPU's dispatch cell and
    // come by TMA (map 4); this GPU's own are gathered from x, rows past the cell's count zero.
    const bool own = own_row_tile<S>(p, task.rowTile);
#if defined(FLASHMOE_PEER_ROWS_CPASYNC)
    constexpr bool kPeerRowsTMA = false;  // (the host then encodes no map for the cells)
#else
    constexpr bool kPeerRowsTMA = true;
#endif
    if (kPeerRowsTMA && !own) {
      maps.aMap = static_cast<const char*>(p.tensorMaps) + 512;
      maps.aRow0 = row0;
      G::template produce<H, true>(sh.gemm0, ring, g, [](int) -> const T* { return nullptr; }, bRows, maps);
      return;
    }
    const T* incoming = static_cast<const T*>(p.peers[p.rank].dispatchIn);
    auto aRow = [&](int r) -> const T* {
      if (r >= (int)task.rows) return nullptr;
      return own ? x + (size_t)__ldcg(&p.rowToken[row0 + r]) * H : incoming + (size_t)(row0 + r) * H;
    };
    G::template produce<H, false>(sh.gemm0, ring, g, aRow, bRows, maps);
  } else {
    auto aRow = [&](int r) -> const T* {
      const int token = __ldcg(&p.rowToken[row0 + r]);
      return token >= 0 ? x + (size_t)token * H : nullptr;
    };
    G::template produce<H, false>(sh.gemm0, ring, g, aRow, bRows, maps);
  }
}

// The producer warpgroup's GEMM1: the intermediate's row tile and a W2 slice, both by TMA.
template <class S>
__device__ void gemm1_produce(const Params& p, ProcessorShared<S>& sh, StageRing<S::kStages>& ring, unsigned g,
                              const Task& task, const Watchdog& dog) {
  using G = TileGemm<S, 1, S::kTileN>;
  using T = typename G::T;
  constexpr int H = S::kHidden, D = S::kFFN, TM = S::kTileM;
  const int e = task.expert, n0 = task.colTile * S::kTileN;
  const T* bRows[1] = {static_cast<const T*>(p.w2) + ((size_t)e * H + n0) * D};
  OperandMaps<1> maps{};
  maps.map[0] = static_cast<const char*>(p.tensorMaps) + 256;
  maps.row0 = e * H + n0;
  maps.dog = &dog;
  maps.aMap = static_cast<const char*>(p.tensorMaps) + 384;
  maps.aRow0 = task.rowTile * TM;
  G::template produce<D, true>(sh.gemm1, ring, g, [](int) -> const T* { return nullptr; }, bRows, maps);
}

// The math side of a GEMM task with a producer: the k loop on the ring, then the epilogue (the
// bias, and GEMM0's activation) through the staging tile. Returns the ns of the k loop since `t0`
// where `timed`.
template <class S, bool kGemm0>
__device__ unsigned long long consume_task(const Params& p, ProcessorShared<S>& sh, StageRing<S::kStages>& ring,
                                           unsigned& g, const Task& task, const Watchdog& dog, unsigned long long t0,
                                           bool timed, ProcessorTrace& tally) {
  constexpr int TN = kGemm0 ? S::kGemm0N : S::kTileN;
  using G = TileGemm<S, 1, TN>;
  using T = typename G::T;
  using St = typename G::St;
  constexpr int K = kGemm0 ? S::kHidden : S::kFFN;    // the k loop's length
  constexpr int N = kGemm0 ? S::kFFN : S::kHidden;    // the output's width
  G gemm;
#if defined(FLASHMOE_BIAS_EARLY)
  // An experiment: this thread's bias values are loaded before the k loop, so that the epilogue
  // does not wait for them.
  typename G::BiasFragment early{};
  if constexpr (S::kBiases)
    early = gemm.load_bias(static_cast<const T*>(kGemm0 ? p.b1 : p.b2) + task.expert * N + task.colTile * TN);
#endif
#if defined(FLASHMOE_COMBINE_BULK)
  [[maybe_unused]] BulkRoute<S> route;
#else
  [[maybe_unused]] CombineRoute<S, kWarpgroupsApart<S> ? 4 : 8> route;
#endif
  if constexpr (!kGemm0 && S::kAtomicCombine) route.load(p, task.rowTile, G::mt());
  if constexpr (kGemm0) gemm.template consume<K, false>(sh.gemm0, ring, g, &dog);
  else gemm.template consume<K, true>(sh.gemm1, ring, g, &dog);
  g += K / G::TK;
  const unsigned long long loop = timed ? ptx::globaltimer() - t0 : 0;
  if (timed) tally.markedAt = t0 + loop;
  auto mark = [&](int point) {
    if (timed) tally.mark(point, ptx::globaltimer());
  };
  const int e = task.expert, row0 = task.rowTile * S::kTileM, n0 = task.colTile * TN;
  const T* bias = static_cast<const T*>(kGemm0 ? p.b1 : p.b2);
  auto value = [&](int c, int i) {
    float v = gemm.acc[0][i];
#if defined(FLASHMOE_BIAS_EARLY)
    if constexpr (S::kBiases) v += G::bias_at(early, i);
#else
    if constexpr (S::kBiases) v += St::load(bias[e * N + n0 + c]);
#endif
    if constexpr (kGemm0) v = activate<S::kAct>(v);
    return v;
  };
  if constexpr (!kGemm0 && S::kAtomicCombine) {
#if defined(FLASHMOE_COMBINE_BULK)
    T* outCols = static_cast<T*>(p.out) + n0;
    gemm.stage_halves_bulk(
        sh.staging, [&](int c, int i) { return __fmul_rn(route.weight_of(i), value(c, i)); },
        [&](int h, const T* row) {
          const int token = route.token[h];
          if (token >= 0) ptx::bulk_reduce_add<S::kDType == DType::bf16>(outCols + (size_t)token * S::kHidden, row, TN * sizeof(T));
        },
        mark);
#else
    if constexpr (kWarpgroupsApart<S>)
      gemm.stage_halves_apart(sh.staging, value, route.adder(p, n0), mark, [] { warpgroup_sync(G::mt() >> 7); });
    else
      gemm.stage_halves_via(sh.staging, value, S::kTileM, route.adder(p, n0), mark);
#endif
    return loop;
  }
  if constexpr (!kGemm0 && S::kRanks > 1) {
    // Expert parallelism (as gemm1_task, peer transport): the real rows go home into the source's
    // combine cell over NVLink; the source counts arrived column tiles per (expert, row tile).
    // (The same home and count as gemm1_task's; sharing a helper changed the default EP kernels'
    // SASS, so it waits for a GPU check.)
    constexpr int EL = S::kExperts / S::kRanks;
    const int tiles = p.cellRows / S::kTileM, cell = task.rowTile / tiles, t = task.rowTile % tiles;
    const int source = cell / EL, expert = p.rank * EL + cell % EL;
    T* home = static_cast<T*>(p.peers[source].combineIn) + ((size_t)expert * p.cellRows + t * S::kTileM) * N + n0;
    gemm.store_halves_via(sh.staging, value, home, N, (int)task.rows, mark);
    math_sync<S>();
    if (threadIdx.x == S::kMathOffset) {
      __threadfence_system();
      atomicAdd_system(&p.peers[source].combineCount[expert * tiles + t], 1u);
    }
    return loop;
  }
  T* out = static_cast<T*>(kGemm0 ? p.hidden : p.expertOut);
  if constexpr (kWarpgroupsApart<S>) {
    T* tile = out + (size_t)row0 * N + n0;
    gemm.stage_halves_apart(
        sh.staging, value, [&](int r, int c, const uint4& chunk) { *reinterpret_cast<uint4*>(tile + (size_t)r * N + c) = chunk; },
        mark, [] { warpgroup_sync(G::mt() >> 7); });
  } else {
    gemm.store_halves_via(sh.staging, value, out + (size_t)row0 * N + n0, N, S::kTileM, mark);
  }
  // GEMM1 reads GEMM0's rows by TMA (the async proxy): each thread orders its stores first.
  if constexpr (kGemm0) ptx::fence_proxy_async_global();
  return loop;
}

// The producer warpgroup's loop: each task's k tiles into the ring until Stop. 40 registers are
// enough to fill stages; the math warpgroups take the rest (40 + 2 × 232 = 3 × 168, the launch
// bound's share; Spec::kProducerRegisters, kMathRegisters).
template <class S>
__device__ void producer_loop(const Params& p, ProcessorShared<S>& sh, StageRing<S::kStages>& ring, const Watchdog& dog,
                              Task (&slots)[2]) {
  using G0 = TileGemm<S, 1, S::kGemm0N>;
  using G1 = TileGemm<S, 1, S::kTileN>;
  ptx::setmaxnreg_dec<S::kProducerRegisters>();
  unsigned g = 0;
  unsigned long long fetching = 0;  // thread 0, traced forwards: ns spent reading the mailbox
  for (unsigned seq = 1;; ++seq) {
    Task* mine = &slots[seq & 1];
    if (threadIdx.x == 0) {
      const unsigned long long asked = p.trace ? ptx::globaltimer() : 0;
      fetch_task(p, blockIdx.x, seq, dog, mine);
      if (p.trace) fetching += ptx::globaltimer() - asked;
    }
    producer_sync<S>();
    const Task task = *mine;
    if (task.type == kTaskStop) {
      if (threadIdx.x == 0) trace_producer_fetch(p, blockIdx.x, fetching);
      return;
    }
    if (task.type == kTaskGEMM0) {
      gemm0_produce<S>(p, sh, ring, g, task, dog);
      g += S::kHidden / G0::TK;
    } else if (task.type == kTaskGEMM1) {
      gemm1_produce<S>(p, sh, ring, g, task, dog);
      g += S::kFFN / G1::TK;
    }
  }
}

// The computing warpgroups' loop. Apart (kWarpgroupsApart), each warpgroup is on its own: its
// lead reads the task into its own copy, its own barrier, its own epilogue; the second to finish
// a task signals it (a count per sequence parity in shared memory). The ring lets one run up to
// kStages − 1 k tiles ahead of the other, so one's epilogue overlaps the other's last k tiles and
// the first of the next task. The trace follows warpgroup 0. Together: one lead, barriers over
// both warpgroups, one signal. `slots`: apart, [warpgroup][parity]; together, row 1 is the math's.
template <class S>
__device__ void math_loop(const Params& p, ProcessorShared<S>& sh, StageRing<S::kStages>& ring, const Watchdog& dog,
                          Task (&slots)[2][2], unsigned (&finishedHalves)[2], ProcessorTrace& tally) {
  constexpr bool kApart = kWarpgroupsApart<S>;
  const int me = blockIdx.x;
  const int wg = kApart ? (int)((threadIdx.x - S::kMathOffset) >> 7) : 0;
  const bool lead = kApart ? ((threadIdx.x - S::kMathOffset) & 127) == 0 : threadIdx.x == S::kMathOffset;
  const bool traced = lead && wg == 0;
  auto sync = [&] {
    if constexpr (kApart) warpgroup_sync(wg);
    else math_sync<S>();
  };
  unsigned g = 0;
  for (unsigned seq = 1;; ++seq) {
    Task* mine = &slots[kApart ? wg : 1][seq & 1];
    if (lead) {
      if (seq == 1 && me == 0 && wg == 0) dog.stall_if(kRoleProcessor);
      const unsigned long long asked = p.trace ? ptx::globaltimer() : 0;
      fetch_task(p, me, seq, dog, mine);
      if (p.trace && traced) tally.fetch += ptx::globaltimer() - asked;
    }
    sync();
    const Task task = *mine;
    if (task.type == kTaskStop) {
      if (traced) tally.write(p, me);
#if defined(FLASHMOE_COMBINE_BULK)
      // The last bulk reductions complete before the kernel ends.
      if constexpr (S::kAtomicCombine) ptx::bulk_wait();
#endif
      return;
    }
    const bool timed = p.trace && traced;
    const unsigned long long t0 = timed ? ptx::globaltimer() : 0;
    if (timed && tally.first == 0) trace_first(p, kTraceFirstTask);
    unsigned long long loop = 0;
    if (task.type == kTaskGEMM0) {
      loop = consume_task<S, true>(p, sh, ring, g, task, dog, t0, timed, tally);
    } else if (task.type == kTaskGEMM1) {
      loop = consume_task<S, false>(p, sh, ring, g, task, dog, t0, timed, tally);
    } else if constexpr (kApart) {
      // Combine (k > 2) runs on both warpgroups together, in shared memory that aliases the staging
      // tile: both are out of their last epilogue before it starts, and out of it before either
      // stages again. (The first GPU run treated it as GEMM1 and waited for stages that never
      // came: the watchdog stopped k = 3 and 4; fourteenth session, call 6.)
      // With the atomic combine (k ≤ 2) no Combine task exists. Leaving the branch out keeps those
      // kernels free of spills: with it, three k = 2 layers spilled 8–40 bytes (fifteenth session).
      if constexpr (!S::kAtomicCombine) {
        math_sync<S>();
        combine_task<S>(p, sh.combine, task);
        math_sync<S>();
      }
    } else {
      combine_task<S>(p, sh.combine, task);
    }
    const unsigned long long stored = timed ? ptx::globaltimer() : 0;
    sync();
    if (lead) {
      const unsigned long long signalled = p.trace ? ptx::globaltimer() : 0;
      if constexpr (kApart) {
        // This warpgroup's stores (ordered by its barrier) before the count the other one reads.
        __threadfence();
        if (atomicAdd(&finishedHalves[seq & 1], 1u) == 1u) {
          atomicExch(&finishedHalves[seq & 1], 0u);
          signal_finished(p, me, seq, task.type, task.rowTile);
        }
      } else {
        signal_finished(p, me, seq, task.type, task.rowTile);
      }
      if (timed) tally_task(tally, task.type, t0, loop, stored, signalled, ptx::globaltimer());
    }
  }
}

template <class S>
__device__ void processor_with_producer(const Params& p, ProcessorShared<S>& sh) {
  static_assert(S::kDType != DType::fp32 && !S::kGated,
                "the producer warpgroup is built for 16-bit storage, the plain form (KernelSpec.producerApplies)");
#if defined(FLASHMOE_TRANSPORT_NVSHMEM)
  static_assert(S::kRanks == 1, "the producer warpgroup's results go home by peer stores, not NVSHMEM puts");
#endif
  __shared__ StageRing<S::kStages> ring;
  __shared__ Task tasks[2][2];  // [producer, math][sequence parity]
  [[maybe_unused]] __shared__ Task apartTasks[2][2];        // kWarpgroupsApart: [warpgroup][parity]
  [[maybe_unused]] __shared__ unsigned finishedHalves[2];  // kWarpgroupsApart: per parity
  __shared__ ProcessorTrace tally;
  const Watchdog dog{p};
  if (threadIdx.x == 0) {
    for (int s = 0; s < S::kStages; ++s) {
      ptx::mbarrier_init(&ring.full[s], 1 + S::kProducerThreads);  // the TMA bytes, each filling thread
      ptx::mbarrier_init(&ring.empty[s], S::kMathThreads / 32);
    }
    ptx::fence_mbarrier_init();
    tally.reset();
    if constexpr (kWarpgroupsApart<S>) finishedHalves[0] = finishedHalves[1] = 0;
  }
  __syncthreads();

  if (threadIdx.x < 128) {
    // kZeroLate (slots.cuh): this Processor's share of the output before its first fetch (and before
    // the producer gives up its registers). Inside the loop, after the first task's loads, the
    // zeroing's state spilled the producer's 40 registers; and with fewer GEMM0 tasks than
    // Processors a Processor's first task could wait for the zeroing itself.
    if constexpr (kZeroLate<S>) zero_share<S>(p);
    producer_loop<S>(p, sh, ring, dog, tasks[0]);
    return;
  }

  ptx::setmaxnreg_inc<S::kMathRegisters>();
  if constexpr (kWarpgroupsApart<S>) math_loop<S>(p, sh, ring, dog, apartTasks, finishedHalves, tally);
  else math_loop<S>(p, sh, ring, dog, tasks, finishedHalves, tally);
}

}  // namespace flashmoe

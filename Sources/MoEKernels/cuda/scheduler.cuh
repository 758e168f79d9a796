// The Scheduler actor (Algorithm 3): one warp. It sweeps the doorbells — GEMM0 tile counts per row
// tile, the Subscriber's published arrivals, the Processors' finished counters — and hands ready
// tasks to Processors with free mailbox slots, all 32 lanes at once (a warp prefix sum over free
// slots), so no Processor waits while a task is ready (work-conserving). Priority: GEMM1 of
// completed row tiles, then GEMM0, then Combine; except that on one GPU the last round of GEMM0
// tasks (at most one per Processor left) goes before GEMM1, so that no row tile's GEMM0 finishes
// so late that its GEMM1 tasks run alone at the end (the critical path: kGemm0LastRounds). With
// the output zeroed by the producers (slots.cuh's kZeroLate) no GEMM1 task goes out before every
// share is counted. When every task has been handed out it sends each Processor Stop (the
// interrupt).
//
// What the tasks are comes from a "book": LocalBook on one GPU (every row tile known after the
// gate), PeerBook with expert parallelism (cells arrive from peers; the task bound grows until
// every source has signalled: SelfCorrectTaskBound).
#pragma once
#include "subscriber.cuh"
#include "watchdog.cuh"

namespace flashmoe {

constexpr unsigned kFull = 0xffffffffu;

// GEMM1 first keeps each row tile's GEMM0 results and its expert's W2 in L2 (its GEMM1 tasks follow
// its GEMM0 tasks), but starves GEMM0 at the end: with it the last GEMM0 tasks were handed out
// behind every ready GEMM1 task, and their row tiles' GEMM1 tasks ran 40–75 µs past the median
// Processor's end at 8K tokens (fourteenth session's traces; scripts/handout_sim.py models it).
// So once at most this many rounds (× Processors) of GEMM0 tasks are left, GEMM0 goes first: 8K
// 0.531–0.543 ms against 0.564–0.567 on an H200. FLASHMOE_GEMM0_LAST_ROUNDS=0 restores GEMM1
// always first (for A/B).
#if defined(FLASHMOE_GEMM0_LAST_ROUNDS)
constexpr int kGemm0LastRounds = FLASHMOE_GEMM0_LAST_ROUNDS;
#else
constexpr int kGemm0LastRounds = 1;
#endif
static_assert(kGemm0LastRounds >= 0, "FLASHMOE_GEMM0_LAST_ROUNDS: rounds of GEMM0 tasks, 0 or more");

// Releases every pending row tile whose GEMM0 tiles are all done into p.readyRows, in order.
// `pending(i)` gives the i-th row tile that can exist; rows past the window wait for a later sweep.
// A window of at most 256 is read at once, by relaxed loads with one acquire fence after them
// where any tile is ready: its eight acquire loads one after another (what a larger window, and
// FLASHMOE_SCHED_ACQUIRE_EACH, still do) each waited a round trip to L2 before the next could
// start, and the Scheduler's every sweep with them. (No difference in the forward measured at 8K:
// BENCHMARKS.md, fourteenth session, call 5.)
#if defined(FLASHMOE_SCHED_ACQUIRE_EACH)
constexpr bool kReleaseWindowAtOnce = false;
#else
constexpr bool kReleaseWindowAtOnce = true;
#endif
template <int kWindow, class Pending>
__device__ bool release_rows(const Params& p, unsigned char* released, int& scanFrom, int pendingCount,
                             int& rowsReleased, int g0PerRow, Pending pending) {
  const int lane = threadIdx.x & 31;
  bool progress = false;
  const int scanTo = min(pendingCount, scanFrom + kWindow);
  // One chunk of 32 tiles, each lane's ready or not, into readyRows in order.
  auto publish = [&](bool ready, int rt) {
    const unsigned m = __ballot_sync(kFull, ready);
    if (ready) {
      p.readyRows[rowsReleased + __popc(m & ((1u << lane) - 1u))] = rt;
      released[rt] = 1;
    }
    rowsReleased += __popc(m);
    progress |= m != 0;
  };
  if constexpr (kReleaseWindowAtOnce && kWindow <= 256) {
    constexpr int kChunks = kWindow / 32;
    int rt[kChunks];
    bool open[kChunks], ready[kChunks];
    unsigned done[kChunks];
#pragma unroll
    for (int k = 0; k < kChunks; ++k) {
      const int i = scanFrom + 32 * k + lane;
      rt[k] = i < scanTo ? pending(i) : 0;
      open[k] = i < scanTo && !released[rt[k]];
      done[k] = open[k] ? ptx::ld_relaxed(&p.rowDone[rt[k]]) : 0u;  // all issued before any is used
    }
    bool any = false;
#pragma unroll
    for (int k = 0; k < kChunks; ++k) {
      ready[k] = open[k] && done[k] == (unsigned)g0PerRow;
      any |= ready[k];
    }
    if (__any_sync(kFull, any)) ptx::fence_acq_rel_gpu();
#pragma unroll
    for (int k = 0; k < kChunks; ++k) publish(ready[k], rt[k]);
  } else for (int base = scanFrom; base < scanTo; base += 32) {
    const int i = base + lane;
    const int rt = i < scanTo ? pending(i) : 0;
    publish(i < scanTo && !released[rt] && ptx::ld_acquire(&p.rowDone[rt]) == (unsigned)g0PerRow, rt);
  }
  __syncwarp();
  if (lane == 0) while (scanFrom < pendingCount && released[pending(scanFrom)]) ++scanFrom;
  scanFrom = __shfl_sync(kFull, scanFrom, 0);
  return progress;
}

// One GPU: the row tiles of every expert are known once the gate is done.
template <class S>
struct LocalBook {
  const Params& p;
  OSShared<S>& os;
  unsigned char* released;
  int g0Next = 0, g1Next = 0, cNext = 0, rowsReleased = 0, scanFrom = 0;
  bool combineOpen = false;
  bool zeroed = !kZeroLate<S>;  // kZeroLate (slots.cuh): every Processor's share of the output zeroed

  __device__ void start() {
    for (int i = threadIdx.x & 31; i < os.rowTiles; i += 32) released[i] = 0;
    __syncwarp();
  }
  __device__ int g0Total() const { return os.gemm0Total; }
  __device__ int g1Total() const { return os.gemm1Total; }
  __device__ int cTotal() const { return os.combineTotal; }
  __device__ bool allKnown() const { return true; }

  __device__ bool refresh() {
    // Row tiles finish roughly in order here (GEMM0 is handed out in row-tile order per expert):
    // a window of 256 keeps each sweep short.
    bool progress = release_rows<256>(p, released, scanFrom, os.rowTiles, rowsReleased, os.gemm0PerRow, [](int i) { return i; });
    if constexpr (kZeroLate<S>) {
      // Every lane acquires the count itself: each hands out GEMM1 tasks whose adds follow the zeros.
      if (!zeroed) {
        zeroed = __all_sync(kFull, ptx::ld_acquire(&p.counters[kSharesZeroed]) >= (unsigned)p.processors);
        progress |= zeroed;
      }
    }
    if (!combineOpen && g1Next == os.gemm1Total) {
      const int done = (threadIdx.x & 31) == 0 ? (int)ptx::ld_acquire(&p.counters[kGemm1Done]) : 0;
      combineOpen = __shfl_sync(kFull, done, 0) == os.gemm1Total;
      if (combineOpen && (threadIdx.x & 31) == 0) trace_last(p, kTraceResultsIn);
    }
    return progress;
  }
  __device__ int availG1() const {
    if constexpr (kZeroLate<S>) if (!zeroed) return 0;
    return rowsReleased * os.gemm1PerRow - g1Next;
  }
  __device__ int availG0() const { return os.gemm0Total - g0Next; }
  __device__ int availC() const { return combineOpen ? os.combineTotal - cNext : 0; }
  __device__ bool g0Done() const { return g0Next == os.gemm0Total; }
  __device__ bool g0First(int processors) const { return availG0() <= kGemm0LastRounds * processors; }
  __device__ void tookG0(int n) { g0Next += n; }
  __device__ int g0Handed() const { return g0Next; }
  __device__ Task gemm0At(int j) const { return gemm0(g0Next + j); }

  __device__ Task gemm1(int j) const {
    const int rt = p.readyRows[j / os.gemm1PerRow];
    return Task{kTaskGEMM1, (unsigned)rt, (unsigned)(j % os.gemm1PerRow), (unsigned)__ldcg(&p.rowTileExpert[rt]), 0u};
  }
  // Expert-major, then column tile, then row tile: a W1 slice is read once and reused from L2.
  __device__ Task gemm0(int j) const {
    int lo = 0, hi = S::kExperts - 1;
    while (lo < hi) {
      const int mid = (lo + hi + 1) >> 1;
      if (os.gemm0Base[mid] <= j) lo = mid; else hi = mid - 1;
    }
    const int rows = os.firstRowTile[lo + 1] - os.firstRowTile[lo], local = j - os.gemm0Base[lo];
    return Task{kTaskGEMM0, (unsigned)(os.firstRowTile[lo] + local % rows), (unsigned)(local / rows), (unsigned)lo, 0u};
  }
};

// Expert parallelism: cells (source, local expert) arrive from peers in any order; each arrival
// adds its row tiles (GEMM0 now, GEMM1 once their GEMM0 tiles are done). Combine opens when every
// result of this GPU's own tokens is home (the Subscriber counts them). Peers' cells go before
// this GPU's own (arrivals 0 ..< E_l): their results must still travel home, so the work left at
// the end is local and no GPU ends waiting for another's last tiles.
template <class S>
struct PeerBook {
  static constexpr int EL = S::kExperts / S::kRanks;
  static constexpr int kCells = S::kRanks * EL;
  const Params& p;
  OSShared<S>& os;
  unsigned char* released;
  int ownNext = 0, peerTaken = 0, g1Next = 0, cNext = 0, rowsReleased = 0, scanFrom = 0;
  int known = 0, pendingTiles = 0;
  bool combineOpen = false;

  __device__ int tilesPerCell() const { return p.cellRows / S::kTileM; }
  // GEMM0 tasks are numbered by arrival: own cells' [0, ownEnd), peers' cells' [ownEnd, g0Total).
  __device__ int ownEnd() const { return known >= EL ? os.gemm0Base[EL] : 0; }
  __device__ int peerAvail() const { return known >= EL ? g0Total() - ownEnd() - peerTaken : 0; }
  __device__ void start() {
    for (int i = threadIdx.x & 31; i < kCells * tilesPerCell(); i += 32) released[i] = 0;
    if ((threadIdx.x & 31) == 0) os.gemm0Base[0] = 0;
    __syncwarp();
  }
  __device__ int g0Total() const { return os.gemm0Base[known]; }
  __device__ int g1Total() const { return pendingTiles * os.gemm1PerRow; }
  __device__ int cTotal() const { return os.combineTotal; }
  __device__ bool allKnown() const { return known == kCells; }

  __device__ bool refresh() {
    const int lane = threadIdx.x & 31;
    bool progress = false;
    // Absorb arrivals the Subscriber published (its list only grows).
    const int arrived = __shfl_sync(kFull, lane == 0 ? os.arrived : 0, 0);
    if (arrived > known) {
      __threadfence_block();
      if (lane == 0) {
        for (int i = known; i < arrived; ++i) {
          const int cell = os.arrivedCell[i], tiles = (os.cellCount[cell] + S::kTileM - 1) / S::kTileM;
          os.gemm0Base[i + 1] = os.gemm0Base[i] + tiles * os.gemm0PerRow;
          for (int t = 0; t < tiles; ++t) p.rowTileExpert[pendingTiles++] = cell * tilesPerCell() + t;
        }
      }
      known = arrived;
      pendingTiles = __shfl_sync(kFull, pendingTiles, 0);
      __syncwarp();
      progress = true;
    }
    const int* pending = p.rowTileExpert;  // scheduler-private here: the row tiles that exist, in arrival order
    // The whole list: own cells' tiles come first in it but finish last (peers' go first), so a
    // window starting at the oldest unreleased tile would hold the peers' GEMM1 back.
    progress |= release_rows<1 << 30>(p, released, scanFrom, pendingTiles, rowsReleased, os.gemm0PerRow,
                             [&](int i) { return pending[i]; });
    if (!combineOpen) combineOpen = os.combineReady != 0;
    return progress;
  }
  __device__ int availG1() const { return rowsReleased * os.gemm1PerRow - g1Next; }
  __device__ int availG0() const { return peerAvail() + ownEnd() - ownNext; }
  __device__ int availC() const { return combineOpen ? os.combineTotal - cNext : 0; }
  __device__ bool g0Done() const { return availG0() == 0; }
  // Peers' cells arrive over time, so "the last round" is not known here: GEMM1 always first.
  __device__ bool g0First(int) const { return false; }
  __device__ void tookG0(int n) {
    const int fromPeers = min(n, peerAvail());
    peerTaken += fromPeers;
    ownNext += n - fromPeers;
  }
  __device__ int g0Handed() const { return ownNext + peerTaken; }
  __device__ Task gemm0At(int j) const {
    const int peers = peerAvail();
    return gemm0(j < peers ? ownEnd() + peerTaken + j : ownNext + j - peers);
  }

  __device__ unsigned rowsOf(int rt) const {
    const int cell = rt / tilesPerCell(), t = rt % tilesPerCell();
    return (unsigned)min(S::kTileM, os.cellCount[cell] - t * S::kTileM);
  }
  __device__ Task gemm1(int j) const {
    const int rt = p.readyRows[j / os.gemm1PerRow];
    return Task{kTaskGEMM1, (unsigned)rt, (unsigned)(j % os.gemm1PerRow), (unsigned)((rt / tilesPerCell()) % EL), rowsOf(rt)};
  }
  // Arrival by arrival; inside a cell column tile by column tile, row tiles innermost.
  __device__ Task gemm0(int j) const {
    int lo = 0, hi = known - 1;
    while (lo < hi) {
      const int mid = (lo + hi + 1) >> 1;
      if (os.gemm0Base[mid] <= j) lo = mid; else hi = mid - 1;
    }
    const int cell = os.arrivedCell[lo], local = j - os.gemm0Base[lo];
    const int tiles = (os.cellCount[cell] + S::kTileM - 1) / S::kTileM;
    const int rt = cell * tilesPerCell() + local % tiles;
    return Task{kTaskGEMM0, (unsigned)rt, (unsigned)(local / tiles), (unsigned)(cell % EL), rowsOf(rt)};
  }
};

template <class S, class Book>
__device__ void schedule(const Params& p, Book& book, int* assigned) {
  const int lane = threadIdx.x & 31;
  const Watchdog dog{p};
  const unsigned long long epochTag = (unsigned long long)p.epoch << 32;
  const int processors = p.processors, cPerRow = book.os.combinePerRow;
  for (int i = lane; i < processors; i += 32) assigned[i] = 0;
  book.start();

  int stopped = 0;
  bool traced = false;
  unsigned long long lastProgress = ptx::globaltimer();
  for (unsigned spin = 0;; ++spin) {
    // The first sweep hands out GEMM0 only: no row tile can be done before a task has run.
    bool progress = spin > 0 && book.refresh();
    const int availG1 = book.availG1(), availG0 = book.availG0(), availC = book.availC();
    const int avail = availG1 + availG0 + availC;
    // The two GEMM kinds in hand-out order: [first, second), then Combine.
    const bool g0First = book.g0First(processors);
    const int availFirst = g0First ? availG0 : availG1, availGemm = availG1 + availG0;
    const bool draining = book.allKnown() && book.g0Done() && book.g1Next == book.g1Total()
                          && book.cNext == book.cTotal();

    if (draining && !traced) {
      traced = true;
      if (lane == 0) trace_last(p, kTraceLastTask);
    }
    // Hand out tasks (or, when draining, Stop) to Processors with free mailbox slots.
    int handed = 0;
    for (int base = 0; base < processors; base += 32) {
      const int pid = base + lane;
      int free = 0;
      if (pid < processors && assigned[pid] >= 0) {
        const unsigned long long f = ptx::ld_acquire(&p.finished[pid]);
        const int fin = (f >> 32) == p.epoch ? (int)(unsigned)f : 0;
        free = kMailboxDepth - (assigned[pid] - fin);
      }
      const int want = draining ? (free > 0 ? 1 : 0) : free;
      int incl = want;
      for (int o = 1; o < 32; o <<= 1) {
        const int n = __shfl_up_sync(kFull, incl, o);
        if (lane >= o) incl += n;
      }
      const int before = incl - want;
      const int total = __shfl_sync(kFull, incl, 31);
      const int take = draining ? want : max(0, min(want, avail - handed - before));
      for (int s = 0; s < take; ++s) {
        Task task;
        if (draining) {
          task = Task{kTaskStop, 0, 0, 0, 0};
        } else {
          const int idx = handed + before + s;
          if (idx < availFirst) task = g0First ? book.gemm0At(idx) : book.gemm1(book.g1Next + idx);
          else if (idx < availGemm)
            task = g0First ? book.gemm1(book.g1Next + idx - availFirst) : book.gemm0At(idx - availFirst);
          else {
            const int j = book.cNext + idx - availGemm;
            task = Task{kTaskCombine, (unsigned)(j / cPerRow), (unsigned)(j % cPerRow), 0u, 0u};
          }
        }
        const int seq = assigned[pid] + 1;
        MailboxSlot* slot = &p.mailbox[pid * kMailboxDepth + (seq - 1) % kMailboxDepth];
        volatile Task* t = &slot->task;
        t->type = task.type;
        t->rowTile = task.rowTile;
        t->colTile = task.colTile;
        t->expert = task.expert;
        t->rows = task.rows;
        __threadfence();
        ptx::st_release(&slot->tag, epochTag | (unsigned)seq);
        if (seq == 1) trace_first(p, kTraceFirstHanded);
        assigned[pid] = draining ? -1 : seq;
      }
      if (draining) stopped += __reduce_add_sync(kFull, take);
      else handed += min(total, max(0, avail - handed));
    }
    __syncwarp();
    if (draining && stopped == processors) return;
    const int nFirst = min(handed, availFirst), nSecond = min(handed - nFirst, availGemm - availFirst);
    const int n1 = g0First ? nSecond : nFirst, n0 = g0First ? nFirst : nSecond;
    book.g1Next += n1;
    book.tookG0(n0);
    book.cNext += handed - nFirst - nSecond;
    progress |= handed > 0;

    const unsigned long long now = ptx::globaltimer();
    if (progress) {
      lastProgress = now;
      if ((spin & 63) == 0 && dog.aborted()) return;
    } else {
      if (dog.aborted()) return;
      if (now - lastProgress > p.timeoutNs) {
        // awaited: GEMM1 and GEMM0 task totals; observed: how many of each were handed out.
        if (lane == 0)
          dog.fail(kRoleScheduler, kPhaseDrain, ((unsigned long long)book.g1Total() << 32) | (unsigned)book.g0Total(),
                   ((unsigned long long)book.g1Next << 32) | (unsigned)book.g0Handed(), now - lastProgress);
        return;
      }
      __nanosleep(64);
    }
  }
}

template <class S>
__device__ void scheduler(const Params& p, OSShared<S>& os, int* assigned, unsigned char* released) {
  const int lane = threadIdx.x & 31;
  const Watchdog dog{p};
  bool ok = true;
  if (lane == 0) dog.stall_if(kRoleScheduler);
  if (lane == 0)
    ok = dog.wait(kRoleScheduler, kPhaseTasks, 1, [&] { return (unsigned long long)os.published; },
                  [](unsigned long long v) { return v != 0; });
  if (!__shfl_sync(kFull, (int)ok, 0)) return;
  __threadfence_block();
  if constexpr (S::kRanks > 1) {
    PeerBook<S> book{p, os, released};
    schedule<S>(p, book, assigned);
  } else {
    LocalBook<S> book{p, os, released};
    schedule<S>(p, book, assigned);
  }
}

}  // namespace flashmoe

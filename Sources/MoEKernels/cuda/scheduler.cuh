// The Scheduler actor (Algorithm 3): one warp. It sweeps the doorbells — GEMM0 tile counts per row
// tile, the GEMM1 completion count, the Processors' finished counters — and hands ready tasks to
// Processors with free mailbox slots, all 32 lanes at once (a warp prefix sum over free slots), so
// no Processor waits while a task is ready (work-conserving). Priority: GEMM1 of completed rows,
// then GEMM0, then Combine (which opens when every GEMM1 tile is done). When every task has been
// handed out it sends each Processor Stop (the interrupt).
#pragma once
#include "subscriber.cuh"
#include "watchdog.cuh"

namespace flashmoe {

template <class S>
__device__ void scheduler(const Params& p, OSShared<S>& os, int* assigned, unsigned char* released) {
  constexpr unsigned kFull = 0xffffffffu;
  constexpr int kWindow = 256;  // row tiles swept beyond the first unreleased one
  const int lane = threadIdx.x & 31;
  const Watchdog dog{p};
  const unsigned long long epochTag = (unsigned long long)p.epoch << 32;

  bool ok = true;
  if (lane == 0)
    ok = dog.wait(kRoleScheduler, kPhaseTasks, 1, [&] { return (unsigned long long)os.published; },
                  [](unsigned long long v) { return v != 0; });
  if (!__shfl_sync(kFull, (int)ok, 0)) return;
  __threadfence_block();
  const int processors = p.processors, rowTiles = os.rowTiles;
  const int g0PerRow = os.gemm0PerRow, g1PerRow = os.gemm1PerRow, cPerRow = os.combinePerRow;
  const int g0Total = os.gemm0Total, g1Total = os.gemm1Total, cTotal = os.combineTotal;
  for (int i = lane; i < processors; i += 32) assigned[i] = 0;
  for (int i = lane; i < rowTiles; i += 32) released[i] = 0;
  __syncwarp();

  int g0Next = 0, g1Next = 0, cNext = 0, rowsReleased = 0, scanFrom = 0, stopped = 0;
  bool combineOpen = false;
  unsigned long long lastProgress = ptx::globaltimer();
  for (unsigned spin = 0;; ++spin) {
    bool progress = false;
    // Doorbells: row tiles whose GEMM0 tiles are all done release their GEMM1 tasks.
    const int scanTo = min(rowTiles, scanFrom + kWindow);
    for (int base = scanFrom; base < scanTo; base += 32) {
      const int rt = base + lane;
      const bool ready = rt < scanTo && !released[rt] && ptx::ld_acquire(&p.rowDone[rt]) == (unsigned)g0PerRow;
      const unsigned m = __ballot_sync(kFull, ready);
      if (ready) {
        p.readyRows[rowsReleased + __popc(m & ((1u << lane) - 1u))] = rt;
        released[rt] = 1;
      }
      rowsReleased += __popc(m);
      progress |= m != 0;
    }
    __syncwarp();
    if (lane == 0) while (scanFrom < rowTiles && released[scanFrom]) ++scanFrom;
    scanFrom = __shfl_sync(kFull, scanFrom, 0);
    if (!combineOpen && g1Next == g1Total) {
      int done = lane == 0 ? (int)ptx::ld_acquire(p.gemm1Done) : 0;
      combineOpen = __shfl_sync(kFull, done, 0) == g1Total;
    }

    const int availG1 = rowsReleased * g1PerRow - g1Next;
    const int availG0 = g0Total - g0Next;
    const int availC = combineOpen ? cTotal - cNext : 0;
    const int avail = availG1 + availG0 + availC;
    const bool draining = g0Next == g0Total && g1Next == g1Total && cNext == cTotal;

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
      int want = draining ? (free > 0 ? 1 : 0) : free;
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
          task = Task{kTaskStop, 0, 0, 0};
        } else {
          const int idx = handed + before + s;
          if (idx < availG1) {
            const int j = g1Next + idx, rt = p.readyRows[j / g1PerRow];
            task = Task{kTaskGEMM1, (unsigned)rt, (unsigned)(j % g1PerRow), (unsigned)__ldcg(&p.rowTileExpert[rt])};
          } else if (idx < availG1 + availG0) {
            // Expert-major, then column tile, then row tile (see OSShared::gemm0Base).
            const int j = g0Next + idx - availG1;
            int lo = 0, hi = S::kExperts - 1;
            while (lo < hi) {
              const int mid = (lo + hi + 1) >> 1;
              if (os.gemm0Base[mid] <= j) lo = mid; else hi = mid - 1;
            }
            while (os.firstRowTile[lo + 1] == os.firstRowTile[lo]) ++lo;  // skip experts with no rows
            const int rows = os.firstRowTile[lo + 1] - os.firstRowTile[lo], local = j - os.gemm0Base[lo];
            task = Task{kTaskGEMM0, (unsigned)(os.firstRowTile[lo] + local % rows), (unsigned)(local / rows), (unsigned)lo};
          } else {
            const int j = cNext + idx - availG1 - availG0;
            task = Task{kTaskCombine, (unsigned)(j / cPerRow), (unsigned)(j % cPerRow), 0u};
          }
        }
        const int seq = assigned[pid] + 1;
        MailboxSlot* slot = &p.mailbox[pid * kMailboxDepth + (seq - 1) % kMailboxDepth];
        volatile Task* t = &slot->task;
        t->type = task.type;
        t->rowTile = task.rowTile;
        t->colTile = task.colTile;
        t->expert = task.expert;
        __threadfence();
        ptx::st_release(&slot->tag, epochTag | (unsigned)seq);
        assigned[pid] = draining ? -1 : seq;
      }
      if (draining) stopped += __reduce_add_sync(kFull, take);
      else handed += min(total, max(0, avail - handed));
    }
    __syncwarp();
    if (draining && stopped == processors) return;
    const int n1 = min(handed, availG1), n0 = min(handed - n1, availG0);
    g1Next += n1;
    g0Next += n0;
    cNext += handed - n1 - n0;
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
          dog.fail(kRoleScheduler, kPhaseDrain, ((unsigned long long)g1Total << 32) | (unsigned)g0Total,
                   ((unsigned long long)g1Next << 32) | (unsigned)g0Next, now - lastProgress);
        return;
      }
      __nanosleep(64);
    }
  }
}

}  // namespace flashmoe

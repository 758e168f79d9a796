// The timeline of one forward, for `flashmoe bench --trace` (off when p.trace is null: one test
// per event). Global events are the last (or, for "first" events, the earliest) %globaltimer
// reading among the actors that reach them; each Processor adds up its busy time per task type.
// MoECUDA/KernelTrace.swift decodes the same layout.
#pragma once
#include "layout.cuh"
#include "ptx.cuh"

namespace flashmoe {

// Global words 0 ..< kTraceEvents. Barrier events share their phase's number (grid_barrier.cuh).
enum TraceEvent : int {
  kTraceStart = 0,        // first block running (earliest)
  kTraceGate = 1,         // last block done with its gate tiles (= kPhaseGate)
  kTraceScan = 2,         // last block done with the capacity scan (= kPhaseScan)
  kTraceSlots = 3,        // last block done with slots (= kPhaseSlots)
  kTraceCellsIn = 4,      // P > 1: every (source, local expert) cell's signal seen
  kTraceLastTask = 5,     // Scheduler handed out the last task
  kTraceDispatch = 6,     // P > 1: last dispatcher block done storing rows
  kTraceResultsIn = 7,    // every result needed by Combine is in place (= kPhaseCombine)
  kTraceFirstTask = 8,    // some Processor started its first task (earliest)
  kTraceFirstRemote = 9,  // P > 1: first cell from another GPU seen (earliest)
  kTraceEnd = 10,         // last block leaving the kernel
  kTraceLastStart = 11,   // last block running
  kTraceFirstGate = 12,   // first block past the gate's tiles (earliest; a block without tiles at once)
  kTraceGatePassed = 13,  // last block out of the gate's grid barrier
  kTraceSlotsPassed = 14, // last block out of the slots' grid barrier
  kTraceFirstHanded = 15, // the Scheduler wrote its first task into a mailbox (earliest)
  kTraceEvents = 16
};
// Per Processor, after the global words: first task start, last task end, busy ns of GEMM0,
// GEMM1 and Combine tasks, their counts, the ns GEMM0 and GEMM1 tasks spent in their k loop
// (the rest of a task: its epilogue, and signalling the task), and the ns spent reading the
// mailbox for the next task: by the computing threads' lead, and by the producer warpgroup's
// thread 0 (which reads ahead; 0 without a producer); then, over GEMM tasks, the ns from the end
// of the k loop to the lead's last store of the epilogue, and the ns of its signal that the task
// is done (what is left of a task: the lead waiting for the other warps' stores); and, with a
// producer warpgroup, that epilogue split into staging the tile's halves in shared memory (their
// values, then the barrier) and storing them (until the next barrier, or the lead's last store).
constexpr int kTracePerProcessor = 16;

__device__ __forceinline__ void trace_last(const Params& p, int event) {
  if (p.trace) atomicMax(&p.trace[event], ptx::globaltimer());
}
__device__ __forceinline__ void trace_first(const Params& p, int event) {
  if (p.trace) atomicMin(&p.trace[event], ptx::globaltimer());
}

// One Processor's tally, kept by its thread 0 in shared memory (registers are the GEMM's) and
// written once at Stop.
struct ProcessorTrace {
  unsigned long long first, last, busy0, busy1, busyC, loop0, loop1, fetch, epilogue, signal, staging, storing;
  unsigned long long markedAt;  // the epilogue's last mark (its start: the k loop's end)
  unsigned count0, count1, countC;
  __device__ void reset() {
    first = last = busy0 = busy1 = busyC = loop0 = loop1 = fetch = epilogue = signal = staging = storing = markedAt = 0;
    count0 = count1 = countC = 0;
  }
  // The epilogue's marks (TileGemm::stage_halves_via): `point` 0 and 2 end a half's staging, 1 its
  // stores; the interval since the last mark goes to the one it ends.
  __device__ void mark(int point, unsigned long long now) {
    (point == 1 ? storing : staging) += now - markedAt;
    markedAt = now;
  }
  // A GEMM task's epilogue ended (the lead's stores issued) at `stored`; its signal took t1 − signalled.
  __device__ void add_tail(unsigned long long t0, unsigned long long loop, unsigned long long stored,
                           unsigned long long signalled, unsigned long long t1) {
    epilogue += stored - t0 - loop;
    signal += t1 - signalled;
    if (markedAt != 0) storing += stored - markedAt;  // half 1's stores
    markedAt = 0;
  }
  __device__ void add(unsigned type, unsigned long long t0, unsigned long long t1, unsigned long long loop) {
    if (first == 0) first = t0;
    last = t1;
    if (type == kTaskGEMM0) { busy0 += t1 - t0; loop0 += loop; ++count0; }
    else if (type == kTaskGEMM1) { busy1 += t1 - t0; loop1 += loop; ++count1; }
    else { busyC += t1 - t0; ++countC; }
  }
  __device__ void write(const Params& p, int processor) const {
    if (!p.trace) return;
    unsigned long long* w = p.trace + kTraceEvents + (size_t)processor * kTracePerProcessor;
    w[0] = first; w[1] = last; w[2] = busy0; w[3] = busy1; w[4] = busyC;
    w[5] = count0; w[6] = count1; w[7] = countC;
    w[8] = loop0; w[9] = loop1;
    w[10] = fetch;  // w[11]: the producer's own (trace_producer_fetch)
    w[12] = epilogue; w[13] = signal;
    w[14] = staging; w[15] = storing;
  }
};

// The producer warpgroup's thread 0 writes its mailbox time itself when it stops (the computing
// threads' lead may write the tally before or after that).
__device__ __forceinline__ void trace_producer_fetch(const Params& p, int processor, unsigned long long ns) {
  if (p.trace) p.trace[kTraceEvents + (size_t)processor * kTracePerProcessor + 11] = ns;
}

}  // namespace flashmoe

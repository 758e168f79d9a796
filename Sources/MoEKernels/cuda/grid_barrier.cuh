// A grid-wide barrier for the cooperative launch, built on two words that persist across
// forwards: an arrival count that the last arrival returns to zero, and a generation that only
// grows. Waiting is bounded by the watchdog.
#pragma once
#include "watchdog.cuh"
#include "trace.cuh"

namespace flashmoe {

// Returns false (in every thread of the block) when the watchdog gave up. A block that passes
// `wait` false arrives and goes on at once (the OS block at the slots barrier on one GPU).
__device__ bool grid_barrier(const Params& p, unsigned phase, bool* blockOk, bool wait = true) {
  __syncthreads();
  if (threadIdx.x == 0) {
    Watchdog dog{p};
    unsigned* count = p.barrier;
    unsigned* generation = p.barrier + 1;
    trace_last(p, (int)phase);  // barrier phases double as trace events
    if (phase == kPhaseGate) trace_first(p, kTraceFirstGate);
    unsigned gen = ptx::ld_acquire(generation);
    __threadfence();
    unsigned arrived = atomicAdd(count, 1u);
    bool ok = true;
    if (arrived == gridDim.x - 1) {
      atomicExch(count, 0u);
      __threadfence();
      ptx::st_release(generation, gen + 1);
    } else if (wait) {
      ok = dog.wait(kRoleBarrier, phase, gen + 1,
                    [&] { return (unsigned long long)ptx::ld_acquire(generation); },
                    [&](unsigned long long g) { return (unsigned)g != gen; });
    }
    if (phase == kPhaseGate) trace_last(p, kTraceGatePassed);
    if (phase == kPhaseSlots) trace_last(p, kTraceSlotsPassed);
    *blockOk = ok;
  }
  __syncthreads();
  return *blockOk;
}

}  // namespace flashmoe

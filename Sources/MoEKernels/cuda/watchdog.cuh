// Bounded waiting. Every spin-wait in the kernel goes through `Watchdog::wait`: it polls a
// condition, and when the bound passes or another actor has already given up, it records who
// waited on what (first writer wins), raises the abort flag and returns false, so every actor
// leaves its loop and the kernel ends. The host turns the record into a Swift error.
#pragma once
#include "ptx.cuh"
#include "remote.cuh"
#include "layout.cuh"

namespace flashmoe {

struct Watchdog {
  const Params& p;

  __device__ bool aborted() const {
    return ptx::ld_acquire(p.abortEpoch) == p.epoch;
  }

  __device__ void fail(unsigned role, unsigned phase, unsigned long long awaited, unsigned long long observed,
                       unsigned long long elapsed) const {
    // The first actor to give up in this forward claims the record; the host reads it after the kernel ends.
    if (atomicExch(&p.error->epoch, p.epoch) != p.epoch) {
      p.error->code = 1;
      p.error->role = role;
      p.error->phase = phase;
      p.error->block = blockIdx.x;
      p.error->thread = threadIdx.x;
      p.error->awaited = awaited;
      p.error->observed = observed;
      p.error->elapsedNs = elapsed;
    }
    __threadfence();
    ptx::st_release(p.abortEpoch, p.epoch);
    // Expert parallelism: one stalled GPU must not leave the others waiting for its signals, so
    // the abort goes to every peer too, whatever phase this is (the gate's barriers included).
    // The peers' actors stop without a record of their own: the host reports this one.
    for (int i = 0; i < p.ranks; ++i)
      if (i != p.rank) remote::store_abort(p.peers[i].abortEpoch, p.epoch, i);
  }

  // Fault injection: when this GPU's `role` is the one FLASHMOE_DEBUG_STALL names, make no
  // progress for half the bound, then give up as a timed-out wait would: the stalled actor is the
  // one the error names, before any actor waiting on it reaches its own (full) bound.
  __device__ void stall_if(unsigned role) const {
    if (p.stallRole != role || p.stallRank != p.rank) return;
    const unsigned long long start = ptx::globaltimer();
    while (ptx::globaltimer() - start < p.timeoutNs / 2 && !aborted()) __nanosleep(1000);
    if (!aborted()) fail(role, kPhaseStall, 1, 0, ptx::globaltimer() - start);
  }

  // Polls `probe()` (which returns the observed value) until `done(observed)`; false on timeout
  // or abort. Called by one thread.
  template <class Probe, class Done>
  __device__ bool wait(unsigned role, unsigned phase, unsigned long long awaited, Probe probe, Done done) const {
    unsigned long long start = 0;
    for (unsigned spin = 0;; ++spin) {
      unsigned long long observed = probe();
      if (done(observed)) return true;
      if ((spin & 63) == 0) {
        unsigned long long now = ptx::globaltimer();
        if (spin == 0) start = now;
        if (aborted()) return false;
        if (now - start > p.timeoutNs) {
          fail(role, phase, awaited, observed, now - start);
          return false;
        }
      }
      __nanosleep(spin < 256 ? 20 : 200);
    }
  }
};

}  // namespace flashmoe

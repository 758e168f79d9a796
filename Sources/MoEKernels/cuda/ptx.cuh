// PTX helpers: acquire/release memory operations for the actors' signals, the global timer for
// the watchdog, cp.async staging, ldmatrix and the tensor-core mma.sync forms.
#pragma once

namespace flashmoe {
namespace ptx {

__device__ __forceinline__ unsigned long long globaltimer() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// Acquire loads and release stores for the actors' signals: at GPU scope between the actors of one
// GPU (ld_acquire, st_release), at system scope between GPUs over NVLink (…_sys).
#define FLASHMOE_ACQUIRE_RELEASE(SUFFIX, SCOPE)                                                    \
  __device__ __forceinline__ unsigned long long ld_acquire##SUFFIX(const unsigned long long* p) {  \
    unsigned long long v;                                                                          \
    asm volatile("ld.acquire." SCOPE ".global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");       \
    return v;                                                                                      \
  }                                                                                                \
  __device__ __forceinline__ unsigned ld_acquire##SUFFIX(const unsigned* p) {                      \
    unsigned v;                                                                                    \
    asm volatile("ld.acquire." SCOPE ".global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");       \
    return v;                                                                                      \
  }                                                                                                \
  __device__ __forceinline__ void st_release##SUFFIX(unsigned long long* p, unsigned long long v) { \
    asm volatile("st.release." SCOPE ".global.u64 [%0], %1;" ::"l"(p), "l"(v) : "memory");        \
  }                                                                                                \
  __device__ __forceinline__ void st_release##SUFFIX(unsigned* p, unsigned v) {                    \
    asm volatile("st.release." SCOPE ".global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");        \
  }
FLASHMOE_ACQUIRE_RELEASE(, "gpu")
FLASHMOE_ACQUIRE_RELEASE(_sys, "sys")
#undef FLASHMOE_ACQUIRE_RELEASE
// A relaxed load at GPU scope (its value may be stale but not torn; no ordering of its own).
__device__ __forceinline__ unsigned ld_relaxed(const unsigned* p) {
  unsigned v;
  asm volatile("ld.relaxed.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}
// A release fence without sequential consistency (__threadfence is fence.sc.gpu), and the
// relaxed store that, after it, makes a release pattern.
__device__ __forceinline__ void fence_acq_rel_gpu() { asm volatile("fence.acq_rel.gpu;" ::: "memory"); }
__device__ __forceinline__ void st_relaxed(unsigned long long* p, unsigned long long v) {
  asm volatile("st.relaxed.gpu.global.u64 [%0], %1;" ::"l"(p), "l"(v) : "memory");
}

// Eight 16-bit values (four packed pairs) added to global memory by one vector reduction (sm_90),
// each sum rounded to nearest: the atomic combine (Spec::kAtomicCombine).
template <bool kBF16>
__device__ __forceinline__ void red_add_x8(void* gmem, const uint4& v) {
  if constexpr (kBF16)
    asm volatile("red.global.add.noftz.v4.bf16x2 [%0], {%1, %2, %3, %4};" ::"l"(gmem), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w)
                 : "memory");
  else
    asm volatile("red.global.add.noftz.v4.f16x2 [%0], {%1, %2, %3, %4};" ::"l"(gmem), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w)
                 : "memory");
}

// A barrier among kThreads threads (a multiple of 32) on hardware barrier `id` (1–15; 0 is
// __syncthreads'): the gate's groups, and with a producer warpgroup its two roles.
template <int kThreads>
__device__ __forceinline__ void named_barrier(int id) {
  asm volatile("bar.sync %0, %1;" ::"r"(id), "n"(kThreads) : "memory");
}

__device__ __forceinline__ unsigned smem_addr(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

// Bulk reductions from shared memory into global memory (FLASHMOE_COMBINE_BULK): `bytes` (a
// multiple of 16, both addresses 16-byte aligned) of packed 16-bit values added element-wise by
// the TMA unit; completion by bulk groups of the issuing thread.
template <bool kBF16>
__device__ __forceinline__ void bulk_reduce_add(void* gmem, const void* smem, unsigned bytes) {
  if constexpr (kBF16)
    asm volatile("cp.reduce.async.bulk.global.shared::cta.bulk_group.add.noftz.bf16 [%0], [%1], %2;" ::"l"(gmem),
                 "r"(smem_addr(smem)), "r"(bytes) : "memory");
  else
    asm volatile("cp.reduce.async.bulk.global.shared::cta.bulk_group.add.noftz.f16 [%0], [%1], %2;" ::"l"(gmem),
                 "r"(smem_addr(smem)), "r"(bytes) : "memory");
}
__device__ __forceinline__ void bulk_commit() { asm volatile("cp.async.bulk.commit_group;" ::: "memory"); }
// Until every committed bulk group of this thread has read its source (shared memory reusable).
__device__ __forceinline__ void bulk_wait_read() { asm volatile("cp.async.bulk.wait_group.read 0;" ::: "memory"); }
// Until every committed bulk group of this thread is complete (its writes performed).
__device__ __forceinline__ void bulk_wait() { asm volatile("cp.async.bulk.wait_group 0;" ::: "memory"); }

// 16-byte asynchronous copy; `bytes` < 16 zero-fills the rest (0 gives a zero chunk).
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, int bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(smem_addr(smem)), "l"(gmem), "r"(bytes) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory"); }

__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], const void* smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(smem)));
}

// D = A·B + D, m16n8k16, bf16 or fp16 inputs, fp32 accumulators.
template <bool kBF16>
__device__ __forceinline__ void mma_16816(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  if constexpr (kBF16) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// D = A·B + D, m16n8k8, tf32 inputs, fp32 accumulators.
__device__ __forceinline__ void mma_1688_tf32(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Round to TF32, ties away from zero (docs/SEMANTICS.md: the CPU backend rounds the same way).
__device__ __forceinline__ unsigned to_tf32(float x) {
  unsigned r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
  return r;
}

}  // namespace ptx
}  // namespace flashmoe

// Long runs (issue #7 §5): a 64-bit fingerprint of one forward's output, so that 100,000 forwards
// can be compared on the GPU instead of copying 16 MB to the host each time. Each 32-bit word is
// mixed with its index (a moved, changed or swapped word changes its term) and the terms are
// summed with 64-bit integer adds, whose result does not depend on the order of the atomics.
// Not part of the MoE kernel: compiled on its own by MoECUDA's OutputFingerprint.

__device__ __forceinline__ unsigned long long fingerprint_mix(unsigned long long x) {
  // SplitMix64's finaliser: every input bit reaches every output bit.
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

extern "C" __global__ void flashmoe_fingerprint(const unsigned* words, unsigned long long count,
                                                unsigned long long* slot) {
  unsigned long long sum = 0;
  const unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
  for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += stride) {
    sum += fingerprint_mix((i << 32) | words[i]);
  }
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_down_sync(0xffffffffu, sum, offset);
  if ((threadIdx.x & 31) == 0) atomicAdd(slot, sum);
}

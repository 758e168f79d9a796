#!/usr/bin/env python3
"""Fits the coefficients of FLASHMOE_FAST_ERF (Sources/MoEKernels/cuda/storage.cuh) and checks them.

erf(x) = sign(x) * (1 - 2^q(|x|)), with q(t) = t * (c0 + c1 t + ... + c7 t^7) ~ log2(erfc(t)) on
[0, T], where erfc(T) is about 2^-25. The kernel evaluates the polynomial at every |x|: beyond T
it must fall monotonically (to -inf, without NaN), so that erf is exactly 1 there; the check
tests that too. The fit minimises the largest
error of erf itself, erfc(t) * |q_fit(t) - log2 erfc(t)| (Lawson's iteratively reweighted least
squares), and the check evaluates the polynomial as the GPU does (float32, fused multiply-adds)
at every 7th float in [0, 4.2], against erf in float64. Needs numpy and scipy.

  python3 scripts/fit_erf.py          # prints the coefficients and the largest error
"""
import numpy as np
from scipy.special import erf, erfc

T = 3.9192059
DEGREE = 8


def fit(degree, iterations=60):
    t = np.unique(np.concatenate([np.linspace(0, T, 20000), T / 2 * (1 - np.cos(np.linspace(0, np.pi, 20000)))]))
    weight = erfc(t)
    basis = np.vander(t, degree, increasing=True) * t[:, None]
    target = np.log2(erfc(t))
    lawson = np.ones_like(t)
    for _ in range(iterations):
        s = np.sqrt(lawson) * weight
        c, *_ = np.linalg.lstsq(basis * s[:, None], target * s, rcond=None)
        error = np.abs((basis @ c - target) * weight)
        lawson = lawson * (error + 1e-30)
        lawson /= lawson.sum()
    return c


def fma32(a, b, c):
    # Exact product of two floats in float64, one rounding of the sum to float32 (as FFMA, up to
    # the rare double-rounding case).
    return (a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64)).astype(np.float32)


def erf32(x, c32):
    t = np.abs(x)
    r = np.full_like(t, c32[-1])
    for ci in c32[-2::-1]:
        r = fma32(r, t, np.full_like(t, ci))
    q = (r.astype(np.float64) * t.astype(np.float64)).astype(np.float32)
    e = np.exp2(q.astype(np.float64)).astype(np.float32)  # ex2.approx adds up to 2 ulp of e
    return np.copysign(np.float32(1) - e, x)


def beyond(c32):
    # q(t) from T to float overflow: decreasing, below -25 (so 1 - 2^q rounds to 1), never NaN.
    t = np.concatenate([np.linspace(T, 10, 200001), np.logspace(1, 38, 100000)]).astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        r = np.full_like(t, c32[-1])
        for ci in c32[-2::-1]:
            r = fma32(r, t, np.full_like(t, ci))
        q = (r.astype(np.float64) * t.astype(np.float64)).astype(np.float32)
    finite = q[np.isfinite(q)]
    return bool(np.all(np.diff(finite) <= 0) and q.max() < -25 and np.all(np.isfinite(q) | (q == -np.inf)))


def main():
    c32 = fit(DEGREE).astype(np.float32)
    xs = np.arange(0, np.float32(4.2).view(np.uint32), 7, dtype=np.uint32).view(np.float32)
    worst = 0.0
    for i in range(0, len(xs), 1 << 22):
        x = xs[i:i + (1 << 22)]
        worst = max(worst, float(np.abs(erf32(x, c32).astype(np.float64) - erf(x.astype(np.float64))).max()))
    print("coefficients c0..c7:", ", ".join(f"{float(v):.9e}f" for v in c32))
    print(f"largest |error| of erf: {worst:.3e} = {worst / 2**-23:.2f} ulp of 1.0 (before ex2.approx's 2 ulp)")
    print("beyond T: decreasing, below -25, no NaN:", beyond(c32))


if __name__ == "__main__":
    main()

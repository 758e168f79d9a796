#!/usr/bin/env bash
# The CPU backend's achieved GFLOP/s against numpy's sgemm on this machine, in one run.
#   scripts/cpu_vs_numpy.sh [extra flashmoe bench flags]
# Defaults: the issue's shape S=4096, H=D=1024, E=8, k=2, fp32. numpy times an sgemm of the shape of
# the whole layer's token matrix (4096 × 1024 · 1024 × 1024) on all cores; the ratio is
# flashmoe's whole-layer GFLOP/s over numpy's GEMM GFLOP/s.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product flashmoe >/dev/null
bin=.build/release/flashmoe

# Some machines here set OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE for old OpenBLAS builds; they slow a
# current numpy, so unset both for numpy's measurement only.
numpy_json=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 - <<'PY'
import json, time, numpy as np
m, n, k = 4096, 1024, 1024
rng = np.random.default_rng(0)
a = rng.standard_normal((m, k), dtype=np.float32)
b = rng.standard_normal((n, k), dtype=np.float32)
for _ in range(3): a @ b.T
times = []
for _ in range(10):
    t = time.perf_counter(); a @ b.T; times.append(time.perf_counter() - t)
times.sort()
med = times[len(times) // 2]
print(json.dumps({"gflops": 2 * m * n * k / med / 1e9, "median_ms": med * 1e3, "numpy": np.__version__}))
PY
)
flash_json=$("$bin" bench --backend cpu --tokens 4096 --hidden 1024 --ffn 1024 --experts 8 --topk 2 --dtype fp32 --json --quiet "$@")
python3 - "$numpy_json" "$flash_json" <<'PY'
import json, sys
npy, fm = json.loads(sys.argv[1]), json.loads(sys.argv[2])
c = fm["config"]
print(f"numpy {npy['numpy']} sgemm 4096x1024x1024: {npy['gflops']:.1f} GFLOP/s ({npy['median_ms']:.2f} ms)")
print(f"flashmoe cpu, {fm['threads']} threads, S={c['tokens']} H={c['hidden']} D={c['ffn']} E={c['experts']} k={c['topK']} {c['dtype']}: "
      f"{fm['gflops']:.1f} GFLOP/s (median {fm['medianMs']:.1f} ms over {fm['runs']} runs)")
print(f"ratio flashmoe/numpy: {fm['gflops'] / npy['gflops']:.2f}")
PY

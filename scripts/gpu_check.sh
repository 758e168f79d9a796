#!/usr/bin/env bash
# Verify and benchmark on the GPU machine in one call, printing a short report.
# Run from the repository root there, with the static binary and the baseline in .device/:
#   swift build -c release --static-swift-stdlib --product flashmoe
#   mkdir -p .device && cp .build/release/flashmoe .device/ && cp ../shared/baselines/torch_moe.py .device/
#   scripts/gpu_check.sh [quick|full|ep|scale|gate|suite|tf32|sanitize|nvshmem|nvshmem4|multiproc|rankfaults|cellorder|gated|realsize|drain|weak|tf32round|stalls|wg|wg2|tma|tma2|tmahidden|levers|combine|gemm0|four|tmarows|final|gemm1peers|trace|reliability|ncu|producer|epilogue|session10|gatesplit|gateprefetch|signals|pingpong|gatemma|session11|handout|signal|gatencu|producerpeers|suite2|launch|between|mailbox|sched|fused|espread|atomic|atomic2|session13|session13b|session13c|gatepass|atomic3|final13|next13|s14a|s14b|s14c|final14|next14|apart|s15a|s15b|s15c|s15d|s15e|s15f|s15g|s15h]
#     scale: every GPU count of the machine (battery, then bf16 at 8K per GPU with torch_moe.py)
#     ep: expert parallelism on 2 GPUs; trace: timelines; reliability: issue #7's GPU items;
#     ncu: SM utilisation and tensor-pipe activity of one forward (issue #5)
# Every step has its own time limit, so one hung step cannot eat the whole call.
set -uo pipefail
B=${B:-.device/flashmoe}
MODE=${1:-full}
export FLASHMOE_CACHE_DIR=${FLASHMOE_CACHE_DIR:-/tmp/flashmoe-cache}
export FLASHMOE_WATCHDOG_MS=${FLASHMOE_WATCHDOG_MS:-5000}
step() {
  local limit=$1; shift; echo "\$ $*"; local t0=$SECONDS
  timeout "$limit" "$@"; local rc=$?
  [ $rc -ne 0 ] && echo "(exit $rc)"; echo "($((SECONDS - t0)) s)"; return 0
}

# ROUNDS alternating pairs of 1- and 2-GPU runs at 8K bf16 (weak scaling), 4K/16K on 2 GPUs, tf32
# on 1 and 2, then torch_moe.py on 1 and 2 GPUs in the same call.
defaults_vs_torch() {
  local A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet"
  for i in $(seq 1 $1); do
    step 60 $B bench --backend cuda --dtype bf16 $A --sweep-tokens 8192 --runs 100
    step 60 $B bench --backend cuda --gpus 2 --dtype bf16 $A --sweep-tokens 8192 --runs 100
  done
  step 60 $B bench --backend cuda --gpus 2 --dtype bf16 $A --sweep-tokens 4096 16384
  step 60 $B bench --backend cuda --dtype fp32 --math tf32 $A --sweep-tokens 8192
  step 60 $B bench --backend cuda --gpus 2 --dtype fp32 --math tf32 $A --sweep-tokens 4096 8192 16384
  step 60 python3 .device/torch_moe.py --gpus 1 --tokens 8192 --dtype bf16 --warmup 16 --iters 32
  step 60 python3 .device/torch_moe.py --gpus 2 --tokens 8192 --dtype bf16 --warmup 16 --iters 32
  step 60 python3 .device/torch_moe.py --gpus 2 --tokens 8192 --dtype fp32 --tf32 --impl loop --warmup 16 --iters 32
}

# A switch VAR=0/1 against each other on one GPU at the benchmark's bf16 layer: two alternating
# rounds at 8K (the first traced), then 4K / 16K each way.
switch_ab() {
  local A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --runs 100"
  for i in 1 2; do
    for E in 0 1; do
      step 40 env $1=$E $B bench --backend cuda --dtype bf16 $A --sweep-tokens 8192 $([ $i = 1 ] && echo --trace)
    done
  done
  for E in 0 1; do step 60 env $1=$E $B bench --backend cuda --dtype bf16 $A --sweep-tokens 4096 16384; done
}

# Opt-in kernel defines against the default at 8K bf16: two alternating rounds on one GPU over
# the define sets "" and "$@" (the first round traced), then "" against the last set on two GPUs.
defines_rounds() {
  local A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --runs 100 --sweep-tokens 8192" D i
  for i in 1 2; do
    for D in "" "$@"; do
      echo "## defines '$D'"
      step 40 env FLASHMOE_NVRTC_DEFINES="$D" $B bench --backend cuda --dtype bf16 $A $([ $i = 1 ] && echo --trace)
    done
  done
  for D in "" "${@: -1}"; do
    echo "## defines '$D'"
    step 40 env FLASHMOE_NVRTC_DEFINES="$D" $B bench --backend cuda --gpus 2 --dtype bf16 $A
  done
}

# An opt-in kernel define against the default: the single-GPU and 2-GPU batteries with
# FLASHMOE_NVRTC_DEFINES=$1 (seeds $3, $3 + 1), then two alternating rounds of $2 "ENV" ROUND, each
# round without the define and with it.
ab_define() {
  local F="FLASHMOE_NVRTC_DEFINES=$1"
  step 200 env $F $B verify --backend cuda --seed $3 --repeats ${REPEATS:-10}
  step 90 env $F $B verify --backend cuda --gpus 2 --seed $(($3 + 1)) --repeats 30
  for i in 1 2; do
    for E in "" "$F"; do
      echo "## defines '$E'"
      $2 "$E" $i
    done
  done
}

# The single-GPU battery with FLASHMOE_NVRTC_DEFINES=$2 (seed $1); two rounds at 8K over the define
# sets "" and the rest (the first round traced); 4K / 16K without and with $2; torch_moe.py at 8K.
battery_and_rounds() {
  local seed=$1 X=$2 D i
  shift 2
  local A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --runs 100"
  step 220 env FLASHMOE_NVRTC_DEFINES="$X" $B verify --backend cuda --seed $seed --repeats 2
  for i in 1 2; do
    for D in "" "$@"; do
      echo "## defines '$D'"
      step 40 env FLASHMOE_NVRTC_DEFINES="$D" $B bench --backend cuda --dtype bf16 $A --sweep-tokens 8192 $([ $i = 1 ] && echo --trace)
    done
  done
  for D in "" "$X"; do
    echo "## defines '$D'"
    step 50 env FLASHMOE_NVRTC_DEFINES="$D" $B bench --backend cuda --dtype bf16 $A --sweep-tokens 4096 16384
  done
  step 60 python3 .device/torch_moe.py --gpus 1 --tokens 8192 --dtype bf16 --warmup 16 --iters 32
}

# One GPU at the benchmark's bf16 layer: $1 alternating rounds at 8K over the define sets "$2"…
# (the first round traced).
rounds_at_8k() {
  local A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --runs 100" n=$1 D i
  shift
  for i in $(seq 1 $n); do
    for D in "$@"; do
      echo "## defines '$D'"
      step 40 env FLASHMOE_NVRTC_DEFINES="$D" $B bench --backend cuda --dtype bf16 $A --sweep-tokens 8192 $([ $i = 1 ] && echo --trace)
    done
  done
}
# The same layer at 4K and 16K tokens for each define set.
at_4k_16k() {
  local A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --runs 100" D
  for D in "$@"; do
    echo "## defines '$D'"
    step 50 env FLASHMOE_NVRTC_DEFINES="$D" $B bench --backend cuda --dtype bf16 $A --sweep-tokens 4096 16384
  done
}

# Experts 8 / 32 / 128 at 16K tokens on one GPU (issue #5's spread), once; E = $1 traced if given.
experts_at_16k() {
  local E
  for E in 8 32 128; do
    step 60 $B bench --backend cuda --dtype bf16 --hidden 2048 --ffn 2048 --experts $E --topk 2 --quiet --runs 100 --sweep-tokens 16384 $([ "$E" = "${1:-}" ] && echo --trace)
  done
}

# torch_moe.py on one GPU at 4K, 8K and 16K tokens (bf16), for the ratio in the same call.
torch_at_4k_8k_16k() {
  local T
  for T in 4096 8192 16384; do
    step 60 python3 .device/torch_moe.py --gpus 1 --tokens $T --dtype bf16 --warmup 16 --iters 32
  done
}

nvidia-smi --query-gpu=index,name,memory.total,clocks.max.sm --format=csv,noheader
step 60 $B info
if [ "$MODE" = gate ]; then
  # Session 3's call 2: the launch gate (FLASHMOE_LAUNCH_GATE) A/B on every GPU count, after the
  # battery on 2 and N GPUs; tf32 on wgmma against mma.sync at 8K on one GPU. The gate was removed
  # (it gained nothing) and tf32 on wgmma is now the default, so today the A/B pairs run the same
  # code; kept to reproduce the log's commands.
  N=$(nvidia-smi -L | wc -l)
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet"
  step 120 $B verify --backend cuda --seed ${SEED:-20261128} --only "tf32 on wgmma"
  step 120 $B verify --backend cuda --seed ${SEED:-20261128} --only "out-of-memory"
  for P in 2 $N; do
    step 150 $B verify --backend cuda --gpus $P --seed $((${SEED:-20261128} + 10 * P)) --repeats ${REPEATS:-300}
  done
  for P in $(seq 2 $N); do
    [ $((32 % P)) -eq 0 ] || continue
    step 60 $B bench --backend cuda --gpus $P --dtype bf16 $A --sweep-tokens 4096 8192 16384
    step 60 env FLASHMOE_LAUNCH_GATE=off $B bench --backend cuda --gpus $P --dtype bf16 $A --sweep-tokens 8192
  done
  step 60 $B bench --backend cuda --dtype bf16 $A --sweep-tokens 4096 8192 16384
  step 60 $B bench --backend cuda --gpus 2 --dtype bf16 $A --sweep-tokens 8192 --trace
  step 60 $B bench --backend cuda --dtype fp32 --math tf32 $A --sweep-tokens 8192
  step 60 env FLASHMOE_TF32_WGMMA=1 $B bench --backend cuda --dtype fp32 --math tf32 $A --sweep-tokens 8192
  exit 0
fi
if [ "$MODE" = suite ]; then
  # The paper's §4 grid on every GPU count of the machine, with torch_moe.py at every point.
  # DTYPES=bf16 or fp32 (one per call keeps a call under 10 minutes); fp32 runs with tf32 math.
  D=${DTYPES:-bf16}
  M=""; [ "$D" = fp32 ] && M="--math tf32"
  step 560 $B bench --backend cuda --suite --dtypes $D $M --baseline .device/torch_moe.py --baseline-timeout 120 --out ${SUITE_OUT:-bench-out}
  exit 0
fi
if [ "$MODE" = sanitize ]; then
  # compute-sanitizer on a small layer (issue #7 §4), then the quick battery, the single-GPU
  # faults and one benchmark, as a check that the change the sanitizer asked for broke nothing.
  for tool in racecheck memcheck; do
    step ${SANITIZER_LIMIT:-90} env FLASHMOE_WATCHDOG_MS=600000 compute-sanitizer --tool $tool --error-exitcode 3 $B run --backend cuda --dtype bf16 --tokens 128 --hidden 128 --ffn 128 --experts 4 --topk 2 --quiet
  done
  step 90 $B verify --backend cuda --quick --seed ${SEED:-20261130} --repeats 200
  step 60 $B verify --backend cuda --faults
  step 60 $B bench --backend cuda --dtype bf16 --hidden 2048 --ffn 2048 --experts 32 --topk 2 --sweep-tokens 4096 8192 16384 --quiet
  exit 0
fi
if [ "$MODE" = nvshmem ]; then
  # One process per GPU over NVSHMEM (issue #6) on this host, with the put/signal transport forced
  # (FLASHMOE_NVSHMEM_TRANSPORT=put; peer pointers would do here): the transport probe and the
  # expert-parallel battery on 2 and 4 processes, then 8K tokens per GPU through puts, through
  # nvshmem_ptr stores, through one process's peer pointers, and torch_moe.py --gpus 2.
  export NVSHMEM_REMOTE_TRANSPORT=${NVSHMEM_REMOTE_TRANSPORT:-none}
  export NVSHMEM_BOOTSTRAP_UID_SOCK_IFNAME=${NVSHMEM_BOOTSTRAP_UID_SOCK_IFNAME:-lo}
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --sweep-tokens 8192 --quiet"
  step 150 env FLASHMOE_NVSHMEM_TRANSPORT=put $B launch -n 2 --timeout 145 -- verify --launcher env --seed ${SEED:-20261208} --repeats ${REPEATS:-100}
  for D in "--dtype bf16" "--dtype fp32 --math tf32"; do
    step 60 env FLASHMOE_NVSHMEM_TRANSPORT=put $B launch -n 2 --timeout 55 -- bench --launcher env $D $A
    step 45 $B launch -n 2 --timeout 40 -- bench --launcher env $D $A
    step 45 $B bench --backend cuda --gpus 2 $D $A
  done
  N=$(nvidia-smi -L | wc -l)
  if [ "$N" -ge 4 ]; then
    step 150 env FLASHMOE_NVSHMEM_TRANSPORT=put $B launch -n 4 --timeout 145 -- verify --launcher env --seed ${SEED:-20261209} --repeats 50
    step 60 env FLASHMOE_NVSHMEM_TRANSPORT=put $B launch -n 4 --timeout 55 -- bench --launcher env --dtype bf16 $A
    step 45 $B launch -n 4 --timeout 40 -- bench --launcher env --dtype bf16 $A
  fi
  if [ -f .device/torch_moe.py ]; then
    step 60 python3 .device/torch_moe.py --gpus 2 --tokens 8192 --dtype bf16 --warmup 16 --iters 32
    step 60 python3 .device/torch_moe.py --gpus 2 --tokens 8192 --dtype fp32 --tf32 --impl loop --warmup 16 --iters 32
  fi
  exit 0
fi
if [ "$MODE" = rankfaults ]; then
  # Faults with one process per GPU (issue #6 §3): each actor stalled on the last rank, then the
  # last rank leaving the job; 2 processes (peer pointers, then puts) and 4 processes.
  export NVSHMEM_REMOTE_TRANSPORT=${NVSHMEM_REMOTE_TRANSPORT:-none}
  export NVSHMEM_BOOTSTRAP_UID_SOCK_IFNAME=${NVSHMEM_BOOTSTRAP_UID_SOCK_IFNAME:-lo}
  step 75 $B launch -n 2 --timeout 70 -- verify --launcher env --faults --rendezvous-timeout 15
  step 75 env FLASHMOE_NVSHMEM_TRANSPORT=put $B launch -n 2 --timeout 70 -- verify --launcher env --faults --rendezvous-timeout 15
  [ "$(nvidia-smi -L | wc -l)" -ge 4 ] && step 80 $B launch -n 4 --timeout 75 -- verify --launcher env --faults --rendezvous-timeout 15
  exit 0
fi
if [ "$MODE" = cellorder ]; then
  # Dispatch in cell order (FLASHMOE_DISPATCH_ORDER=cell, opt-in) against token order: the battery
  # on 2 and N GPUs, then 8K tokens per GPU on 1, 2 and N GPUs both ways, one traced forward each.
  N=$(nvidia-smi -L | wc -l)
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --sweep-tokens 8192 --quiet"
  for P in $(printf "2\n$N\n" | sort -un); do
    step 150 env FLASHMOE_DISPATCH_ORDER=cell $B verify --backend cuda --gpus $P --seed $((${SEED:-20261210} + P)) --repeats ${REPEATS:-200}
  done
  step 60 $B bench --backend cuda --dtype bf16 $A
  for P in $(printf "2\n$N\n" | sort -un); do
    step 60 $B bench --backend cuda --gpus $P --dtype bf16 $A --trace
    step 60 env FLASHMOE_DISPATCH_ORDER=cell $B bench --backend cuda --gpus $P --dtype bf16 $A --trace
  done
  exit 0
fi
if [ "$MODE" = realsize ]; then
  # The battery's real-size cases (H = D = 2048) with the kernel the compiler picks (the rebuild
  # with each k tile's wgmma drained where ptxas serialised wgmma), then with the first build kept.
  step 150 $B verify --backend cuda --only "real size" --seed ${SEED:-20261212}
  step 150 env FLASHMOE_WGMMA_REBUILD=0 $B verify --backend cuda --only "real size" --seed ${SEED:-20261212}
  exit 0
fi
if [ "$MODE" = drain ]; then
  # The rebuild of serialised kernels with each k tile's wgmma group drained: the real-size cases
  # of the battery, then gated and plain SiLU layers with and without it (FLASHMOE_WGMMA_REBUILD=0).
  step 150 $B verify --backend cuda --only "real size" --seed ${SEED:-20261213}
  G="--dtype bf16 --activation silu --no-bias --topk 2 --quiet"
  for F in "--expert-form gated --hidden 2048 --ffn 2048 --experts 32 --sweep-tokens 8192" \
           "--expert-form plain --hidden 2048 --ffn 2048 --experts 32 --sweep-tokens 8192" \
           "--expert-form gated --hidden 4096 --ffn 14336 --experts 8 --sweep-tokens 4096"; do
    step 90 $B bench --backend cuda $G $F
    step 90 env FLASHMOE_WGMMA_REBUILD=0 $B bench --backend cuda $G $F
  done
  exit 0
fi
if [ "$MODE" = tf32round ]; then
  # tf32 on wgmma with every operand rounded before it is staged (weights on upload, tokens by the
  # gate, GEMM0's results in its epilogue): the battery's tf32 cases on 1 GPU (a real size among
  # them), on 2 GPUs and on 2 processes with puts, then 4K/8K/16K on 1 and 2 GPUs.
  step 120 $B verify --backend cuda --only tf32 --seed ${SEED:-20261216}
  step 120 $B verify --backend cuda --gpus 2 --only tf32 --seed ${SEED:-20261217}
  step 120 env NVSHMEM_REMOTE_TRANSPORT=none NVSHMEM_BOOTSTRAP_UID_SOCK_IFNAME=lo FLASHMOE_NVSHMEM_TRANSPORT=put \
    $B launch -n 2 --timeout 115 -- verify --launcher env --only tf32 --seed ${SEED:-20261218}
  A="--dtype fp32 --math tf32 --hidden 2048 --ffn 2048 --experts 32 --topk 2 --sweep-tokens 4096 8192 16384 --quiet"
  step 60 $B bench --backend cuda $A
  step 60 $B bench --backend cuda --gpus 2 $A
  exit 0
fi
if [ "$MODE" = weak ]; then
  # Weak scaling T(1 GPU)/T(2 GPUs) at 8K tokens per GPU, bf16: ROUNDS alternating pairs of
  # benches (100 timed forwards each), so that drift of the card shows in both.
  A="--dtype bf16 --hidden 2048 --ffn 2048 --experts 32 --topk 2 --sweep-tokens 8192 --runs 100 --quiet"
  for r in $(seq 1 ${ROUNDS:-4}); do
    step 60 $B bench --backend cuda $A
    step 60 $B bench --backend cuda --gpus 2 $A
  done
  exit 0
fi
if [ "$MODE" = levers ]; then
  # Issue #4's cheap levers, not yet measured with the sixth session's kernels: 2 GPUs at 8K bf16
  # with the dispatcher count at an eighth, a quarter (default) and half of the grid, and with one
  # launch thread per GPU, each next to a 1-GPU run (T(1)/T(2) per pair); then the fault battery
  # with the new defaults (two warpgroups, TMA operands).
  A="--dtype bf16 --hidden 2048 --ffn 2048 --experts 32 --topk 2 --sweep-tokens 8192 --runs 100 --quiet"
  for r in 1 2; do
    for V in FLASHMOE_DISPATCHERS=16 FLASHMOE_DISPATCHERS=33 FLASHMOE_DISPATCHERS=66 FLASHMOE_GROUP_LAUNCH=parallel; do
      echo "## $V"
      step 60 $B bench --backend cuda $A
      step 60 env $V $B bench --backend cuda --gpus 2 $A
    done
  done
  step 90 $B verify --backend cuda --faults
  step 90 $B verify --backend cuda --gpus 2 --faults
  exit 0
fi
if [ "$MODE" = combine ]; then
  # The seventh session's changes: Combine keeps every pick's rows of 8 tokens in flight per
  # thread, and GEMM1's all-TMA k loop drops its per-tile proxy fence and block barrier. The
  # single-GPU battery (every Combine shape: k = 1 to 8, dropped picks), the 2-GPU battery; then
  # one traced forward (task times, the Combine tail) on 1 and 2 GPUs, the old k-loop barrier
  # (FLASHMOE_EXP_KLOOP_SYNC) against the new, alternating, the loads-only loop, and tf32 on 2 GPUs.
  step 240 $B verify --backend cuda --seed ${SEED:-20261401} --repeats ${REPEATS:-10}
  step 120 $B verify --backend cuda --gpus 2 --seed ${SEED:-20261402} --repeats ${REPEATS:-30}
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --sweep-tokens 8192"
  step 60 $B bench --backend cuda --dtype bf16 $A --trace
  step 60 $B bench --backend cuda --gpus 2 --dtype bf16 $A --trace
  for i in 1 2; do
    for D in "" FLASHMOE_EXP_KLOOP_SYNC; do
      echo "## defines '$D'"
      step 60 env FLASHMOE_NVRTC_DEFINES="$D" $B bench --backend cuda --dtype bf16 $A --runs 100
    done
  done
  step 60 env FLASHMOE_NVRTC_DEFINES=FLASHMOE_EXP_SKIP_MMA $B bench --backend cuda --dtype bf16 $A
  for i in 1 2; do
    step 60 $B bench --backend cuda --dtype bf16 $A --runs 100
    step 60 $B bench --backend cuda --gpus 2 --dtype bf16 $A --runs 100
  done
  step 60 $B bench --backend cuda --dtype fp32 --math tf32 $A
  step 60 $B bench --backend cuda --gpus 2 --dtype fp32 --math tf32 $A --trace
  exit 0
fi
if [ "$MODE" = gemm0 ]; then
  # Why GEMM0 tasks take 36 µs and GEMM1 tasks 25 µs (same FLOPs): GEMM0 with its A dense by TMA
  # (FLASHMOE_EXP_GEMM0_DENSE_TMA) and dense by cp.async (FLASHMOE_EXP_GEMM0_DENSE_CPASYNC), both
  # wrong results on purpose, against the gathered rows; then a cheap epilogue (ReLU, no biases).
  # One traced forward each (task times), bf16 and tf32 at 8K on one GPU.
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --sweep-tokens 8192"
  for i in 1 2; do
    for D in "" FLASHMOE_EXP_GEMM0_DENSE_TMA FLASHMOE_EXP_GEMM0_DENSE_CPASYNC; do
      echo "## bf16, defines '$D'"
      step 60 env FLASHMOE_NVRTC_DEFINES="$D" $B bench --backend cuda --dtype bf16 $A --runs 64 $([ $i = 1 ] && echo --trace)
    done
  done
  step 60 $B bench --backend cuda --dtype bf16 $A --activation relu --no-bias --trace
  for D in "" FLASHMOE_EXP_GEMM0_DENSE_TMA; do
    echo "## tf32, defines '$D'"
    step 60 env FLASHMOE_NVRTC_DEFINES="$D" $B bench --backend cuda --dtype fp32 --math tf32 $A --trace
  done
  exit 0
fi
if [ "$MODE" = four ]; then
  # Issue #8 on 4 GPUs (run in the seventh and eighth sessions): the expert-parallel battery and faults
  # on 4, weak scaling T(2)/T(4) at 8K bf16 (alternating pairs), tokens 4K/8K/16K in bf16 and
  # fp32 (tf32 math, and fp32 FMA at 8K), experts 8 to 128 at 16K tokens, each next to
  # torch_moe.py --gpus 4 in the same call. FOUR_NVSHMEM=1: also one process per GPU over NVSHMEM.
  A="--hidden 2048 --ffn 2048 --topk 2 --quiet"
  step 150 $B verify --backend cuda --gpus 4 --seed ${SEED:-20261404} --repeats ${REPEATS:-100}
  step 60 $B verify --backend cuda --gpus 4 --faults
  [ -n "${FOUR_NVSHMEM:-}" ] && step 110 env NVSHMEM_REMOTE_TRANSPORT=none NVSHMEM_BOOTSTRAP_UID_SOCK_IFNAME=lo FLASHMOE_NVSHMEM_TRANSPORT=put \
    $B launch -n 4 --timeout 105 -- verify --launcher env --seed ${SEED:-20261405} --repeats 5
  for i in 1 2; do
    for P in 2 4; do step 60 $B bench --backend cuda --gpus $P --dtype bf16 $A --experts 32 --sweep-tokens 8192 --runs 100; done
  done
  step 60 $B bench --backend cuda --gpus 4 --dtype bf16 $A --experts 32 --sweep-tokens 4096 8192 16384 --trace
  step 60 $B bench --backend cuda --gpus 4 --dtype fp32 --math tf32 $A --experts 32 --sweep-tokens 4096 8192 16384
  step 60 $B bench --backend cuda --gpus 4 --dtype fp32 $A --experts 32 --sweep-tokens 8192
  for E in 8 16 32 64 128; do step 60 $B bench --backend cuda --gpus 4 --dtype bf16 $A --experts $E --sweep-tokens 16384; done
  for S in 4096 8192 16384; do step 90 python3 .device/torch_moe.py --gpus 4 --tokens $S --dtype bf16 --warmup 16 --iters 32; done
  step 90 python3 .device/torch_moe.py --gpus 4 --tokens 8192 --dtype fp32 --tf32 --impl loop --warmup 16 --iters 32
  for E in 8 128; do step 90 python3 .device/torch_moe.py --gpus 4 --tokens 16384 --experts $E --dtype bf16 --warmup 16 --iters 32; done
  exit 0
fi
if [ "$MODE" = tmarows ]; then
  # GEMM0's token rows by TMA, one row per box, from the gate's copy of x (the seventh session's
  # commit eb9a6eb; correct, but 2.4 times slower, and reverted in 694d20a, so today this runs the
  # default path): the real-size cases first (a wrong swizzle fails them at once), the single-GPU
  # battery, the 2-GPU battery, one process per GPU over NVSHMEM; then 1 and 2 GPUs at 8K
  # (traced), 4K/16K, tf32, weak-scaling pairs, and torch_moe.py in the same call.
  step 90 $B verify --backend cuda --only "real size" --seed ${SEED:-20261411}
  step 200 $B verify --backend cuda --seed ${SEED:-20261412} --repeats ${REPEATS:-10}
  step 90 $B verify --backend cuda --gpus 2 --seed ${SEED:-20261413} --repeats ${REPEATS:-30}
  step 100 env NVSHMEM_REMOTE_TRANSPORT=none NVSHMEM_BOOTSTRAP_UID_SOCK_IFNAME=lo FLASHMOE_NVSHMEM_TRANSPORT=put \
    $B launch -n 2 --timeout 95 -- verify --launcher env --seed ${SEED:-20261414} --repeats 5
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet"
  step 40 $B bench --backend cuda --dtype bf16 $A --sweep-tokens 8192 --trace
  step 40 $B bench --backend cuda --gpus 2 --dtype bf16 $A --sweep-tokens 8192 --trace
  step 40 $B bench --backend cuda --dtype bf16 $A --sweep-tokens 4096 16384
  defaults_vs_torch 2
  exit 0
fi
if [ "$MODE" = producer ]; then
  # Prepared in the ninth session, not yet run: a producer warpgroup per Processor block
  # (FLASHMOE_PRODUCER=1; one GPU, 16-bit, plain form). A smoke test on the benchmark's layer, then
  # alternating A/B against the default at 8K bf16 (the first round traced: the k loop's share of a
  # task), then the single-GPU battery with it (the cases it applies to say "a producer warpgroup";
  # BATTERY=0 skips it).
  P=FLASHMOE_PRODUCER
  step 90 env $P=1 $B verify --backend cuda --only "real size" --seed 20262001 --repeats 3
  switch_ab $P
  [ "${BATTERY:-1}" = 1 ] && step 220 env $P=1 $B verify --backend cuda --seed ${SEED:-20262002} --repeats ${REPEATS:-10}
  exit 0
fi
if [ "$MODE" = epilogue ]; then
  # Tenth session: the producer warpgroup with its gathered rows coalesced (eight threads per row)
  # and the epilogue stored straight from the fragments (FLASHMOE_EPILOGUE_DIRECT), each against
  # the default: real-size smoke tests, two alternating rounds at 8K bf16 (the first traced),
  # 4K / 16K, then the single-GPU battery with both (the producer where it applies, the direct
  # epilogue on every 16-bit wgmma layer). The direct epilogue was 15–19 % slower and was removed
  # after this call: run it at 9517750 (BENCHMARKS.md, tenth session).
  D=FLASHMOE_EPILOGUE_DIRECT
  step 90 env FLASHMOE_PRODUCER=1 FLASHMOE_NVRTC_DEFINES=$D $B verify --backend cuda --only "real size" --seed 20262101 --repeats 3
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --runs 100"
  for i in 1 2; do
    for V in "0 ''" "0 $D" "1 ''" "1 $D"; do
      set -- $V; echo "## producer $1, defines $2"
      step 40 env FLASHMOE_PRODUCER=$1 FLASHMOE_NVRTC_DEFINES=$(eval echo $2) $B bench --backend cuda --dtype bf16 $A --sweep-tokens 8192 $([ $i = 1 ] && echo --trace)
    done
  done
  for V in "0 ''" "0 $D" "1 ''" "1 $D"; do
    set -- $V; echo "## producer $1, defines $2"
    step 60 env FLASHMOE_PRODUCER=$1 FLASHMOE_NVRTC_DEFINES=$(eval echo $2) $B bench --backend cuda --dtype bf16 $A --sweep-tokens 4096 16384
  done
  step 220 env FLASHMOE_PRODUCER=1 FLASHMOE_NVRTC_DEFINES=$D $B verify --backend cuda --seed ${SEED:-20262102} --repeats ${REPEATS:-5}
  exit 0
fi
if [ "$MODE" = session10 ]; then
  # Tenth session, one GPU: the producer warpgroup (now the default where it applies) against
  # FLASHMOE_PRODUCER=0 in two alternating rounds at 8K bf16 (the first traced: when the last block
  # starts, when the first finishes its gate tiles), the gate's L2 prefetch and its loads skipped
  # (timing only), 4K / 16K, torch_moe.py in the same call, then the single-GPU battery. The
  # prefetch (FLASHMOE_GATE_PREFETCH) was no help to the gate of then (bound by shared memory).
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --runs 100"
  for i in 1 2; do
    for E in 1 0; do
      step 40 env FLASHMOE_PRODUCER=$E $B bench --backend cuda --dtype bf16 $A --sweep-tokens 8192 $([ $i = 1 ] && echo --trace)
    done
  done
  for D in FLASHMOE_GATE_PREFETCH FLASHMOE_EXP_GATE_SKIP_LOADS; do
    echo "## defines $D"
    step 40 env FLASHMOE_NVRTC_DEFINES=$D $B bench --backend cuda --dtype bf16 $A --sweep-tokens 8192 --trace
  done
  for E in 1 0; do step 60 env FLASHMOE_PRODUCER=$E $B bench --backend cuda --dtype bf16 $A --sweep-tokens 4096 16384; done
  torch_at_4k_8k_16k
  step 220 $B verify --backend cuda --seed ${SEED:-20262202} --repeats ${REPEATS:-5}
  exit 0
fi
if [ "$MODE" = gatesplit ]; then
  # Tenth session, 2 GPUs: the gate with each warp on a quarter of H (the default since 4a…): traced
  # forwards on 1 and 2 GPUs, both batteries, 4K / 8K / 16K in bf16 on 1 and 2 GPUs and tf32 on 2,
  # torch_moe.py --gpus 2 in the same call.
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet"
  step 40 $B bench --backend cuda --dtype bf16 $A --sweep-tokens 8192 --runs 100 --trace
  step 40 $B bench --backend cuda --gpus 2 --dtype bf16 $A --sweep-tokens 8192 --runs 100 --trace
  step 200 $B verify --backend cuda --seed ${SEED:-20262302} --repeats 3
  step 200 $B verify --backend cuda --gpus 2 --seed ${SEED:-20262352} --repeats 3
  step 60 $B bench --backend cuda --dtype bf16 $A --sweep-tokens 4096 16384 --runs 100
  step 60 $B bench --backend cuda --gpus 2 --dtype bf16 $A --sweep-tokens 4096 8192 16384 --runs 100
  step 60 $B bench --backend cuda --gpus 2 --dtype fp32 --math tf32 $A --sweep-tokens 8192
  step 60 python3 .device/torch_moe.py --gpus 2 --tokens 8192 --dtype bf16 --warmup 16 --iters 32
  exit 0
fi
if [ "$MODE" = gateprefetch ]; then
  # Tenth session, one GPU: with a warp per quarter of H the gate waits on its loads, so the L2
  # prefetch of each tile's token rows (FLASHMOE_GATE_PREFETCH) again, against the default in two
  # alternating traced rounds; the gate without loads (timing); then the battery with the prefetch.
  # No help again (BENCHMARKS.md, tenth session, call 6): removed after this call, run it at 9c0fdb0.
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --runs 100 --sweep-tokens 8192 --trace"
  for i in 1 2; do
    for D in "" FLASHMOE_GATE_PREFETCH; do
      echo "## defines '$D'"
      step 40 env FLASHMOE_NVRTC_DEFINES=$D $B bench --backend cuda --dtype bf16 $A
    done
  done
  echo "## defines FLASHMOE_EXP_GATE_SKIP_LOADS"
  step 40 env FLASHMOE_NVRTC_DEFINES=FLASHMOE_EXP_GATE_SKIP_LOADS $B bench --backend cuda --dtype bf16 $A
  step 60 env FLASHMOE_NVRTC_DEFINES=FLASHMOE_GATE_PREFETCH $B bench --backend cuda --dtype bf16 ${A% --sweep-tokens*} --sweep-tokens 4096 16384
  step 200 env FLASHMOE_NVRTC_DEFINES=FLASHMOE_GATE_PREFETCH $B verify --backend cuda --seed ${SEED:-20262402} --repeats 3
  exit 0
fi
if [ "$MODE" = signals ]; then
  # Tenth session, one GPU, short (little device time was left): the producer's thread 0 signalling
  # finished tasks (FLASHMOE_PRODUCER_SIGNALS) and the bias loaded before the k loop
  # (FLASHMOE_BIAS_EARLY), each checked on the benchmark's layer and the small multi-size case, then
  # timed against the default at 8K (traced), two rounds. The signals were correct and 10 % slower
  # (tasks signalled late) and were removed after this call: run it at 8c0eab2.
  for D in FLASHMOE_PRODUCER_SIGNALS FLASHMOE_BIAS_EARLY; do
    for C in "E = 32, biases" "tokens 1, 7"; do
      step 60 env FLASHMOE_NVRTC_DEFINES=$D $B verify --backend cuda --only "$C" --seed ${SEED:-20262502} --repeats 3
    done
  done
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --runs 100 --sweep-tokens 8192"
  for i in 1 2; do
    for D in "" FLASHMOE_PRODUCER_SIGNALS FLASHMOE_BIAS_EARLY; do
      echo "## defines '$D'"
      step 30 env FLASHMOE_NVRTC_DEFINES=$D $B bench --backend cuda --dtype bf16 $A $([ $i = 1 ] && echo --trace)
    done
  done
  exit 0
fi
if [ "$MODE" = pingpong ]; then
  # Tenth and eleventh sessions: ping-pong on top of the producer warpgroup (FLASHMOE_PINGPONG=1):
  # each computing warpgroup takes its own column half of every task, so that one's epilogue
  # overlaps the other's k loop. Correct once a turn ordered the halves, 13 % slower (BENCHMARKS.md,
  # eleventh session); removed after that call: run it at b35f3aa. Smoke tests on the benchmark's
  # layer and the small multi-size case, alternating A/B at 8K bf16 (the first round traced: the
  # trace counts half-tasks), 4K / 16K, then the single-GPU battery with it.
  P=FLASHMOE_PINGPONG
  for C in "E = 32, biases" "tokens 1, 7"; do
    step 90 env $P=1 $B verify --backend cuda --only "$C" --seed ${SEED:-20262602} --repeats 3
  done
  switch_ab $P
  [ "${BATTERY:-1}" = 1 ] && step 220 env $P=1 $B verify --backend cuda --seed ${SEED:-20262603} --repeats ${REPEATS:-5}
  exit 0
fi
if [ "$MODE" = gatemma ]; then
  # Eleventh session, one GPU: the gate GEMM on the tensor cores (16-bit storage). The battery, the
  # benchmark's layer at 8K traced twice, 4K / 16K, and E = 8, 128 at 16K (the gate's passes).
  step 240 $B verify --backend cuda --seed ${SEED:-20262801} --repeats ${REPEATS:-5}
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --runs 100"
  for i in 1 2; do step 40 $B bench --backend cuda --dtype bf16 $A --sweep-tokens 8192 --trace; done
  step 60 $B bench --backend cuda --dtype bf16 $A --sweep-tokens 4096 16384
  for E in 8 128; do step 60 $B bench --backend cuda --dtype bf16 ${A/--experts 32/--experts $E} --sweep-tokens 16384; done
  exit 0
fi
if [ "$MODE" = session11 ]; then
  # Eleventh session, 2 GPUs, one call: the single-GPU and 2-GPU batteries with the tensor-core
  # gate, the producer with expert parallelism (FLASHMOE_PRODUCER=all) checked and timed against
  # the default at 8K per GPU, the defaults at 4K / 8K / 16K on 1 and 2 GPUs (tf32 at 8K), and
  # torch_moe.py on 1 and 2 GPUs in the same call.
  step 200 $B verify --backend cuda --seed ${SEED:-20262811} --repeats 2
  step 120 $B verify --backend cuda --gpus 2 --seed ${SEED:-20262812} --repeats 3
  step 120 env FLASHMOE_PRODUCER=all $B verify --backend cuda --gpus 2 --only "E = 32" --seed 20262813 --repeats 3
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --runs 100"
  for i in 1 2; do
    for E in 1 all; do
      step 60 env FLASHMOE_PRODUCER=$E $B bench --backend cuda --gpus 2 --dtype bf16 $A --sweep-tokens 8192 $([ $i = 1 ] && echo --trace)
    done
  done
  step 60 $B bench --backend cuda --dtype bf16 $A --sweep-tokens 4096 8192 16384
  step 60 $B bench --backend cuda --gpus 2 --dtype bf16 $A --sweep-tokens 4096 16384
  step 60 $B bench --backend cuda --gpus 2 --dtype fp32 --math tf32 $A --sweep-tokens 8192
  for T in 4096 8192 16384; do step 60 python3 .device/torch_moe.py --gpus 1 --tokens $T --dtype bf16 --warmup 16 --iters 32; done
  step 60 python3 .device/torch_moe.py --gpus 2 --tokens 8192 --dtype bf16 --warmup 16 --iters 32
  exit 0
fi
if [ "$MODE" = handout ]; then
  # Eleventh session, 2 GPUs: the capacity scan's loads ahead (FLASHMOE_SCAN_PREFETCH) and the
  # Scheduler's hand-out with its release store alone (FLASHMOE_SCHED_RELEASE_ONLY): both batteries
  # with both, then each against the default at 8K on one GPU (two rounds, the first traced) and
  # both against the default on two. Neither changed the timeline or the forward (BENCHMARKS.md,
  # eleventh session, call 5); both removed after the call: run it at d8ba8e8.
  BOTH="FLASHMOE_SCAN_PREFETCH FLASHMOE_SCHED_RELEASE_ONLY"
  step 150 env FLASHMOE_NVRTC_DEFINES="$BOTH" $B verify --backend cuda --seed ${SEED:-20262821} --repeats 2
  step 90 env FLASHMOE_NVRTC_DEFINES="$BOTH" $B verify --backend cuda --gpus 2 --seed ${SEED:-20262822} --repeats 3
  defines_rounds FLASHMOE_SCAN_PREFETCH FLASHMOE_SCHED_RELEASE_ONLY "$BOTH"
  exit 0
fi
if [ "$MODE" = signal ]; then
  # Twelfth session, calls 0-1 (2 GPUs): what a task costs between its stores
  # and the next task's k loop. FLASHMOE_SIGNAL_RELEASE signals a finished task with one
  # acquire-release fence and relaxed writes (the default: __threadfence, then st.release);
  # FLASHMOE_TASK_HANDOVER gives the math warpgroups the task the producer fetched (an mbarrier
  # per slot) instead of their own mailbox read; FLASHMOE_SIGNALLER (with the hand-over) moves the
  # signal to a thread of the producer warpgroup. Both batteries with all three, then the builds
  # against the default at 8K on one GPU (two rounds, the first traced), all three on two GPUs.
  # The release fence won 1-2 % and is the default since; the hand-over gained nothing and the
  # signaller lost 7 % (two filling warps lengthen GEMM0's k loop): both removed. Run it at 614d57f.
  BOTH="FLASHMOE_SIGNAL_RELEASE FLASHMOE_TASK_HANDOVER"
  ALL="$BOTH FLASHMOE_SIGNALLER"
  # More than one call's 10 minutes in all: PART=verify (the checks), then PART=time.
  if [ "${PART:-verify}" = verify ]; then
    step 260 env FLASHMOE_NVRTC_DEFINES="$ALL" $B verify --backend cuda --seed ${SEED:-20262901} --repeats 3
    step 120 env FLASHMOE_NVRTC_DEFINES="$ALL" $B verify --backend cuda --gpus 2 --seed ${SEED:-20262902} --repeats 3
    # Two GPUs run the producer only with FLASHMOE_PRODUCER=all: the benchmark's layer with all three.
    step 90 env FLASHMOE_PRODUCER=all FLASHMOE_NVRTC_DEFINES="$ALL" $B verify --backend cuda --gpus 2 --only "E = 32" --seed 20262903 --repeats 3
    exit 0
  fi
  defines_rounds FLASHMOE_SIGNAL_RELEASE FLASHMOE_TASK_HANDOVER "$BOTH" "$ALL"
  for D in "" "$ALL"; do
    echo "## producer all, defines '$D'"
    step 40 env FLASHMOE_PRODUCER=all FLASHMOE_NVRTC_DEFINES="$D" $B bench --backend cuda --gpus 2 --dtype bf16 \
      --hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --runs 100 --sweep-tokens 8192
  done
  exit 0
fi
if [ "$MODE" = launch ]; then
  # Twelfth session (one GPU): the release-fence signal (now the default) through the battery, then
  # what lies between the CUDA events and the kernel's own span (≈ 50 µs at 8K in the traces):
  # forwards enqueued back to back against forwards waited for one by one, the host's launch call,
  # cooperative and plain launches (FLASHMOE_LAUNCH=plain, removed after the call: no difference;
  # the host's launch call takes 5-6 µs); torch_moe.py at the same sizes for the ratio.
  step 200 $B verify --backend cuda --seed ${SEED:-20262911} --repeats 2
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --runs 100 --pipelined"
  step 60 $B bench --backend cuda --dtype bf16 $A --sweep-tokens 4096 8192 16384 --trace
  step 60 env FLASHMOE_LAUNCH=plain $B bench --backend cuda --dtype bf16 $A --sweep-tokens 8192
  step 60 $B bench --backend cuda --dtype bf16 $A --sweep-tokens 8192
  step 120 python3 .device/torch_moe.py --tokens 8192 --dtype bf16 --impl grouped
  exit 0
fi
if [ "$MODE" = between ]; then
  # Twelfth session: where a Processor's time between tasks goes (the trace's mailbox reads, the
  # computing threads' and the producer's), at 4K / 8K / 16K on one GPU and 8K on two; then the
  # forward's duration by ncu (no cache flush, no clock control) against its CUDA events, for the
  # ≈ 40 µs between the events and the kernel's traced span.
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --runs 100"
  step 60 $B bench --backend cuda --dtype bf16 $A --sweep-tokens 4096 8192 16384 --trace
  step 60 $B bench --backend cuda --dtype bf16 $A --sweep-tokens 8192 --trace --gpus 2
  step 200 ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum,sm__cycles_active.avg.pct_of_peak_sustained_elapsed \
    --kernel-name flashmoe_forward --launch-skip 10 --launch-count 5 $B bench --backend cuda --dtype bf16 $A --tokens 8192 --warmup 12 --runs 5
  exit 0
fi
if [ "$MODE" = mailbox ]; then
  # Twelfth session (one GPU): the Processors wait ≈ 2 µs per task for their next one, their
  # producers ≈ 4.5 (mode between). Deeper mailboxes (FLASHMOE_MAILBOX_DEPTH: tasks handed out
  # further ahead) against the default depth 2 at 8K, two rounds, the first traced; 4K and 16K.
  defines_rounds FLASHMOE_MAILBOX_DEPTH=3 FLASHMOE_MAILBOX_DEPTH=4
  for D in "" FLASHMOE_MAILBOX_DEPTH=3; do
    echo "## defines '$D'"
    step 40 env FLASHMOE_NVRTC_DEFINES="$D" $B bench --backend cuda --dtype bf16 --hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --runs 100 --sweep-tokens 4096 16384
  done
  exit 0
fi
if [ "$MODE" = sched ]; then
  # Twelfth session, call 6 (one GPU): the Scheduler's sweep with one fence (FLASHMOE_SCHED_BATCH:
  # every finished counter and row-tile count loaded at once, every task body, one fence, every
  # tag): the battery with it, then against the default at 8K (two rounds, the first traced), with
  # a mailbox of 3 too; 4K and 16K. Correct (27/27 before the step's time ran out) and no faster
  # (0.599-0.601 against 0.572-0.588 ms; the mailbox waits unchanged): removed after the call,
  # run it at 66b8125.
  step 200 env FLASHMOE_NVRTC_DEFINES=FLASHMOE_SCHED_BATCH $B verify --backend cuda --seed ${SEED:-20262921} --repeats 2
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --runs 100"
  for i in 1 2; do
    for D in "" FLASHMOE_SCHED_BATCH "FLASHMOE_SCHED_BATCH FLASHMOE_MAILBOX_DEPTH=3"; do
      echo "## defines '$D'"
      step 40 env FLASHMOE_NVRTC_DEFINES="$D" $B bench --backend cuda --dtype bf16 $A --sweep-tokens 8192 $([ $i = 1 ] && echo --trace)
    done
  done
  for D in "" FLASHMOE_SCHED_BATCH; do
    echo "## defines '$D'"
    step 40 env FLASHMOE_NVRTC_DEFINES="$D" $B bench --backend cuda --dtype bf16 $A --sweep-tokens 4096 16384
  done
  exit 0
fi
if [ "$MODE" = atomic ]; then
  # Thirteenth session, call 1 (one GPU): Combine done by GEMM1's epilogue as red.add of w · y into
  # the zeroed output (FLASHMOE_COMBINE_ATOMIC; k <= 2, one GPU, the producer warpgroup). The battery
  # with it, then against the default at 8K (two rounds, the first traced), 4K and 16K, and
  # torch_moe.py at 8K for the ratio. (The define became the default: run this at f5e0fec.)
  battery_and_rounds ${SEED:-20261129} FLASHMOE_COMBINE_ATOMIC FLASHMOE_COMBINE_ATOMIC
  exit 0
fi
if [ "$MODE" = session13 ]; then
  # Thirteenth session, call 3 (one GPU): the atomic combine as the default. The battery, then the
  # default against FLASHMOE_COMBINE_TASKS at 8K (two rounds, the first traced: the trace now splits
  # a GEMM task's time outside its k loop), 4K / 16K, experts 8 / 32 / 128 at 16K, torch_moe.py.
  step 220 $B verify --backend cuda --seed ${SEED:-20261329} --repeats 2
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --runs 100"
  for i in 1 2; do
    for D in "" FLASHMOE_COMBINE_TASKS; do
      echo "## defines '$D'"
      step 40 env FLASHMOE_NVRTC_DEFINES="$D" $B bench --backend cuda --dtype bf16 $A --sweep-tokens 8192 $([ $i = 1 ] && echo --trace)
    done
  done
  step 50 $B bench --backend cuda --dtype bf16 $A --sweep-tokens 4096 16384
  experts_at_16k
  step 60 python3 .device/torch_moe.py --gpus 1 --tokens 8192 --dtype bf16 --warmup 16 --iters 32
  exit 0
fi
if [ "$MODE" = session13b ]; then
  # Thirteenth session (two GPUs; prepared, not run: no two-GPU machine was lent when asked for):
  # the expert-parallel battery after Params grew (rowWeight) and the trace's words per Processor
  # (14); 2 GPUs at 8K (the first traced), experts 8 / 32 / 128 at 16K on one GPU, torch_moe.py on
  # 2 GPUs.
  step 120 $B verify --backend cuda --gpus 2 --seed ${SEED:-20261331} --repeats 30
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --runs 100"
  step 60 $B bench --backend cuda --gpus 2 --dtype bf16 $A --sweep-tokens 8192 --trace
  step 60 $B bench --backend cuda --gpus 2 --dtype bf16 $A --sweep-tokens 8192
  experts_at_16k
  step 60 python3 .device/torch_moe.py --gpus 2 --tokens 8192 --dtype bf16 --warmup 16 --iters 32
  exit 0
fi
if [ "$MODE" = session13c ]; then
  # Thirteenth session, call 4 (one GPU; no two-GPU machine was lent): experts 8 / 32 / 128 at 16K
  # (a second round of call 3's, E = 128 traced), then the early bias and three mailbox slots
  # against the default at 8K now that no Combine phase follows GEMM1 (two rounds).
  experts_at_16k 128
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --runs 100 --sweep-tokens 8192"
  for i in 1 2; do
    for D in "" FLASHMOE_BIAS_EARLY FLASHMOE_MAILBOX_DEPTH=3; do
      echo "## defines '$D'"
      step 40 env FLASHMOE_NVRTC_DEFINES="$D" $B bench --backend cuda --dtype bf16 $A
    done
  done
  exit 0
fi
if [ "$MODE" = gatepass ]; then
  # Thirteenth session, call 5 (one GPU): the tensor-core gate stages all experts' Wg chunks with
  # each x chunk (one pass up to 128 experts; at 16K and E = 128 four passes of 32 took 160 µs). The
  # battery, then experts 8 / 32 / 128 at 16K in two rounds (E = 128 traced in the first), 8K.
  step 220 $B verify --backend cuda --seed ${SEED:-20261429} --repeats 2
  experts_at_16k 128
  experts_at_16k
  step 40 $B bench --backend cuda --dtype bf16 --hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --runs 100 --sweep-tokens 8192
  exit 0
fi
if [ "$MODE" = atomic3 ]; then
  # Thirteenth session, call 6 (one GPU): the atomic combine also on two computing warpgroups
  # without a producer (the gated forms, H = D = 2048 bf16 gated SiLU among them; the output zeroed
  # after the scan). The battery, then the gated SiLU layer at 8K against FLASHMOE_COMBINE_TASKS,
  # and the plain layer at 8K.
  step 220 $B verify --backend cuda --seed ${SEED:-20261529} --repeats 2
  G="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --runs 100 --sweep-tokens 8192"
  for D in "" FLASHMOE_COMBINE_TASKS; do
    echo "## defines '$D'"
    step 40 env FLASHMOE_NVRTC_DEFINES="$D" $B bench --backend cuda --dtype bf16 $G --expert-form gated --activation silu --no-bias
  done
  step 40 $B bench --backend cuda --dtype bf16 $G
  exit 0
fi
if [ "$MODE" = final13 ]; then
  # Thirteenth session, call 7 (one GPU): the session's last build (the atomic combine only with a
  # producer warpgroup by default) through the battery, then 8K and 4K / 16K once.
  step 220 $B verify --backend cuda --seed ${SEED:-20261629} --repeats 2
  step 50 $B bench --backend cuda --dtype bf16 --hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --runs 100 --sweep-tokens 8192 4096 16384
  exit 0
fi
if [ "$MODE" = apart ]; then
  # Fourteenth session, call 6: the computing warpgroups apart (FLASHMOE_WG_APART: each its own
  # epilogue, barrier and staging region; the second to finish signals the task): the battery
  # with it, three rounds at 8K against the default (the first traced), 4K / 16K.
  step 220 env FLASHMOE_NVRTC_DEFINES=FLASHMOE_WG_APART $B verify --backend cuda --seed ${SEED:-20261805} --repeats 2
  rounds_at_8k 3 "" FLASHMOE_WG_APART
  at_4k_16k FLASHMOE_WG_APART
  exit 0
fi
if [ "$MODE" = s15h ]; then
  # Fifteenth session, call 9: the computing warpgroups' two loops made one (math_loop); the default
  # (apart) is SASS-identical, the shared-epilogue builds are not: FLASHMOE_WG_TOGETHER against the
  # CPU on the quick cases, k = 3 and 4 (Combine tasks) and the benchmark's layer; the bulk combine
  # on the benchmark's layer.
  D=FLASHMOE_WG_TOGETHER
  step 60 env FLASHMOE_NVRTC_DEFINES=$D $B verify --backend cuda --seed ${SEED:-20262401} --repeats 2 --quick
  for C in "k = 3" "k = 4" "the benchmark's layer"; do
    step 60 env FLASHMOE_NVRTC_DEFINES=$D $B verify --backend cuda --seed ${SEED:-20262401} --repeats 2 --only "$C"
  done
  step 60 env FLASHMOE_NVRTC_DEFINES=FLASHMOE_COMBINE_BULK $B verify --backend cuda --seed ${SEED:-20262402} --repeats 2 --only "the benchmark's layer"
  exit 0
fi
if [ "$MODE" = s15g ]; then
  # Fifteenth session, last call: the built default (the output zeroed before the first task;
  # SASS-identical to call 5's FLASHMOE_ZERO_LATE build, whose battery passed): the quick cases
  # and the benchmark's layer against the CPU, 8K traced and twice untraced, 16K.
  step 120 $B verify --backend cuda --seed ${SEED:-20262301} --repeats 2 --quick
  step 120 $B verify --backend cuda --seed ${SEED:-20262302} --repeats 2 --only "the benchmark's layer"
  rounds_at_8k 3 ""
  at_4k_16k ""
  exit 0
fi
if [ "$MODE" = s15f ]; then
  # Fifteenth session, call 7: experts 8 / 32 / 128 at 16K with FLASHMOE_ZERO_LATE and without,
  # alternating, twice (call 6 gave a spread of 29 % with it: E = 8 at 0.963 ms).
  for i in 1 2; do
    FLASHMOE_NVRTC_DEFINES=FLASHMOE_ZERO_LATE experts_at_16k
    FLASHMOE_NVRTC_DEFINES= experts_at_16k
  done
  exit 0
fi
if [ "$MODE" = s15e ]; then
  # Fifteenth session, call 6: FLASHMOE_ZERO_LATE again (call 5: faster in every pair), three more
  # rounds at 8K, 4K / 16K twice each way, experts 8 / 32 / 128 at 16K with it.
  rounds_at_8k 3 FLASHMOE_ZERO_LATE ""
  at_4k_16k FLASHMOE_ZERO_LATE "" FLASHMOE_ZERO_LATE ""
  FLASHMOE_NVRTC_DEFINES=FLASHMOE_ZERO_LATE experts_at_16k
  exit 0
fi
if [ "$MODE" = s15d ]; then
  # Fifteenth session, call 5: the output zeroed by the producer warpgroups after the slots, before
  # their first task (FLASHMOE_ZERO_LATE; the Scheduler holds GEMM1 back until every share is
  # counted): its battery, three rounds at 8K against the default (the first traced), 4K / 16K.
  # (Since 19fa1c8 that is the default and FLASHMOE_ZERO_LATE names nothing: s15d, s15e and s15f
  # now compare the default with itself; FLASHMOE_ZERO_EARLY is the old zeroing.)
  step 330 env FLASHMOE_NVRTC_DEFINES=FLASHMOE_ZERO_LATE $B verify --backend cuda --seed ${SEED:-20262201} --repeats 2
  rounds_at_8k 3 "" FLASHMOE_ZERO_LATE
  at_4k_16k "" FLASHMOE_ZERO_LATE
  exit 0
fi
if [ "$MODE" = s15c ]; then
  # Fifteenth session, call 4: what the output's zeroing costs the start of the forward
  # (FLASHMOE_EXP_SKIP_ZERO: wrong results on purpose), two rounds at 8K (the first traced);
  # tf32 at 8K on one GPU; the default at 4K / 16K.
  rounds_at_8k 2 "" FLASHMOE_EXP_SKIP_ZERO
  step 60 $B bench --backend cuda --dtype fp32 --math tf32 --hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --runs 100 --sweep-tokens 8192
  at_4k_16k ""
  exit 0
fi
if [ "$MODE" = s15b ]; then
  # Fifteenth session, call 3: the new default (the warpgroups apart; the capacity scan's and the
  # slots' loads batched). On two GPUs first the expert-parallel battery, 8K and torch_moe.py.
  # Then on one GPU the battery, three rounds at 8K against FLASHMOE_WG_TOGETHER (the first traced:
  # the scan's phase), 4K / 16K both ways, experts 8 / 32 / 128 at 16K, torch_moe.py at 4K / 8K / 16K.
  if [ "$(nvidia-smi -L | wc -l)" -ge 2 ]; then
    step 120 $B verify --backend cuda --gpus 2 --seed ${SEED:-20262101} --repeats 30
    step 60 $B bench --backend cuda --gpus 2 --dtype bf16 --hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --runs 100 --sweep-tokens 8192 --trace
    step 60 python3 .device/torch_moe.py --gpus 2 --tokens 8192 --dtype bf16 --warmup 16 --iters 32
  fi
  step 220 $B verify --backend cuda --seed ${SEED:-20262102} --repeats 2
  rounds_at_8k 3 "" FLASHMOE_WG_TOGETHER
  at_4k_16k "" FLASHMOE_WG_TOGETHER
  experts_at_16k
  torch_at_4k_8k_16k
  exit 0
fi
if [ "$MODE" = s15a ]; then
  # Fifteenth session, call 2: the warpgroups-apart battery with the Combine branch left out of
  # the k <= 2 kernels (call 1: its Combine fix spilled 8-40 bytes in three k = 2 layers); three
  # rounds at 8K against the default (the first traced), 4K / 16K both ways, experts 8 / 32 / 128 at
  # 16K with it, torch_moe.py at 8K. On two GPUs first the expert-parallel battery.
  if [ "$(nvidia-smi -L | wc -l)" -ge 2 ]; then
    step 120 $B verify --backend cuda --gpus 2 --seed ${SEED:-20262001} --repeats 30
  fi
  step 220 env FLASHMOE_NVRTC_DEFINES=FLASHMOE_WG_APART $B verify --backend cuda --seed ${SEED:-20262002} --repeats 2
  rounds_at_8k 3 "" FLASHMOE_WG_APART
  at_4k_16k "" FLASHMOE_WG_APART
  FLASHMOE_NVRTC_DEFINES=FLASHMOE_WG_APART experts_at_16k
  step 60 python3 .device/torch_moe.py --gpus 1 --tokens 8192 --dtype bf16 --warmup 16 --iters 32
  exit 0
fi
if [ "$MODE" = next14 ]; then
  # Prepared in the fourteenth session for the next: where two GPUs are there, the expert-parallel
  # battery first (not run since the thirteenth session's Params change and the fourteenth's
  # Scheduler changes), 2 GPUs at 8K (the first traced) and torch_moe.py --gpus 2; then on one GPU
  # the battery with the warpgroups apart (its Combine-task fix after call 6 not yet run), three
  # rounds at 8K against the default, 4K / 16K both ways, experts 8 / 32 / 128 at 16K with it, and
  # torch_moe.py at 4K / 8K / 16K: all a decision to make it the default needs.
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --runs 100 --sweep-tokens 8192"
  if [ "$(nvidia-smi -L | wc -l)" -ge 2 ]; then
    step 120 $B verify --backend cuda --gpus 2 --seed ${SEED:-20261901} --repeats 30
    step 60 $B bench --backend cuda --gpus 2 --dtype bf16 $A --trace
    step 60 $B bench --backend cuda --gpus 2 --dtype bf16 $A
    step 60 python3 .device/torch_moe.py --gpus 2 --tokens 8192 --dtype bf16 --warmup 16 --iters 32
  fi
  step 220 env FLASHMOE_NVRTC_DEFINES=FLASHMOE_WG_APART $B verify --backend cuda --seed ${SEED:-20261902} --repeats 2
  rounds_at_8k 3 "" FLASHMOE_WG_APART
  at_4k_16k "" FLASHMOE_WG_APART
  FLASHMOE_NVRTC_DEFINES=FLASHMOE_WG_APART experts_at_16k
  torch_at_4k_8k_16k
  exit 0
fi
if [ "$MODE" = final14 ]; then
  # Fourteenth session, last call: the battery on the session's last build; the Scheduler's window
  # read at once against one acquire after another (FLASHMOE_SCHED_ACQUIRE_EACH), 8K in three
  # rounds (the first traced); 4K / 16K; experts 8 / 32 / 128 at 16K; torch_moe.py at 4K, 8K, 16K.
  step 220 $B verify --backend cuda --seed ${SEED:-20261804} --repeats 2
  rounds_at_8k 3 "" FLASHMOE_SCHED_ACQUIRE_EACH
  at_4k_16k ""
  experts_at_16k
  torch_at_4k_8k_16k
  exit 0
fi
if [ "$MODE" = s14c ]; then
  # Fourteenth session, call 4: the OS block hands tasks out without waiting for the slots
  # (default now; FLASHMOE_OS_AFTER_SLOTS restores the wait) and GEMM1's atomic combine by bulk
  # reductions (FLASHMOE_COMBINE_BULK): the battery with both, 8K rounds (the first traced) and
  # 4K / 16K.
  step 220 env FLASHMOE_NVRTC_DEFINES=FLASHMOE_COMBINE_BULK $B verify --backend cuda --seed ${SEED:-20261803} --repeats 2
  rounds_at_8k 3 "" FLASHMOE_OS_AFTER_SLOTS FLASHMOE_COMBINE_BULK
  at_4k_16k "" FLASHMOE_COMBINE_BULK
  step 60 python3 .device/torch_moe.py --gpus 1 --tokens 8192 --dtype bf16 --warmup 16 --iters 32
  exit 0
fi
if [ "$MODE" = s14b ]; then
  # Fourteenth session, call 3: the epilogues without staging (results from the accumulators by
  # quad shuffles; removed after it: run at 4a116c2): the battery with both, then 8K rounds (the
  # first traced) and 4K / 16K against the default.
  BOTH="FLASHMOE_COMBINE_REGISTERS FLASHMOE_GEMM0_REGISTERS"
  step 220 env FLASHMOE_NVRTC_DEFINES="$BOTH" $B verify --backend cuda --seed ${SEED:-20261802} --repeats 2
  rounds_at_8k 3 "" FLASHMOE_COMBINE_REGISTERS "$BOTH"
  at_4k_16k "" "$BOTH"
  step 60 python3 .device/torch_moe.py --gpus 1 --tokens 8192 --dtype bf16 --warmup 16 --iters 32
  exit 0
fi
if [ "$MODE" = s14a ]; then
  # Fourteenth session, call 2: the Scheduler hands the last round of GEMM0 tasks out before GEMM1
  # (default now) against GEMM1 always first (FLASHMOE_GEMM0_LAST_ROUNDS=0), two rounds, and deeper
  # mailboxes on top; the battery on the new default first; 4K / 16K both ways; the expert spread.
  step 220 $B verify --backend cuda --seed ${SEED:-20261801} --repeats 2
  rounds_at_8k 2 "" FLASHMOE_GEMM0_LAST_ROUNDS=0 FLASHMOE_GEMM0_LAST_ROUNDS=2 FLASHMOE_MAILBOX_DEPTH=3
  at_4k_16k "" FLASHMOE_GEMM0_LAST_ROUNDS=0 FLASHMOE_MAILBOX_DEPTH=3
  experts_at_16k
  step 60 python3 .device/torch_moe.py --gpus 1 --tokens 8192 --dtype bf16 --warmup 16 --iters 32
  exit 0
fi
if [ "$MODE" = next13 ]; then
  # Prepared in the thirteenth session for the next (not run): the trace's split of the epilogue
  # (staging against storing, new at the end of the session) at 8K on one GPU, traced twice; then,
  # where two GPUs are there, the expert-parallel battery and 2 GPUs at 8K (the first traced).
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --runs 100 --sweep-tokens 8192"
  step 220 $B verify --backend cuda --seed ${SEED:-20261729} --repeats 2
  step 40 $B bench --backend cuda --dtype bf16 $A --trace
  step 40 $B bench --backend cuda --dtype bf16 $A --trace
  if [ "$(nvidia-smi -L | wc -l)" -ge 2 ]; then
    step 120 $B verify --backend cuda --gpus 2 --seed ${SEED:-20261730} --repeats 30
    step 60 $B bench --backend cuda --gpus 2 --dtype bf16 $A --trace
    step 60 $B bench --backend cuda --gpus 2 --dtype bf16 $A
    step 60 python3 .device/torch_moe.py --gpus 2 --tokens 8192 --dtype bf16 --warmup 16 --iters 32
  fi
  step 60 python3 .device/torch_moe.py --gpus 1 --tokens 8192 --dtype bf16 --warmup 16 --iters 32
  exit 0
fi
if [ "$MODE" = atomic2 ]; then
  # Thirteenth session, call 2 (one GPU): the atomic combine with the output zeroed by the producer
  # warpgroups during the gate (call 1 zeroed it after the scan: the first task 13 µs later); the
  # battery with it, then three-way rounds at 8K (the first traced) against the default and against
  # plain stores instead of the reductions (FLASHMOE_EXP_COMBINE_STORE, wrong results: what the
  # reductions cost), then 4K / 16K and torch_moe.py at 8K. (FLASHMOE_COMBINE_ATOMIC became the
  # default after it: run this at 32959f1.)
  X=FLASHMOE_COMBINE_ATOMIC
  battery_and_rounds ${SEED:-20261229} $X $X "$X FLASHMOE_EXP_COMBINE_STORE"
  exit 0
fi
if [ "$MODE" = fused ]; then
  # Twelfth session, call 7 (one GPU): the Combine phase folded into GEMM1 (FLASHMOE_FUSED_COMBINE:
  # the task that brings a token's last result combines its columns; Processors otherwise wait
  # ≈ 30 µs for Combine to open). The battery with it, then against the default at 8K (two rounds,
  # the first traced), 4K and 16K. Correct where it compiled clean (29/35; six variants spilled
  # 8-16 bytes) and slower: 8K 0.615-0.623 ms against 0.575-0.578, GEMM1 tasks 33.3 µs against
  # 25.1, and the last tasks ended 498-605 µs apart (the tasks that complete tokens are the late
  # ones). Removed after the call: run it at e92628f.
  step 200 env FLASHMOE_NVRTC_DEFINES=FLASHMOE_FUSED_COMBINE $B verify --backend cuda --seed ${SEED:-20262931} --repeats 2
  defines_rounds FLASHMOE_FUSED_COMBINE
  for D in "" FLASHMOE_FUSED_COMBINE; do
    echo "## defines '$D'"
    step 40 env FLASHMOE_NVRTC_DEFINES="$D" $B bench --backend cuda --dtype bf16 --hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --runs 100 --sweep-tokens 4096 16384
  done
  exit 0
fi
if [ "$MODE" = espread ]; then
  # Twelfth session (one GPU): experts 8 / 32 / 128 at 16K tokens with the release-fence signal,
  # two rounds (issue #5's spread target).
  for i in 1 2; do
    for E in 8 32 128; do
      step 60 $B bench --backend cuda --dtype bf16 --hidden 2048 --ffn 2048 --experts $E --topk 2 --quiet --runs 100 --sweep-tokens 16384
    done
  done
  exit 0
fi
if [ "$MODE" = gatencu ]; then
  # Prepared in the tenth session: the gate GEMM alone under ncu (FLASHMOE_EXP_GATE_ONLY ends the
  # kernel after the gate's tiles; no results on purpose): issue slots, warp stall reasons, shared
  # memory and L2 traffic, at 8K tokens, E = 32. Then the same kernel timed with the trace.
  step 300 env FLASHMOE_NVRTC_DEFINES=FLASHMOE_EXP_GATE_ONLY ncu --clock-control none --kernel-name flashmoe_forward --launch-skip 1 --launch-count 1 \
    --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis --section MemoryWorkloadAnalysis_Tables --section InstructionStats --print-details all \
    $B bench --backend cuda --dtype bf16 --hidden 2048 --ffn 2048 --experts 32 --topk 2 --tokens 8192 --warmup 1 --runs 1 --quiet
  exit 0
fi
if [ "$MODE" = producerpeers ]; then
  # Prepared in the tenth session, not yet run (2 GPUs): the producer warpgroup with expert
  # parallelism (FLASHMOE_PRODUCER=all; peers' rows by TMA, results home by peer stores). Smoke
  # tests, alternating A/B at 8K per GPU bf16 (the first round traced), 4K / 16K, then the 2-GPU
  # battery with it.
  step 120 env FLASHMOE_PRODUCER=all $B verify --backend cuda --gpus 2 --only "E = 32" --seed ${SEED:-20262702} --repeats 3
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --runs 100 --gpus 2"
  for i in 1 2; do
    for E in 1 all; do
      step 60 env FLASHMOE_PRODUCER=$E $B bench --backend cuda --dtype bf16 $A --sweep-tokens 8192 $([ $i = 1 ] && echo --trace)
    done
  done
  for E in 1 all; do step 60 env FLASHMOE_PRODUCER=$E $B bench --backend cuda --dtype bf16 $A --sweep-tokens 4096 16384; done
  [ "${BATTERY:-1}" = 1 ] && step 220 env FLASHMOE_PRODUCER=all $B verify --backend cuda --gpus 2 --seed ${SEED:-20262703} --repeats 5
  exit 0
fi
if [ "$MODE" = suite2 ]; then
  # The paper's §4 grid on every GPU count of the machine in bf16, then fp32 storage with tf32 math,
  # torch_moe.py at every point; charts, JSON and CSV under $OUT/suite-bf16 and $OUT/suite-fp32.
  for D in bf16 fp32; do
    M=""; [ "$D" = fp32 ] && M="--math tf32"
    step 290 $B bench --backend cuda --suite --dtypes $D $M --baseline .device/torch_moe.py --baseline-timeout 120 --out ${OUT:-bench-out}/suite-$D
  done
  exit 0
fi
if [ "$MODE" = l2prefetch ]; then
  # Ninth session: warming the L2 ahead of the TMA copies (FLASHMOE_L2_PREFETCH=D: k tile t + D's
  # boxes when tile t is staged, gathered rows whole at the start; FLASHMOE_L2_PREFETCH_NEXT: the
  # next task's first k tiles near the end of this one's loop). Alternating A/B, 8K per GPU, the
  # first round traced; then the real-size cases with both. Both were slower or no faster and were
  # removed after this call: run it at 34cc4c9 (BENCHMARKS.md, ninth session).
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --sweep-tokens 8192 --runs 100"
  for i in 1 2; do
    for E in "" FLASHMOE_L2_PREFETCH=2 FLASHMOE_L2_PREFETCH=4 FLASHMOE_L2_PREFETCH_NEXT "FLASHMOE_L2_PREFETCH=4 FLASHMOE_L2_PREFETCH_NEXT"; do
      echo "## defines '$E'"
      step 40 env "FLASHMOE_NVRTC_DEFINES=$E" $B bench --backend cuda --dtype bf16 $A $([ $i = 1 ] && echo --trace)
    done
  done
  for i in 1 2; do
    for E in "" FLASHMOE_L2_PREFETCH=4 "FLASHMOE_L2_PREFETCH=4 FLASHMOE_L2_PREFETCH_NEXT"; do
      echo "## defines '$E'"
      step 40 env "FLASHMOE_NVRTC_DEFINES=$E" $B bench --backend cuda --gpus 2 --dtype bf16 $A $([ $i = 1 ] && echo --trace)
    done
  done
  for E in "" "FLASHMOE_L2_PREFETCH=4 FLASHMOE_L2_PREFETCH_NEXT"; do
    echo "## defines '$E'"
    step 40 env "FLASHMOE_NVRTC_DEFINES=$E" $B bench --backend cuda --dtype fp32 --math tf32 $A
    step 40 env "FLASHMOE_NVRTC_DEFINES=$E" $B bench --backend cuda --gpus 2 --dtype fp32 --math tf32 $A
  done
  step 120 env "FLASHMOE_NVRTC_DEFINES=FLASHMOE_L2_PREFETCH=4 FLASHMOE_L2_PREFETCH_NEXT" $B verify --backend cuda --only "real size" --seed 20261951 --repeats 3
  exit 0
fi
if [ "$MODE" = session9 ]; then
  # Ninth session, one call on 2 GPUs. (1) How much of the forward is operand traffic: B or A loaded
  # for even k tiles only (wrong results on purpose), alternating with the default, one GPU.
  # (2) Issue #4 again with the current kernel: the 2-GPU battery with 1,000 repeats, 4K/8K/16K on 2
  # GPUs in bf16, fp32 and fp32/tf32, T(1)/T(2), torch_moe.py --gpus 2 at every size. (3) GEMM1 with
  # peers without its result traffic (FLASHMOE_EXP_GEMM1_RESULTS_LOCAL), traced.
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet"
  for i in 1 2; do
    for E in "" FLASHMOE_EXP_HALF_B FLASHMOE_EXP_HALF_A "FLASHMOE_EXP_HALF_A FLASHMOE_EXP_HALF_B"; do
      echo "## defines '$E'"
      step 40 env "FLASHMOE_NVRTC_DEFINES=$E" $B bench --backend cuda --dtype bf16 $A --sweep-tokens 8192 --runs 100 $([ $i = 1 ] && echo --trace)
    done
  done
  step 150 $B verify --backend cuda --gpus 2 --seed ${SEED:-20261130} --repeats 1000
  for i in 1 2; do
    step 40 $B bench --backend cuda --dtype bf16 $A --sweep-tokens 8192 --runs 100
    step 40 $B bench --backend cuda --gpus 2 --dtype bf16 $A --sweep-tokens 8192 --runs 100
  done
  step 60 $B bench --backend cuda --gpus 2 --dtype bf16 $A --sweep-tokens 4096 16384
  step 60 $B bench --backend cuda --gpus 2 --dtype fp32 --math tf32 $A --sweep-tokens 4096 8192 16384
  step 90 $B bench --backend cuda --gpus 2 --dtype fp32 $A --sweep-tokens 4096 8192 16384 --runs 16
  for S in 4096 8192 16384; do step 60 python3 .device/torch_moe.py --gpus 2 --tokens $S --dtype bf16 --warmup 16 --iters 32; done
  for S in 4096 8192 16384; do step 60 python3 .device/torch_moe.py --gpus 2 --tokens $S --dtype fp32 --impl loop --warmup 8 --iters 16; done
  for S in 4096 8192 16384; do step 60 python3 .device/torch_moe.py --gpus 2 --tokens $S --dtype fp32 --tf32 --impl loop --warmup 8 --iters 16; done
  A="$A --sweep-tokens 8192 --runs 100"
  for i in 1 2; do
    for E in "" FLASHMOE_EXP_GEMM1_RESULTS_LOCAL; do
      echo "## defines '$E'"
      step 40 env "FLASHMOE_NVRTC_DEFINES=$E" $B bench --backend cuda --gpus 2 --dtype bf16 $A $([ $i = 1 ] && echo --trace)
    done
  done
  exit 0
fi
if [ "$MODE" = gemm1peers ]; then
  # Prepared in the eighth session, not yet run: why GEMM1 tasks take 35–40 µs with peers against
  # 25 on one GPU. One traced forward at 8K bf16 on 1, 2 and every GPU count the machine has, with
  # and without FLASHMOE_EXP_GEMM1_RESULTS_LOCAL (results kept local, wrong on purpose), alternating.
  N=$(nvidia-smi -L | wc -l)
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --sweep-tokens 8192 --runs 100"
  step 30 $B bench --backend cuda --dtype bf16 $A --trace
  for i in 1 2; do
    for E in "" FLASHMOE_EXP_GEMM1_RESULTS_LOCAL; do
      echo "## defines '$E'"
      for P in 2 $N; do step 40 env FLASHMOE_NVRTC_DEFINES="$E" $B bench --backend cuda --gpus $P --dtype bf16 $A $([ $i = 1 ] && echo --trace); done
    done
  done
  exit 0
fi
if [ "$MODE" = final ]; then
  # Eighth session: the defaults after call 1 (GELU's fast erf; a peer's rows by TMA in GEMM0) through
  # every battery: 1 GPU, 2 GPUs, faults on 1 and 2, one process per GPU over NVSHMEM puts; then
  # two rounds of 1- and 2-GPU runs at 8K (weak scaling), 4K/16K, tf32, and torch_moe.py.
  step 200 $B verify --backend cuda --seed ${SEED:-20261701} --repeats ${REPEATS:-10}
  step 90 $B verify --backend cuda --gpus 2 --seed ${SEED:-20261702} --repeats 30
  step 60 $B verify --backend cuda --faults
  step 60 $B verify --backend cuda --gpus 2 --faults
  step 110 env NVSHMEM_REMOTE_TRANSPORT=none NVSHMEM_BOOTSTRAP_UID_SOCK_IFNAME=lo FLASHMOE_NVSHMEM_TRANSPORT=put \
    $B launch -n 2 --timeout 105 -- verify --launcher env --seed ${SEED:-20261703} --repeats 5
  defaults_vs_torch 2
  exit 0
fi
if [ "$MODE" = gated ]; then
  # Gated SiLU layers at H = D = 2048 (and Mixtral's 4096/14336 at 4K tokens): the rebuild with
  # wgmma drained per k tile (default) against the serialised first build (FLASHMOE_WGMMA_REBUILD=0),
  # after the gated cases of the battery and a real-size gated verify on one GPU.
  G="--dtype bf16 --expert-form gated --activation silu --no-bias --topk 2 --quiet"
  step 120 $B verify --backend cuda --only gated --seed ${SEED:-20261211}
  step 90 $B bench --backend cuda $G --hidden 2048 --ffn 2048 --experts 32 --sweep-tokens 8192
  step 90 env FLASHMOE_WGMMA_REBUILD=0 $B bench --backend cuda $G --hidden 2048 --ffn 2048 --experts 32 --sweep-tokens 8192
  step 120 $B bench --backend cuda $G --hidden 4096 --ffn 14336 --experts 8 --sweep-tokens 4096
  step 120 env FLASHMOE_WGMMA_REBUILD=0 $B bench --backend cuda $G --hidden 4096 --ffn 14336 --experts 8 --sweep-tokens 4096
  exit 0
fi
if [ "$MODE" = nvshmem4 ]; then
  # compute-sanitizer again, then four processes over NVSHMEM: the battery and 8K bf16.
  for tool in racecheck memcheck; do
    step 60 env FLASHMOE_WATCHDOG_MS=600000 compute-sanitizer --tool $tool --error-exitcode 3 $B run --backend cuda --dtype bf16 --tokens 128 --hidden 128 --ffn 128 --experts 4 --topk 2 --quiet
  done
  export NVSHMEM_REMOTE_TRANSPORT=${NVSHMEM_REMOTE_TRANSPORT:-none}
  export NVSHMEM_BOOTSTRAP_UID_SOCK_IFNAME=${NVSHMEM_BOOTSTRAP_UID_SOCK_IFNAME:-lo}
  step 100 $B launch -n 4 --timeout 95 -- verify --launcher env --seed ${SEED:-20261129} --repeats 50
  step 40 $B launch -n 4 --timeout 35 -- bench --launcher env --dtype bf16 --hidden 2048 --ffn 2048 --experts 32 --topk 2 --sweep-tokens 8192 --quiet
  exit 0
fi
if [ "$MODE" = scale ]; then
  # Every GPU count of the machine (1, 2, 4, ...): the battery on each, then bf16 at 8K tokens per
  # GPU on each count (one traced forward each) with torch_moe.py --gpus N in the same call.
  N=$(nvidia-smi -L | wc -l)
  nvidia-smi topo -m | head -$((N + 1))
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet"
  step 240 $B verify --backend cuda --seed ${SEED:-20261128}
  step 60 $B verify --backend cuda --faults
  for P in $(seq 2 $N); do
    [ $((32 % P)) -eq 0 ] || continue
    step 150 $B verify --backend cuda --gpus $P --seed $((${SEED:-20261128} + P)) --repeats ${REPEATS:-300}
  done
  step 60 $B verify --backend cuda --gpus $N --faults
  for P in $(seq 1 $N); do
    [ $((32 % P)) -eq 0 ] || continue
    step 60 $B bench --backend cuda --gpus $P --dtype bf16 $A --sweep-tokens 8192 --trace
  done
  if [ -f .device/torch_moe.py ]; then
    for P in $(seq 1 $N); do
      [ $((32 % P)) -eq 0 ] || continue
      step 90 python3 .device/torch_moe.py --gpus $P --tokens 8192 --dtype bf16 --warmup 16 --iters 32
    done
  fi
  exit 0
fi
if [ "$MODE" = ep ]; then
  # Expert parallelism on 2 GPUs: the battery, then 1- and 2-GPU benchmarks (weak scaling, with one
  # traced forward each) next to torch_moe.py --gpus 2, bf16 first.
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --sweep-tokens 4096 8192 16384 --quiet"
  step 150 $B verify --backend cuda --gpus 2 --seed ${SEED:-20261128} --repeats ${REPEATS:-1000}
  # The opt-in paths (tf32 on wgmma, one launch thread per GPU) through the same battery.
  step 150 env FLASHMOE_TF32_WGMMA=1 FLASHMOE_GROUP_LAUNCH=parallel $B verify --backend cuda --gpus 2 --seed 7 --repeats 100
  step 90 $B bench --backend cuda --gpus 2 --dtype bf16 $A --trace
  step 90 $B bench --backend cuda --dtype bf16 $A --trace
  # Weak scaling with each GPU's kernel launched from its own thread (opt-in), same call.
  step 90 env FLASHMOE_GROUP_LAUNCH=parallel $B bench --backend cuda --gpus 2 --dtype bf16 $A
  if [ -f .device/torch_moe.py ]; then
    for S in 4096 8192 16384; do step 90 python3 .device/torch_moe.py --gpus 2 --tokens $S --dtype bf16; done
  fi
  step 90 $B bench --backend cuda --gpus 2 --dtype fp32 $A
  step 90 env FLASHMOE_TF32_WGMMA=1 $B bench --backend cuda --gpus 2 --dtype fp32 --math tf32 $A
  if [ -f .device/torch_moe.py ]; then
    for S in 4096 8192 16384; do step 90 python3 .device/torch_moe.py --gpus 2 --tokens $S --dtype fp32 --impl loop --warmup 16 --iters 32; done
  fi
  exit 0
fi
if [ "$MODE" = reliability ]; then
  # Issue #7 on the GPU: faults on 1 and 2 GPUs, long runs (outputs fingerprinted on the GPU),
  # compute-sanitizer on a small layer. FULL=1 adds the whole single-GPU battery (bad numbers,
  # out-of-memory refusal, concurrent forwards).
  step 60 $B verify --backend cuda --faults
  step 60 $B verify --backend cuda --gpus 2 --faults
  [ "${FULL:-0}" = 1 ] && step 400 $B verify --backend cuda --seed ${SEED:-20261129}
  S="--dtype bf16 --hidden 2048 --ffn 2048 --experts 32 --topk 2 --tokens 4096 --forwards ${FORWARDS:-100000} --report-every 25000"
  step ${SOAK_LIMIT:-100} $B soak --backend cuda $S
  step ${SOAK_LIMIT:-100} $B soak --backend cuda --gpus 2 $S
  for tool in racecheck memcheck; do
    # The sanitizers slow the kernel down by orders of magnitude: a long watchdog bound.
    step ${SANITIZER_LIMIT:-90} env FLASHMOE_WATCHDOG_MS=600000 compute-sanitizer --tool $tool --error-exitcode 3 $B run --backend cuda --dtype bf16 --tokens 128 --hidden 128 --ffn 128 --experts 4 --topk 2 --quiet
  done
  exit 0
fi
if [ "$MODE" = tf32 ]; then
  # tf32 on wgmma (the default since this session) through the expert-parallel battery's tf32 cases.
  N=$(nvidia-smi -L | wc -l)
  for P in 2 $N; do step 60 $B verify --backend cuda --gpus $P --seed $((${SEED:-20261128} + P)) --only tf32; done
  exit 0
fi
if [ "$MODE" = wg ]; then
  # Two consumer warpgroups per Processor (128 × 256 tiles, FLASHMOE_WARPGROUPS=2, the default
  # where it applies) against one (128 × 128, two blocks per SM): the single-GPU battery with the
  # default, its quick form with one warpgroup, then each at 4K/8K/16K in bf16 and 8K in tf32,
  # torch_moe.py in the same call, and ncu's tensor-pipe activity of each.
  step 240 $B verify --backend cuda --seed ${SEED:-20261301} --repeats ${REPEATS:-100}
  step 90 env FLASHMOE_WARPGROUPS=1 $B verify --backend cuda --quick --seed ${SEED:-20261302}
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet"
  for W in 1 2 1 2; do
    step 60 env FLASHMOE_WARPGROUPS=$W $B bench --backend cuda --dtype bf16 $A --sweep-tokens 4096 8192 16384
    step 60 env FLASHMOE_WARPGROUPS=$W $B bench --backend cuda --dtype fp32 --math tf32 $A --sweep-tokens 8192
  done
  step 60 python3 .device/torch_moe.py --gpus 1 --tokens 8192 --dtype bf16 --warmup 16 --iters 32
  step 60 python3 .device/torch_moe.py --gpus 1 --tokens 8192 --dtype fp32 --tf32 --warmup 16 --iters 32
  for W in 1 2; do
    step 120 env FLASHMOE_WARPGROUPS=$W ncu --clock-control none --metrics gpu__time_duration.sum,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_elapsed,lts__t_sectors.avg.pct_of_peak_sustained_elapsed,l1tex__data_pipe_lsu_wavefronts_mem_shared.avg.pct_of_peak_sustained_elapsed \
      --kernel-name flashmoe_forward --launch-skip 1 --launch-count 1 $B bench --backend cuda --dtype bf16 $A --tokens 8192 --warmup 1 --runs 1
  done
  exit 0
fi
if [ "$MODE" = wg2 ]; then
  # Two warpgroups on 2 GPUs (battery), then where the tile loop's time goes on one GPU at 8K bf16:
  # each layout as it is, without its loop's loads (FLASHMOE_EXP_SKIP_LOADS), without its
  # math (FLASHMOE_EXP_SKIP_MMA), with one stage less or more (FLASHMOE_STAGES); then weak scaling
  # T(1)/T(2) at 8K with each layout, alternating, and torch_moe.py --gpus 2.
  step 200 $B verify --backend cuda --gpus 2 --seed ${SEED:-20261311} --repeats ${REPEATS:-100}
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet --dtype bf16 --sweep-tokens 8192"
  for W in 2 1; do
    # (Two warpgroups have no room for a fifth 48 KB stage.)
    MORE=$([ $W = 1 ] && echo FLASHMOE_STAGES=4 || echo)
    for D in "" FLASHMOE_EXP_SKIP_LOADS FLASHMOE_EXP_SKIP_MMA "FLASHMOE_STAGES=$((W + 2 - 1))" $MORE; do
      echo "## warpgroups $W, defines '$D'"
      step 60 env FLASHMOE_WARPGROUPS=$W FLASHMOE_NVRTC_DEFINES="$D" $B bench --backend cuda $A
    done
  done
  for i in 1 2; do
    for W in 1 2; do
      step 60 env FLASHMOE_WARPGROUPS=$W $B bench --backend cuda $A --runs 100
      step 60 env FLASHMOE_WARPGROUPS=$W $B bench --backend cuda --gpus 2 $A --runs 100
    done
  done
  step 60 python3 .device/torch_moe.py --gpus 2 --tokens 8192 --dtype bf16 --warmup 16 --iters 32
  exit 0
fi
if [ "$MODE" = tma ]; then
  # Expert weights staged by TMA (FLASHMOE_TMA=1) against cp.async, with one and two warpgroups:
  # the single-GPU battery with TMA on one warpgroup, its quick form on two; then 8K bf16 each
  # way, alternating, 16K and tf32, and the loads-only loop (FLASHMOE_EXP_SKIP_MMA) each way.
  step 240 env FLASHMOE_TMA=1 $B verify --backend cuda --seed ${SEED:-20261321} --repeats ${REPEATS:-50}
  step 90 env FLASHMOE_TMA=1 FLASHMOE_WARPGROUPS=2 $B verify --backend cuda --quick --seed ${SEED:-20261322}
  step 60 env FLASHMOE_TMA=1 FLASHMOE_WARPGROUPS=2 $B verify --backend cuda --only "real size" --seed ${SEED:-20261323}
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet"
  for i in 1 2; do
    for W in 1 2; do
      for T in 0 1; do
        step 60 env FLASHMOE_WARPGROUPS=$W FLASHMOE_TMA=$T $B bench --backend cuda --dtype bf16 $A --sweep-tokens 8192 16384 --runs 64
      done
    done
  done
  for W in 1 2; do
    for T in 0 1; do
      step 60 env FLASHMOE_WARPGROUPS=$W FLASHMOE_TMA=$T $B bench --backend cuda --dtype fp32 --math tf32 $A --sweep-tokens 8192
      step 60 env FLASHMOE_WARPGROUPS=$W FLASHMOE_TMA=$T FLASHMOE_NVRTC_DEFINES=FLASHMOE_EXP_SKIP_MMA $B bench --backend cuda --dtype bf16 $A --sweep-tokens 8192
    done
  done
  exit 0
fi
if [ "$MODE" = tma2 ]; then
  # The defaults since the sixth session (two warpgroups, TMA operands) on 2 GPUs: the battery, one
  # process per GPU with NVSHMEM puts (tf32 cases), the quick single-GPU battery; then weak
  # scaling T(1)/T(2) at 8K bf16 (alternating pairs), 4K/16K on 2 GPUs, tf32 at 8K on 1 and 2,
  # and torch_moe.py in the same call.
  step 150 $B verify --backend cuda --gpus 2 --seed ${SEED:-20261331} --repeats ${REPEATS:-100}
  step 110 env NVSHMEM_REMOTE_TRANSPORT=none NVSHMEM_BOOTSTRAP_UID_SOCK_IFNAME=lo FLASHMOE_NVSHMEM_TRANSPORT=put \
    $B launch -n 2 --timeout 105 -- verify --launcher env --only tf32 --seed ${SEED:-20261332}
  step 60 $B verify --backend cuda --quick --seed ${SEED:-20261333}
  defaults_vs_torch 3
  exit 0
fi
if [ "$MODE" = tmahidden ]; then
  # GEMM1's A (the intermediate a) by TMA as well, the sixth session's experiment
  # (FLASHMOE_NVRTC_DEFINES=FLASHMOE_TMA_HIDDEN): real-size and quick batteries on 1 GPU, the
  # battery on 2, then 8K/16K bf16 and tf32 each way. It is now part of the TMA operands (the
  # define is gone), so both sides of each pair run the same code today.
  H="FLASHMOE_NVRTC_DEFINES=FLASHMOE_TMA_HIDDEN"
  step 60 env $H $B verify --backend cuda --only "real size" --seed ${SEED:-20261341}
  step 40 env $H $B verify --backend cuda --quick --seed ${SEED:-20261342}
  step 90 env $H $B verify --backend cuda --gpus 2 --seed ${SEED:-20261343} --repeats ${REPEATS:-50}
  A="--hidden 2048 --ffn 2048 --experts 32 --topk 2 --quiet"
  for i in 1 2; do
    step 40 $B bench --backend cuda --dtype bf16 $A --sweep-tokens 8192 16384 --runs 64
    step 40 env $H $B bench --backend cuda --dtype bf16 $A --sweep-tokens 8192 16384 --runs 64
  done
  for E in "" "$H"; do
    step 40 env $E $B bench --backend cuda --gpus 2 --dtype bf16 $A --sweep-tokens 8192 --runs 64
    step 40 env $E $B bench --backend cuda --gpus 2 --dtype fp32 --math tf32 $A --sweep-tokens 8192
  done
  exit 0
fi
if [ "$MODE" = stalls ]; then
  # Why the tile loop leaves the tensor pipes idle: ncu's warp-state (stall reasons) and
  # speed-of-light sections on one bf16 forward at 8K on one GPU.
  step 300 ncu --clock-control none --section WarpStateStats --section SpeedOfLight --kernel-name flashmoe_forward \
    --launch-skip 1 --launch-count 1 $B bench --backend cuda --dtype bf16 --hidden 2048 --ffn 2048 --experts 32 --topk 2 \
    --tokens 8192 --warmup 1 --runs 1 --quiet
  exit 0
fi
if [ "$MODE" = ncu ]; then
  # One profiled forward per size (ncu replays the kernel per metric pass; clocks left alone).
  # What bounds the tile GEMMs: tensor pipes against L2, DRAM and L1/shared-memory throughput.
  M=sm__cycles_active.avg.pct_of_peak_sustained_elapsed,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_elapsed,gpu__time_duration.sum
  M=$M,lts__throughput.avg.pct_of_peak_sustained_elapsed,lts__t_sector_hit_rate.pct,dram__throughput.avg.pct_of_peak_sustained_elapsed,l1tex__throughput.avg.pct_of_peak_sustained_elapsed
  for S in ${NCU_TOKENS:-4096 8192 16384}; do
    step 300 ncu --clock-control none --metrics $M --kernel-name flashmoe_forward --launch-skip 1 --launch-count 1 \
      $B bench --backend cuda --dtype bf16 --hidden 2048 --ffn 2048 --experts 32 --topk 2 --tokens $S --warmup 1 --runs 1 --quiet
  done
  exit 0
fi
if [ "$MODE" = trace ]; then
  # Where the time goes: one traced forward after timing, on 1 GPU and on 2 GPUs, 8K tokens per GPU.
  for flags in ${TRACE_FLAGS:-"--dtype bf16"}; do
    step 120 $B bench --backend cuda $flags --hidden 2048 --ffn 2048 --experts 32 --topk 2 --sweep-tokens 8192 --trace --quiet
    step 120 $B bench --backend cuda --gpus 2 $flags --hidden 2048 --ffn 2048 --experts 32 --topk 2 --sweep-tokens 8192 --trace --quiet
  done
  exit 0
fi
if [ "$MODE" = quick ]; then
  step 240 $B verify --backend cuda --quick --seed 1234 --repeats 20
  step 120 $B bench --backend cuda --dtype bf16 --hidden 2048 --ffn 2048 --experts 32 --topk 2 --sweep-tokens 8192 --quiet
  exit 0
fi
step 400 $B verify --backend cuda --seed ${SEED:-20261128}
for flags in "--dtype bf16" "--dtype fp32 --math tf32" "--dtype fp32"; do
  step 180 $B bench --backend cuda $flags --hidden 2048 --ffn 2048 --experts 32 --topk 2 --sweep-tokens 4096 8192 16384 --quiet
done
step 180 $B bench --backend cuda --dtype bf16 --dropless --hidden 2048 --ffn 2048 --experts 32 --topk 2 --sweep-tokens 4096 8192 16384 --quiet
# tf32 on wgmma (opt-in, FLASHMOE_TF32_WGMMA=1) next to the mma.sync numbers above.
step 180 env FLASHMOE_TF32_WGMMA=1 $B bench --backend cuda --dtype fp32 --math tf32 --hidden 2048 --ffn 2048 --experts 32 --topk 2 --sweep-tokens 4096 8192 16384 --quiet
if [ -f .device/torch_moe.py ]; then
  for S in 4096 8192 16384; do
    step 120 python3 .device/torch_moe.py --gpus 1 --tokens $S --dtype bf16
    step 120 python3 .device/torch_moe.py --gpus 1 --tokens $S --dtype fp32 --impl loop --tf32
    step 120 python3 .device/torch_moe.py --gpus 1 --tokens $S --dtype fp32 --impl loop
  done
fi

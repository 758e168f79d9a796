// What the host passes per call, and the per-forward bookkeeping the actors share in global memory.
// The Swift side (MoECUDA/KernelParams.swift, Workspace.swift) mirrors these layouts; a test
// compares them with the sizes the kernel exports in `flashmoe_layout` (flashmoe.cuh).
#pragma once

namespace flashmoe {

// Roles and phases, named in watchdog reports.
enum Role : unsigned { kRoleGate = 1, kRoleProcessor = 2, kRoleScheduler = 3, kRoleSubscriber = 4, kRoleBarrier = 5 };
enum Phase : unsigned { kPhaseGate = 1, kPhaseScan = 2, kPhaseSlots = 3, kPhaseTasks = 4, kPhaseDrain = 5, kPhaseDispatch = 6, kPhaseCombine = 7, kPhaseStall = 8, kPhaseOperands = 9 };

// Written once by the first actor that gives up waiting; `epoch` says which forward it belongs to,
// so the record never needs clearing.
struct ErrorRecord {
  unsigned epoch;
  unsigned code;      // 1 = watchdog timeout
  unsigned role;
  unsigned phase;
  unsigned block;
  unsigned thread;
  unsigned long long awaited;
  unsigned long long observed;
  unsigned long long elapsedNs;
};

// A task for a Processor (Appendix E): type and the tile it covers.
enum TaskType : unsigned { kTaskStop = 0, kTaskGEMM0 = 1, kTaskGEMM1 = 2, kTaskCombine = 3 };
struct Task {
  unsigned type;
  unsigned rowTile;  // GEMM0/GEMM1: row tile of the grouped buffers (P > 1: cell · T + tile); Combine: token tile
  unsigned colTile;  // output column tile
  unsigned expert;   // local expert (its weights on this GPU)
  unsigned rows;     // P > 1: valid rows of the row tile (the rest is padding and is never sent)
};

// One slot of a Processor's mailbox: the Scheduler writes `task`, then releases `tag`
// (epoch << 32 | sequence number); the Processor acquires `tag` and reads `task`.
struct MailboxSlot {
  unsigned long long tag;
  Task task;
};
// Tasks a Processor can hold at once (the one it runs and those handed out ahead). The host
// allocates up to 4 (Workspace.maxMailboxDepth); FLASHMOE_MAILBOX_DEPTH is an experiment
// (twelfth session: the Processors wait for their next task at 2).
#if defined(FLASHMOE_MAILBOX_DEPTH)
static constexpr int kMailboxDepth = FLASHMOE_MAILBOX_DEPTH;
#else
static constexpr int kMailboxDepth = 2;
#endif
static_assert(kMailboxDepth >= 2 && kMailboxDepth <= 4, "the host allocates 4 mailbox slots per Processor");

// Expert parallelism (P > 1): where each GPU's symmetric buffers are, as seen from this GPU
// (peer pointers, valid after cuCtxEnablePeerAccess). The same table is on every GPU.
struct PeerTable {
  void* dispatchIn;                   // [P sources][E_local][cellRows][H]: L[·, r = 0, b = 1]
  void* combineIn;                    // [E owners' experts][cellRows][H]: L[·, r = 1, b = 1]
  unsigned long long* dispatchSignal; // [P sources][E_local]: epoch << 32 | rows
  unsigned* combineCount;             // [E][cellRows / tileM]: column tiles of results arrived
  unsigned* abortEpoch;               // the peer's abort word
};

// The per-forward counts in Params::counters, reset by reset_counters (slots.cuh).
enum Counter : int {
  kGemm1Done = 0,     // GEMM1 tasks finished
  kSharesZeroed = 1,  // Processors whose share of the output is zeroed (kZeroLate, slots.cuh)
  kCounters = 2,      // Workspace.counterCount on the host (a test reads this line)
};

struct Params {
  // Tensors, in the storage dtype (PyTorch nn.Linear layout, expert outermost).
  const void* x;      // [S, H]
  void* out;          // [S, H]
  const void* gate;   // [E, H]
  const void* w1;     // [E, D, H]
  const void* b1;     // [E, D] or null
  const void* w2;     // [E, H, D]
  const void* b2;     // [E, H] or null
  const void* w3;     // [E, D, H] (gated) or null
  const void* b3;     // [E, D] or null
  // Run-time sizes.
  int tokens;         // S ≤ maxTokens
  int capacity;       // C per expert (≥ S means dropless)
  int renormalize;    // 1: w = p / Σ picks; 0: raw p
  int maxRows;        // rows of the grouped buffers
  int processors;     // blocks running the Processor role (gridDim.x − 1)
  unsigned epoch;     // this forward's number, ≥ 1, new each call
  unsigned long long timeoutNs;  // watchdog bound for every wait
  // Routing (Tφ, Gφ) and the deterministic capacity scan.
  int* pairExpert;    // [S·k]
  float* pairWeight;  // [S·k]
  int* pairRank;      // [S·k] rank among the same expert's pairs in its gate tile
  int* pairRow;       // [S·k] row in the grouped buffers, −1 when dropped
  int* chunkCount;    // [S/32][E] pairs per (gate tile, expert)
  int* chunkOffset;   // [S/32][E] exclusive prefix over gate tiles
  int* expertCount;   // [E] kept pairs
  int* rowToken;      // [maxRows] token of each row, −1 for padding
  int* rowTileExpert; // [maxRows / tileM]
  int* readyRows;     // [maxRows / tileM] row tiles in the order the Scheduler released them
  // Expert activations.
  void* hidden;       // [maxRows, D] intermediate a, storage dtype
  void* expertOut;    // [maxRows, H] expert outputs y, storage dtype
  // Actor signals.
  unsigned* rowDone;             // [maxRows / tileM] GEMM0 tiles finished per row tile
  unsigned* counters;            // [kCounters] per-forward counts (Counter)
  MailboxSlot* mailbox;          // [processors][kMailboxDepth]
  unsigned long long* finished;  // [processors] epoch << 32 | tasks finished
  unsigned* barrier;             // [2] arrivals, generation (persist across forwards)
  unsigned* abortEpoch;          // [1] == epoch when some actor gave up
  ErrorRecord* error;            // [1]
  // Expert parallelism (unused when P = 1).
  int rank;                      // this GPU's position in the group
  int cellRows;                  // C' for the largest token count: rows of one cell of L
  int ranks;                     // P (1: no peers)
  int dispatchers;               // P > 1: blocks that store rows into peers (transport.cuh)
  const PeerTable* peers;        // [P]
  // Timeline of this forward (trace.cuh), or null.
  unsigned long long* trace;
  unsigned* dispatchSent;        // [E] P > 1: rows of this GPU's tokens stored per expert
  // Fault injection (FLASHMOE_DEBUG_STALL): the actor of this role on the GPU of this rank stops
  // making progress, so that the watchdog path can be tested; 0 = off.
  unsigned stallRole;
  int stallRank;
  // NVSHMEM put transport (remote.cuh; null otherwise): arrival counts of rows put into this GPU's
  // dispatch cells [P · E_local], and of result rows put into its combine tiles [E][cellRows / tileM];
  // results of this GPU's experts for other GPUs are staged here before their put [maxRows, H].
  unsigned long long* dispatchArrive;
  unsigned long long* combineArrive;
  void* stageOut;
  // tf32 on wgmma: x rounded to tf32 by the gate as it stages it [maxTokens, H]; GEMM0 and the
  // dispatch read this copy (tile_gemm.cuh, kRoundedTokens). Unused otherwise.
  void* xRounded;
  // FLASHMOE_TMA_OPERANDS: five 128-byte tensor maps (W1 and W3 with GEMM0's box, W2 with
  // GEMM1's, the intermediate a and, P > 1, the dispatch cells in 128-row boxes), 64-byte aligned,
  // encoded by the host; null otherwise.
  const void* tensorMaps;
  // Atomic combine (Spec::kAtomicCombine): the weight of each row's pair [maxRows], written with
  // the slots, so that GEMM1's epilogue reads a row's token and weight without a search.
  float* rowWeight;
};

}  // namespace flashmoe

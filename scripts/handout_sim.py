#!/usr/bin/env python3
"""A model of the Scheduler's hand-out on one GPU (scheduler.cuh), to compare task orders offline.

Processors run tasks one after another from a mailbox of `depth` slots; the Scheduler fills free
slots at once (plus `latency` µs). GEMM0 tasks (expert-major, then column tile, then row tile)
are ready from the start; a row tile's GEMM1 tasks once all its GEMM0 tasks are done. Task times
are the traced ones at 8K tokens on an H200 (GEMM0 30 µs, GEMM1 25.5 µs, ±6 % uniform), the first
task at 48 µs. Prints the mean over seeds of the forward's end and of the Processors' last-task
ends (median, earliest), as the trace reports them.

    python3 scripts/handout_sim.py

The fourteenth session's result: with GEMM1 always first the last GEMM0 tasks wait behind every
ready GEMM1 task and the forward ends ≈ 36 µs later than with the last round of GEMM0 first
(FLASHMOE_GEMM0_LAST_ROUNDS); measured on the H200 the change took 0.564 / 0.567 ms to 0.543 /
0.531 (BENCHMARKS.md, fourteenth session).
"""
import heapq
import random
import statistics


def simulate(last_rounds, depth=2, processors=131, experts=32, row_tiles=4, columns=8,
             gemm0_us=30.0, gemm1_us=25.5, jitter=0.06, latency=1.0, start_us=48.0, seed=0):
    """last_rounds: GEMM0 goes first once at most last_rounds × processors GEMM0 tasks are left
    (0: GEMM1 always first, as before the fourteenth session)."""
    rnd = random.Random(seed)
    gemm0 = [e * row_tiles + r for e in range(experts) for _ in range(columns) for r in range(row_tiles)]
    next0 = 0
    done0 = [0] * (experts * row_tiles)
    ready_rows, next1 = [], 0
    queues = [[] for _ in range(processors)]
    events, ends = [], [0.0] * processors

    def run(proc, now):
        kind = queues[proc][0][0]
        base = gemm0_us if kind == 0 else gemm1_us
        heapq.heappush(events, (now + base * (1 + rnd.uniform(-jitter, jitter)), proc))

    def hand_out(now):
        nonlocal next0, next1
        for proc in range(processors):
            while len(queues[proc]) < depth:
                left0, left1 = len(gemm0) - next0, len(ready_rows) * columns - next1
                gemm0_first = left0 <= last_rounds * processors
                if left0 and (gemm0_first or not left1):
                    task = (0, gemm0[next0])
                    next0 += 1
                elif left1:
                    task = (1, ready_rows[next1 // columns])
                    next1 += 1
                else:
                    return
                queues[proc].append(task)
                if len(queues[proc]) == 1:
                    run(proc, now + latency)

    hand_out(start_us)
    while events:
        now, proc = heapq.heappop(events)
        kind, row = queues[proc].pop(0)
        ends[proc] = now
        if kind == 0:
            done0[row] += 1
            if done0[row] == columns:
                ready_rows.append(row)
        if queues[proc]:
            run(proc, now + 0.3)
        hand_out(now + latency)
    return max(ends), statistics.median(ends), min(ends)


if __name__ == "__main__":
    print("GEMM0 last rounds  depth  end µs  median µs  earliest µs")
    for rounds in (0, 1, 2):
        for depth in (2, 3):
            runs = [simulate(rounds, depth=depth, seed=s) for s in range(30)]
            means = [statistics.mean(r[i] for r in runs) for i in range(3)]
            print(f"{rounds:17d}  {depth:5d}  {means[0]:6.1f}  {means[1]:9.1f}  {means[2]:11.1f}")

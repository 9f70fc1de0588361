"""W6: child processes. Forks FORKS children one after another, each of which runs one small
function, then maps a CPU-bound function over ITEMS items in a spawn Pool(4). Prints JSON:
per forked child (medians) the time from start() to its code's first line and from its last
line to join() returning, and the pool's wall time (its start-up included).

    python w6_processes.py FORKS ITEMS
"""

import json
import multiprocessing
import statistics
import sys
import time


def record(queue):
    queue.put(time.perf_counter())  # CLOCK_MONOTONIC: the same clock in every process
    queue.put(time.perf_counter())


def work(n):
    return sum(range(n))  # C-level work: what following costs, not what timing calls does


def main(forks, items):
    fork = multiprocessing.get_context("fork")
    queue = fork.SimpleQueue()
    starts, ends = [], []
    for _ in range(forks):
        before = time.perf_counter()
        child = fork.Process(target=record, args=(queue,))
        child.start()
        first, last = queue.get(), queue.get()
        child.join()
        starts.append(first - before)
        ends.append(time.perf_counter() - last)
    began = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(work, [200_000] * items, chunksize=max(1, items // 16))
    print(
        json.dumps(
            {
                "fork_start_ms": statistics.median(starts) * 1000,
                "fork_exit_ms": statistics.median(ends) * 1000,
                "spawn_pool_s": time.perf_counter() - began,
            }
        )
    )


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))

"""W5, eight busy threads: pure-Python work split over 8 threads that share the GIL (the stack
sampler's worst case: every look finds 8 running stacks). Prints its own timing as JSON."""

import json
import sys
import threading
import time


def work(count, out, index):
    total = 0
    for i in range(count):
        total += (i * i) % 7
    out[index] = total


def main(scale):
    out = [0] * 8
    threads = [
        threading.Thread(target=work, args=(400_000 * scale, out, i), name=f"worker-{i}")
        for i in range(8)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


scale = int(sys.argv[1]) if len(sys.argv) > 1 else 5
print(json.dumps({"elapsed_s": main(scale)}))

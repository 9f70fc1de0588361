"""W7, locks: acquire/release pairs of the program's own locks, timed by the workload itself
per pair (the loop's own cost included, the same with and without hotpath). Prints JSON.

Cases: a Lock by ``with`` and by ``acquire()``/``release()``, an RLock by ``with`` (one
thread: never contended), and a Lock four threads take in turn, each holding it across a
``sleep(0)`` (which lets the GIL go), so that the others find it taken and wait: the
contended case, whose pairs cost the waits and the thread switches."""

import json
import sys
import threading
import time

THREADS = 4


def one_thread(lock, pairs, explicit):
    started = time.perf_counter_ns()
    if explicit:
        for _ in range(pairs):
            lock.acquire()
            lock.release()
    else:
        for _ in range(pairs):
            with lock:
                pass
    return (time.perf_counter_ns() - started) / pairs


def contended(pairs):
    lock = threading.Lock()
    each = pairs // THREADS
    start = threading.Barrier(THREADS + 1)

    def work():
        start.wait()
        for _ in range(each):
            with lock:
                time.sleep(0)

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    start.wait()
    started = time.perf_counter_ns()
    for thread in threads:
        thread.join()
    return (time.perf_counter_ns() - started) / (each * THREADS)


def main(scale):
    pairs = 200_000 * scale
    lock = threading.Lock()
    rlock = threading.RLock()
    return {
        "lock_with_ns": one_thread(lock, pairs, explicit=False),
        "lock_acquire_release_ns": one_thread(lock, pairs, explicit=True),
        "rlock_with_ns": one_thread(rlock, pairs, explicit=False),
        "contended_with_ns": contended(pairs // 20),
    }


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1)))

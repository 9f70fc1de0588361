"""A steady program for hotpath's own memory: every round makes and drops functions' calls,
threads, queues, tasks and async generators, and keeps nothing. Runs for argv[1] seconds."""

import asyncio
import queue
import sys
import threading
import time


def leaf(x):
    return x * 2


async def numbers(count):
    for number in range(count):
        yield number


async def relay(count):
    channel = asyncio.Queue(maxsize=4)

    async def produce():
        async for number in numbers(count):
            await channel.put(leaf(number))

    async def consume():
        return sum([await channel.get() for _ in range(count)])

    return (await asyncio.gather(produce(), consume()))[1]


def worker(handoff):
    for number in range(50):
        handoff.put(leaf(number))


def one_round():
    total = asyncio.run(relay(50))
    handoff = queue.Queue()
    thread = threading.Thread(target=worker, args=(handoff,))
    thread.start()
    thread.join()
    return total + sum(handoff.get() for _ in range(50))


end = time.monotonic() + float(sys.argv[1])
rounds = 0
while time.monotonic() < end:
    one_round()
    rounds += 1
print(rounds)

"""W3, asyncio: many tasks passing items over asyncio.Queue, plus async generators."""

import asyncio
import json
import sys
import time


async def numbers(count):
    for number in range(count):
        yield number


async def producer(queue, count):
    async for number in numbers(count):
        await queue.put(number)


async def consumer(queue, count, results):
    total = 0
    for _ in range(count):
        total += await queue.get()
    results.append(total)


async def main(scale):
    tasks, per_task = 300 * scale, 50
    queues = [asyncio.Queue(maxsize=8) for _ in range(tasks)]
    results = []
    await asyncio.gather(
        *(producer(q, per_task) for q in queues),
        *(consumer(q, per_task, results) for q in queues),
    )
    return sum(results)


started = time.perf_counter()
asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5))
print(json.dumps({"elapsed_s": time.perf_counter() - started}))

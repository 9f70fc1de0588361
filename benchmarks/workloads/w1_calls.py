"""W1, call-heavy: recursive fib and tiny methods. Prints its own timing as JSON."""

import json
import sys
import time


class Vector:
    __slots__ = ("x", "y")

    def __init__(self, x, y):
        self.x = x
        self.y = y

    def add(self, other):
        return Vector(self.x + other.x, self.y + other.y)

    def norm1(self):
        return abs(self.x) + abs(self.y)


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def vectors(count):
    total = Vector(0, 0)
    step = Vector(1, -1)
    for _ in range(count):
        total = total.add(step)
    return total.norm1()


def main(scale):
    started = time.perf_counter()
    fib(22 + scale)
    vectors(200_000 * scale)
    return time.perf_counter() - started


scale = int(sys.argv[1]) if len(sys.argv) > 1 else 5
calls = 0
a, b = 1, 1
for _ in range(22 + scale):  # fib(n) makes 2*fib(n+1)-1 calls
    a, b = b, a + b
calls = 2 * a - 1 + 2 * 200_000 * scale + 3
print(json.dumps({"elapsed_s": main(scale), "calls": calls}))

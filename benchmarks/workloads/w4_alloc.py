"""W4, allocation churn: about 200 MB per scale step in very few Python calls."""

import json
import sys
import time


def churn(rounds):
    kept = []
    for _ in range(rounds):
        block = [bytes(1000) for _ in range(5_000)]  # 5 MB, freed next round
        kept.append(bytearray(100_000))
        del block
        if len(kept) > 50:
            kept.clear()
    return len(kept)


def main(scale):
    started = time.perf_counter()
    churn(40 * scale)
    return time.perf_counter() - started


print(json.dumps({"elapsed_s": main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)}))

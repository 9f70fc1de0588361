"""W2, mixed realistic work: json, regex, sorting and small classes."""

import json
import re
import sys
import time

WORD = re.compile(r"[a-z]+")


class Record:
    def __init__(self, number):
        self.number = number
        self.name = f"record-{number % 97}-{number}"
        self.tags = [f"t{number % 7}", f"g{number % 11}"]

    def key(self):
        return (self.tags[0], -self.number)

    def to_dict(self):
        return {"n": self.number, "name": self.name, "tags": self.tags}


def encode(records):
    return json.dumps([record.to_dict() for record in records])


def decode(text):
    return [Record(item["n"]) for item in json.loads(text)]


def count_words(text):
    counts = {}
    for word in WORD.findall(text):
        counts[word] = counts.get(word, 0) + 1
    return counts


def main(scale):
    started = time.perf_counter()
    for round_ in range(2 * scale):
        records = [Record(i + round_) for i in range(5_000)]
        records.sort(key=Record.key)
        again = decode(encode(records))
        count_words(" ".join(r.name for r in again))
    return time.perf_counter() - started


print(json.dumps({"elapsed_s": main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)}))

"""Answers an agent can always read (issue 18): whatever ``limit`` asks, an answer stays
under the bound, says how many rows it left out, and ``offset`` reads on from there."""

from __future__ import annotations

import json

from test_processes import _Fixed, _stats

from hotpath.store import RunInfo, Store
from hotpath.views import registry
from hotpath.views.bounded import MAX_CHARS


def _store_of(functions: int) -> Store:
    filters: dict[str, list[str] | str | None] = {
        "include": [], "exclude": [], "default_roots": [], "default_roots_chosen": None,
    }  # fmt: skip
    store = Store(RunInfo([], filters, {}, (50.0, 95.0, 99.0), 0.25), 10, functions)
    made = [_stats(store, [1_000 + i % 97] * (1 + i % 5), name=f"f{i}") for i in range(functions)]
    store.functions.attach(_Fixed(made))
    return store


def test_fifty_thousand_functions_answer_under_the_bound_and_offset_reads_on() -> None:
    store = _store_of(50_000)
    first = registry.call(store, "functions_timing", {"limit": 10_000, "sort": "calls"})
    assert len(json.dumps(first)) <= MAX_CHARS
    shown = first["shown"]
    assert 0 < shown < 10_000 and len(first["functions"]) == shown
    cut = first["truncated"]
    assert (cut["left_out"], cut["next_offset"]) == (10_000 - shown, shown)
    assert f"offset={shown}" in cut["note"]
    assert first["summary"].startswith(first["functions"][0]["name"])
    after = registry.call(
        store, "functions_timing", {"limit": 10, "sort": "calls", "offset": cut["next_offset"]}
    )
    # The same rows as a window that overlaps both pages: the pages meet without a gap.
    around = registry.call(
        store, "functions_timing", {"limit": 15, "sort": "calls", "offset": shown - 5}
    )
    names = [row["name"] for row in around["functions"]]
    assert names[:5] == [row["name"] for row in first["functions"][-5:]]
    assert [row["name"] for row in after["functions"]] == names[5:]
    assert (after["offset"], after["shown"]) == (shown, 10) and "truncated" not in after


def test_a_small_answer_is_left_whole() -> None:
    store = _store_of(30)
    answer = registry.call(store, "functions_timing", {"limit": 100})
    assert answer["shown"] == 30 and "truncated" not in answer and "offset" not in answer
    assert next(iter(answer)) == "summary"

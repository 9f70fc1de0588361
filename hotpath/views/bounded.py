"""What every answer gets on its way out: a first line in plain words (``summary``), rows from
an ``offset``, and a size an agent can always read.

Claude Code stops reading a tool result at about 25,000 tokens; an answer is kept under
``MAX_CHARS`` characters of JSON (about 20,000 tokens at 4 characters a token, which JSON of
names and numbers does not go below), whatever ``limit`` asked: its rows are cut, and
``truncated`` says how many were left out and the ``offset`` that gets them.

A tool's summary is a template (``str.format``) filled from its answer, with ``row`` its
first row and ``count`` how many rows it has; a figure that does not exist yet reads "-".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hotpath.views.common import JSON
from hotpath.views.schema import INT, STR, Schema, obj

MAX_CHARS = 80_000


class _Dashed(dict[str, Any]):
    """A row whose missing figures (None) read "-" in a summary."""

    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key)
        if value is None:
            return "-"
        return _Dashed(value) if isinstance(value, Mapping) else value


def summarize(says: tuple[str, str], answer: JSON, rows: tuple[str, ...], name: str) -> str:
    """The answer in a line: ``says[0]`` when it has rows, ``says[1]`` when it has none."""
    listed = answer.get(rows[0], []) if rows else []
    template = says[0] if listed or not rows else says[1]
    fields = _Dashed({**answer, "row": listed[0] if listed else {}, "count": len(listed)})
    try:
        return template.format_map(fields)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        note = answer.get("note")
        return str(note) if note else f"{name}: nothing to show yet"


def bound(answer: JSON, rows: tuple[str, ...], offset: int) -> JSON:
    """Rows from ``offset``, then cut to stay under ``MAX_CHARS``."""
    if offset:
        for key in rows:
            answer[key] = answer[key][offset:]
        answer["offset"] = offset
    if not rows or len(json.dumps(answer)) <= MAX_CHARS:
        _count(answer, rows)
        return answer
    whole = {key: answer[key] for key in rows}
    fits, low, high = 0, 0, max(len(listed) for listed in whole.values())
    while low <= high:  # the most rows (the same number of each list) that fit
        middle = (low + high) // 2
        trial = {**answer, **{key: listed[:middle] for key, listed in whole.items()}}
        if len(json.dumps(trial)) + 200 <= MAX_CHARS:  # 200: room for `truncated`
            fits, low = middle, middle + 1
        else:
            high = middle - 1
    left_out = sum(max(0, len(listed) - fits) for listed in whole.values())
    for key, listed in whole.items():
        answer[key] = listed[:fits]
    answer["truncated"] = {
        "left_out": left_out,
        "next_offset": offset + fits,
        "note": (
            f"cut to stay under {MAX_CHARS:,} characters (about 20,000 tokens): {left_out} "
            f"more rows; ask again with offset={offset + fits} for the next ones"
        ),
    }
    _count(answer, rows)
    return answer


def _count(answer: JSON, rows: tuple[str, ...]) -> None:
    if rows and "shown" in answer:
        answer["shown"] = len(answer[rows[0]])


TRUNCATED = obj(left_out=INT, next_offset=INT, note=STR)


def envelope(output: Schema, rows: tuple[str, ...]) -> Schema:
    """``output`` with ``summary`` first, and ``offset`` and ``truncated`` where it has rows
    (on each shape of a ``one_of``)."""
    if "anyOf" in output:
        return {**output, "anyOf": [envelope(shape, rows) for shape in output["anyOf"]]}
    properties = {"summary": STR, **output["properties"]}
    required = ["summary", *(name for name in output["required"] if name != "summary")]
    if rows:
        properties.update(offset=INT, truncated=TRUNCATED)
    return {**output, "properties": properties, "required": required}

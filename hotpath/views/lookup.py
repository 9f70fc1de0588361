"""Finding an item by what an agent typed: its name or location, an unambiguous suffix of
either, or its id."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Protocol


class Named(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def name(self) -> str: ...


MAX_ID_DIGITS = 18  # ids fit in 64 bits
MAX_SHOWN = 80  # an unknown name is echoed back at most this long


class NotFound(LookupError):
    """No single item matches; the message lists the closest candidates."""


def find[T: Named](items: Sequence[T], wanted: str, kind: str) -> T:
    text = wanted.strip()
    if not text:
        raise NotFound(f"empty {kind} name")
    # ASCII digits of a sane length only: str.isdigit() also accepts "²" and other digits
    # that int() refuses, and a 5,000-digit string costs int() a refusal of its own.
    if len(text) <= MAX_ID_DIGITS and text.isascii() and text.isdigit():
        for item in items:
            if item.id == int(text):
                return item
    exact = [item for item in items if text in _names(item)]
    if len(exact) == 1:
        return exact[0]
    matches = exact or [
        item for item in items if any(_is_suffix(name, text) for name in _names(item))
    ]
    if len(matches) == 1:
        return matches[0]
    if matches:
        listed = ", ".join(f"{m.name} (id {m.id})" for m in matches[:10])
        raise NotFound(f"{kind} name {text!r} is ambiguous; candidates: {listed}")
    names = [item.name for item in items]
    close = difflib.get_close_matches(text, names, n=5, cutoff=0.5)
    close += [n for n in names if text.lower() in n.lower() and n not in close][: 5 - len(close)]
    by_name = {item.name: item.id for item in items}
    shown = text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"
    if close:
        hint = "closest: " + ", ".join(f"{n} (id {by_name[n]})" for n in close)
    else:
        hint = f"pass a name or id that the {kind} list shows" if items else f"no {kind} yet"
    raise NotFound(f"no {kind} named {shown!r}; {hint}")


def _names(item: Named) -> tuple[str, ...]:
    """What an item answers to: its name, and its location (`app.py:42`) where it has one."""
    location = getattr(item, "location", None)
    return (item.name, location) if isinstance(location, str) else (item.name,)


def _is_suffix(name: str, text: str) -> bool:
    # Suffixes count at a name boundary: `process_request` and `Handler.process_request` match
    # `app.Handler.process_request`, but `request` does not.
    return name.endswith("." + text) or name.endswith("/" + text)

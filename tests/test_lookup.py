"""Names as an agent types them: exact, suffix, location, id; errors list candidates."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from hotpath.views.lookup import NotFound, find


@dataclass
class Item:
    id: int
    name: str
    location: str


ITEMS = [
    Item(1, "app.Handler.process_request", "app.py:10"),
    Item(2, "app.Worker.process_request", "app.py:30"),
    Item(3, "app.parse", "app.py:50"),
    Item(4, "jobs", "pipeline/app.py:42"),
]


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("app.parse", 3),
        ("parse", 3),
        ("Handler.process_request", 1),
        ("3", 3),
        ("jobs", 4),
        ("pipeline/app.py:42", 4),
        ("app.py:42", 4),
        ("app.py:30", 2),
    ],
)
def test_finds_by_name_suffix_location_or_id(typed: str, expected: int) -> None:
    assert find(ITEMS, typed, "function").id == expected


def test_ambiguous_suffix_lists_the_candidates_with_ids() -> None:
    with pytest.raises(NotFound) as error:
        find(ITEMS, "process_request", "function")
    assert str(error.value) == (
        "function name 'process_request' is ambiguous; candidates: "
        "app.Handler.process_request (id 1), app.Worker.process_request (id 2)"
    )


def test_unknown_name_lists_the_closest() -> None:
    with pytest.raises(NotFound) as error:
        find(ITEMS, "app.pars", "function")
    assert str(error.value).startswith("no function named 'app.pars'; closest: app.parse (id 3)")


def test_partial_words_do_not_match_as_suffixes() -> None:
    with pytest.raises(NotFound):
        find(ITEMS, "request", "function")
    with pytest.raises(NotFound):
        find(ITEMS, "  ", "function")


@pytest.mark.parametrize("typed", ["²", "٣", "9" * 5000, "1" * 19])
def test_digit_strings_that_are_no_sane_id_are_names_not_found(typed: str) -> None:
    with pytest.raises(NotFound) as error:
        find(ITEMS, typed, "function")
    message = str(error.value)
    assert message.startswith("no function named ")
    assert len(message) < 300


def test_an_unknown_name_with_nothing_close_says_what_would_work() -> None:
    with pytest.raises(NotFound) as error:
        find(ITEMS, "zzzz", "function")
    assert str(error.value) == (
        "no function named 'zzzz'; pass a name or id that the function list shows"
    )
    with pytest.raises(NotFound) as error:
        find([], "zzzz", "function")
    assert str(error.value) == "no function named 'zzzz'; no function yet"

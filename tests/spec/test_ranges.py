"""find_available_range: tables written from the seed's loop, and agreement with it.

Each expected range below was worked out by hand from the seed's
``findAvailableRange`` (see the comment on each row), not from the spec.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given

from models.seed_loop import seed_find_available_range
from spec.errors import InvalidArgument
from spec.ranges import find_available_range, growth_sizes
from spec.vocabulary import (
    CHUNK_SIZE,
    HUGE_PAGE_SIZE,
    INT64_MAX,
    MAX_PAGE,
    PAGE_SIZE,
    UINT64_MAX,
    FileRange,
)
from tests.strategies import search_inputs

P = PAGE_SIZE
H = HUGE_PAGE_SIZE
C = CHUNK_SIZE
R = FileRange

TABLE = [
    # (allocated, file size, length, alignment, expected, why)
    ([], 0, P, P, R(C - P, C), "empty file: grows to one chunk, range at its very top"),
    ([], 0, H, H, R(C - H, C), "huge allocation in an empty file: top of the first chunk"),
    ([], C, P, P, R(C - P, C), "free file: the top page"),
    ([R(C - P, C)], C, P, P, R(C - 2 * P, C - P), "top-down: just below the last allocation"),
    ([R(0, C - P)], C, P, P, R(C - P, C), "exact fit in the only gap at the top"),
    ([R(0, 10 * P), R(11 * P, C)], C, P, P, R(10 * P, 11 * P), "exact fit in a one-page hole"),
    (
        [R(0, 10 * P), R(11 * P, C)],
        C,
        2 * P,
        P,
        R(2 * C - 2 * P, 2 * C),
        "hole too small: the file doubles and the range goes to its new top",
    ),
    (
        [R(P, 2 * P), R(H + 2 * P, C)],
        C,
        H,
        H,
        R(2 * C - H, 2 * C),
        "gap [2P, H+2P) is H long but its aligned start 0 lies below it: no fit; grow",
    ),
    (
        [R(0, P), R(2 * H + P, C)],
        C,
        H,
        H,
        R(H, 2 * H),
        "alignment pushes the fit down: the top fit would start at H+P, aligned down to H",
    ),
    ([R(0, C)], C, P, P, R(2 * C - P, 2 * C), "full file: doubles to 2C"),
    ([R(0, 4 * C)], 4 * C, P, P, R(8 * C - P, 8 * C), "large full file: doubles once"),
    ([R(0, C)], C, 3 * C, P, R(C, 4 * C), "needs two doublings: 2C is too small for 3C above C"),
    ([], 1 << 62, P, P, R((1 << 62) - P, 1 << 62), "a free 2^62 file still fits"),
    ([R(0, 1 << 62)], 1 << 62, P, P, None, "a full 2^62 file cannot double within int64: ENOMEM"),
    ([R(0, (1 << 62) - P)], 1 << 62, 2 * P, P, None, "one free page at 2^62 is not enough: ENOMEM"),
    ([], 0, 1 << 62, P, R(0, 1 << 62), "the largest length that fits: the whole 2^62 file"),
    ([], 0, (1 << 62) + P, P, None, "longer than any int64 file can grow: ENOMEM"),
    ([], 0, MAX_PAGE, P, None, "length near 2^64: ENOMEM without wrapping"),
    ([], C, 1 << 63, P, None, "length 2^63 exceeds 2C by far (gVisor e61acfb5eaec's wrap): ENOMEM"),
]


@pytest.mark.parametrize(
    ("allocated", "file_size", "length", "alignment", "expected", "why"),
    TABLE,
    ids=[row[5] for row in TABLE],
)
def test_table(
    allocated: list[FileRange],
    file_size: int,
    length: int,
    alignment: int,
    expected: FileRange | None,
    why: str,
) -> None:
    assert find_available_range(allocated, file_size, length, alignment) == expected
    assert seed_find_available_range(allocated, file_size, length, alignment) == expected


def test_growth_doubles_whatever_it_is_given() -> None:
    assert list(growth_sizes(0))[:3] == [C, 2 * C, 4 * C]
    assert next(growth_sizes(3 * P)) == 6 * P
    sizes = list(growth_sizes(C))
    assert sizes[-1] == 1 << 62 and len(sizes) == 62 - 30
    assert list(growth_sizes(1 << 62)) == []


def test_non_chunk_file_size_grows_by_doubling_it() -> None:
    # A 3-page file, full: doubles to 6 pages (not to a chunk).
    assert find_available_range([R(0, 3 * P)], 3 * P, P, P) == R(5 * P, 6 * P)


def test_ranges_awaiting_reclaim_count_as_allocated() -> None:
    # Adjacent ranges (different values in the usage set) leave no gap between them.
    allocated = [R(C - 2 * P, C - P), R(C - P, C)]
    assert find_available_range(allocated, C, P, P) == R(C - 3 * P, C - 2 * P)


@pytest.mark.parametrize(
    ("length", "alignment", "file_size"),
    [
        (0, P, C),
        (P + 1, P, C),
        (MAX_PAGE + P, P, C),
        (P, 3 * P, C),
        (P, 0, C),
        (P, P, -1),
        (P, P, INT64_MAX + 1),
    ],
)
def test_preconditions_are_checked(length: int, alignment: int, file_size: int) -> None:
    with pytest.raises(InvalidArgument):
        find_available_range([], file_size, length, alignment)


def test_allocated_ranges_must_be_sorted_disjoint_and_inside() -> None:
    with pytest.raises(InvalidArgument):
        find_available_range([R(2 * P, 3 * P), R(0, P)], C, P, P)
    with pytest.raises(InvalidArgument):
        find_available_range([R(0, 2 * C)], C, P, P)


@given(search_inputs())
@example(([], 0, 1 << 63, P))
@example(([R(0, (1 << 62) - P)], 1 << 62, P, 1 << 63))
@example(([], INT64_MAX, MAX_PAGE, 1))
def test_declarative_spec_equals_the_seed_loop(
    inputs: tuple[list[FileRange], int, int, int],
) -> None:
    allocated, file_size, length, alignment = inputs
    expected = seed_find_available_range(allocated, file_size, length, alignment)
    found = find_available_range(allocated, file_size, length, alignment)
    assert found == expected
    if found is not None:
        # Aligned, of the length asked for, no wrap, free.
        assert found.start % alignment == 0 and found.length() == length
        assert found.end <= UINT64_MAX
        assert not any(found.overlaps(fr) for fr in allocated)

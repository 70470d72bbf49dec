"""Hypothesis strategies more than one test module draws from (written once, here).

* :func:`search_inputs` — inputs of ``findAvailableRange``: allocated ranges,
  a file size, a length, an alignment, with the edge values of each (the
  spec's tests and ``impl.segments``' both compare against the seed's loop);
* :func:`range_operations` — add, remove and pop_last on a set of ranges.
"""

from __future__ import annotations

from hypothesis import strategies as st

from spec.vocabulary import CHUNK_SIZE, HUGE_PAGE_SIZE, INT64_MAX, MAX_PAGE, PAGE_SIZE, FileRange

P = PAGE_SIZE
H = HUGE_PAGE_SIZE
C = CHUNK_SIZE

SearchInputs = tuple[list[FileRange], int, int, int]
"""(allocated ranges, sorted and disjoint; file size; length; alignment)."""


@st.composite
def search_inputs(draw: st.DrawFn, *, unaligned: bool = False) -> SearchInputs:
    """Inputs of a range search. ``unaligned``: boundaries need not be page-aligned."""
    file_size = draw(
        st.one_of(
            st.sampled_from([0, C, 2 * C, 1 << 62, (1 << 62) + P, INT64_MAX, INT64_MAX - P]),
            st.integers(0, 64).map(lambda n: n * P),
            st.integers(0, INT64_MAX),
        )
    )
    unit = draw(st.sampled_from([P, P, 1])) if unaligned else P
    points = sorted(draw(st.lists(st.integers(0, file_size // unit), max_size=12)))
    allocated = [
        FileRange(a * unit, b * unit)
        for a, b in zip(points[::2], points[1::2], strict=False)
        if a < b
    ]
    length = P * draw(
        st.one_of(
            st.integers(1, 1024),
            st.sampled_from([H // P, MAX_PAGE // P, (1 << 62) // P, (1 << 63) // P]),
            st.integers(1, MAX_PAGE // P),
        )
    )
    alignment = 1 << draw(st.integers(0, 63))
    return allocated, file_size, length, alignment


def range_operations(limit: int) -> st.SearchStrategy[list[tuple[str, int, int]]]:
    """Operations ``(name, start, end)`` on a range set over ``[0, limit)``; pop_last has (0, 0)."""
    bounds = st.tuples(st.integers(0, limit), st.integers(1, limit // 4))
    change = st.builds(
        lambda name, b: (name, b[0], b[0] + b[1]), st.sampled_from(["add", "remove"]), bounds
    )
    return st.lists(st.one_of(change, change, st.just(("pop_last", 0, 0))), max_size=40)

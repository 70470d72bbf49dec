"""impl.segments: examples per operation, then random sequences against spec.rangemap.

The naive model is the specification's ``RangeMap`` (canonical, O(n), obviously
right); ``find_available_range`` is compared with ``spec.ranges`` and with the
seed's loop. ``check()`` runs after every step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import SupportsIndex

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from impl.segments import DEFAULT_LOAD, MAX_KEY, GapSet, SegmentSet
from models.seed_loop import seed_find_available_range
from spec.rangemap import RangeMap, range_set
from spec.ranges import find_available_range
from spec.vocabulary import CHUNK_SIZE, HUGE_PAGE_SIZE, INT64_MAX, MAX_PAGE, PAGE_SIZE, FileRange
from tests.strategies import SearchInputs as Inputs
from tests.strategies import search_inputs

P = PAGE_SIZE
H = HUGE_PAGE_SIZE
C = CHUNK_SIZE
R = FileRange

LOADS = [4, DEFAULT_LOAD]
"""A tiny leaf load exercises splits and joins of leaves; the default, the usual paths."""


def new_set(load: int) -> SegmentSet[str]:
    return SegmentSet(load=load)


def build(load: int, entries: list[tuple[int, int, str]]) -> SegmentSet[str]:
    segments = new_set(load)
    for start, end, value in entries:
        segments.insert(start, end, value)
        segments.check()
    return segments


# --- SegmentSet examples -----------------------------------------------------------


@pytest.mark.parametrize("load", LOADS)
def test_insert_merges_with_equal_neighbours_only(load: int) -> None:
    segments = build(load, [(0, 10, "a"), (20, 30, "a"), (30, 40, "b")])
    assert list(segments) == [(0, 10, "a"), (20, 30, "a"), (30, 40, "b")]
    segments.insert(10, 20, "a")
    segments.check()
    assert list(segments) == [(0, 30, "a"), (30, 40, "b")]
    segments.insert(40, 50, "b")
    segments.insert(60, 70, "b")
    segments.insert(50, 60, "c")
    segments.check()
    assert list(segments) == [(0, 30, "a"), (30, 50, "b"), (50, 60, "c"), (60, 70, "b")]
    assert len(segments) == 4


@pytest.mark.parametrize("load", LOADS)
def test_insert_rejects_ranges_that_are_not_free(load: int) -> None:
    segments = build(load, [(10, 20, "a")])
    for start, end in [(5, 11), (19, 25), (12, 13), (0, 30), (10, 20), (7, 7), (8, 3)]:
        with pytest.raises(ValueError, match="not a non-empty free range"):
            segments.insert(start, end, "b")
    segments.check()
    assert list(segments) == [(10, 20, "a")]


@pytest.mark.parametrize("load", LOADS)
def test_update_splits_applies_and_remerges(load: int) -> None:
    segments = build(load, [(0, 100, "a"), (100, 200, "b"), (300, 400, "a")])
    segments.update(50, 350, lambda v: v + "!")
    segments.check()
    assert list(segments) == [
        (0, 50, "a"),
        (50, 100, "a!"),
        (100, 200, "b!"),
        (300, 350, "a!"),
        (350, 400, "a"),
    ]
    # Undoing the change merges everything back, across the update's boundaries.
    segments.update(0, 400, lambda v: v.rstrip("!"))
    segments.check()
    assert list(segments) == [(0, 100, "a"), (100, 200, "b"), (300, 400, "a")]
    segments.update(0, 400, lambda v: "z")
    assert list(segments) == [(0, 200, "z"), (300, 400, "z")]


@pytest.mark.parametrize("load", LOADS)
def test_update_of_a_gap_changes_nothing(load: int) -> None:
    segments = build(load, [(0, 10, "a"), (20, 30, "a")])
    segments.update(10, 20, lambda v: "never called " + v)
    segments.check()
    assert list(segments) == [(0, 10, "a"), (20, 30, "a")]


@pytest.mark.parametrize("load", LOADS)
def test_remove_clips_and_frees(load: int) -> None:
    segments = build(load, [(0, 100, "a"), (100, 200, "b"), (300, 400, "c")])
    segments.remove(50, 350)
    segments.check()
    assert list(segments) == [(0, 50, "a"), (350, 400, "c")]
    assert segments.first_gap(0, 400) == (50, 350)
    segments.insert(50, 350, "a")
    assert list(segments) == [(0, 350, "a"), (350, 400, "c")]
    segments.remove(0, MAX_KEY)
    segments.check()
    assert list(segments) == [] and len(segments) == 0


@pytest.mark.parametrize("load", LOADS)
def test_queries(load: int) -> None:
    segments = build(load, [(10, 20, "a"), (20, 30, "b"), (40, 50, "c")])
    assert segments.lower_bound(0) == (10, 20, "a")
    assert segments.lower_bound(19) == (10, 20, "a")
    assert segments.lower_bound(20) == (20, 30, "b")
    assert segments.lower_bound(35) == (40, 50, "c")
    assert segments.lower_bound(50) is None
    assert segments.first_gap(10, 30) is None
    assert segments.first_gap(15, 45) == (30, 40)
    assert segments.first_gap(0, 5) == (0, 5)
    assert segments.first_gap(45, 60) == (50, 60)
    assert segments.segments(15, 45) == [(15, 20, "a"), (20, 30, "b"), (40, 45, "c")]
    assert segments.segments(30, 40) == []


# --- find_available_range examples ---------------------------------------------------


def test_find_available_range_top_down_into_holes() -> None:
    segments: SegmentSet[str] = new_set(4)
    assert segments.find_available_range(0, P, P) == (C - P, C)
    # Fill one chunk leaving one-page holes: each search returns the highest hole.
    for page in range(0, 64, 2):
        segments.insert(page * P, (page + 1) * P, "x")
    expected = [(page * P, (page + 1) * P) for page in range(63, 0, -2)]
    found = []
    file_size = 64 * P
    for _ in expected:
        fit = segments.find_available_range(file_size, P, P)
        assert fit is not None
        found.append(fit)
        segments.insert(*fit, "x")
        segments.check()
    assert found == expected
    assert list(segments) == [(0, 64 * P, "x")]
    # Full: the file doubles.
    assert segments.find_available_range(file_size, P, P) == (2 * file_size - P, 2 * file_size)


def test_find_available_range_skips_gaps_too_small_or_misaligned() -> None:
    # Gaps: [0, P) too small, [2P, H + 2P) large enough but misaligned, [C, max) the last.
    segments = build(4, [(P, 2 * P, "a"), (H + 2 * P, C, "b")])
    assert segments.find_available_range(C, H, H) == (2 * C - H, 2 * C)
    # [0, H + 2P) once the first segment is gone: the aligned fit is [0, H).
    segments.remove(P, 2 * P)
    assert segments.find_available_range(C, H, H) == (0, H)


# --- GapSet examples ----------------------------------------------------------------


def test_range_set_union_difference_and_pop() -> None:
    ranges = GapSet()
    assert not ranges and ranges.last() is None and ranges.pop_last() is None
    ranges.add(10, 20)
    ranges.add(30, 40)
    ranges.add(20, 25)
    ranges.check()
    assert list(ranges) == [(10, 25), (30, 40)]
    ranges.add(5, 35)
    assert list(ranges) == [(5, 40)]
    ranges.remove(10, 15)
    ranges.remove(38, 50)
    ranges.check()
    assert list(ranges) == [(5, 10), (15, 38)]
    assert ranges.last() == (15, 38)
    assert ranges.pop_last() == (15, 38)
    assert list(ranges) == [(5, 10)] and ranges
    ranges.clear()
    ranges.check()
    assert not ranges and list(ranges) == []


# --- random sequences against the naive model --------------------------------------------

VALUES = ["a", "b", "c"]
positions = st.one_of(st.integers(0, 40), st.integers(MAX_KEY - 40, MAX_KEY))


def _short(kind: str, start: int, length: int, value: str) -> Operation:
    return kind, start, min(MAX_KEY, start + length), value


def _long(kind: str, a: int, b: int, value: str) -> Operation:
    return kind, min(a, b), max(a, b), value


Operation = tuple[str, int, int, str]

KINDS = st.sampled_from(["insert", "update", "remove", "insert"])
short_operations = st.builds(_short, KINDS, positions, st.integers(0, 3), st.sampled_from(VALUES))
long_operations = st.builds(_long, KINDS, positions, positions, st.sampled_from(VALUES))
# Mostly short spans, so that inserts succeed and the sets grow many leaves.
operations = st.lists(
    st.one_of(short_operations, short_operations, long_operations), min_size=20, max_size=60
)


def _model_apply(model: RangeMap[str], op: Operation) -> RangeMap[str] | None:
    """The model after ``op``, or None if the set must reject it."""
    kind, start, end, value = op
    fr = R(start, end)
    if kind == "insert":
        if start >= end or next(model.within(fr), None) is not None:
            return None
        return model.assign(fr, value)
    if kind == "update":
        return model.update(fr, lambda _: value)
    return model.remove(fr)


def _apply(segments: SegmentSet[str], op: Operation) -> None:
    kind, start, end, value = op
    if kind == "insert":
        segments.insert(start, end, value)
    elif kind == "update":
        segments.update(start, end, lambda _: value)
    else:
        segments.remove(start, end)


def _assert_agrees(segments: SegmentSet[str], model: RangeMap[str], probe: int) -> None:
    assert list(segments) == list(model.entries)
    assert len(segments) == len(model)
    window = R(min(probe, 20), max(probe, 20))
    expected_lb = next(((s, e, v) for s, e, v in model.entries if e > probe), None)
    assert segments.lower_bound(probe) == expected_lb
    assert segments.segments(*window) == [
        (p.start, p.end, v) for p, v in model.within(window) if p.start < p.end
    ]
    expected_gap = next(model.gaps_within(window), None)
    assert segments.first_gap(*window) == (
        None if expected_gap is None else (expected_gap.start, expected_gap.end)
    )


@pytest.mark.parametrize("load", [2, 4])
@given(ops=operations)
def test_random_sequences_agree_with_rangemap(load: int, ops: list[Operation]) -> None:
    segments = new_set(load)
    model: RangeMap[str] = RangeMap()
    for op in ops:
        probe = op[1]
        after = _model_apply(model, op)
        if after is None:
            with pytest.raises(ValueError, match="not a non-empty free range"):
                _apply(segments, op)
        else:
            _apply(segments, op)
            model = after
        segments.check()
        _assert_agrees(segments, model, probe)


def _range_set_op(op: Operation) -> tuple[str, int, int]:
    kind, start, end, value = op
    if kind == "update":
        kind = "clear" if value == "c" else "pop_last"
    return ("add" if kind == "insert" else kind), start, end


range_set_ops = st.lists(
    st.one_of(short_operations, short_operations, long_operations).map(_range_set_op),
    min_size=20,
    max_size=60,
)


@given(range_set_ops)
def test_range_set_agrees_with_rangemap(ops: list[tuple[str, int, int]]) -> None:
    ranges = GapSet(load=2)  # many small leaves: splits, joins, splices across leaves
    model = range_set([])
    for kind, start, end in ops:
        if kind == "add":
            ranges.add(start, end)
            model = range_set([*model.ranges(), R(start, end)])
        elif kind == "remove":
            ranges.remove(start, end)
            model = model.remove(R(start, end))
        elif kind == "pop_last":
            last = model.last()
            assert ranges.pop_last() == (None if last is None else tuple(last[0]))
            if last is not None:
                model = model.remove(last[0])
        else:
            ranges.clear()
            model = range_set([])
        ranges.check()
        assert list(ranges) == [(p.start, p.end) for p in model.ranges()]
        assert bool(ranges) == bool(model)
        last = model.last()
        assert ranges.last() == (None if last is None else tuple(last[0]))


# --- find_available_range against the specification -------------------------------------


def _check_search(load: int, inputs: Inputs, value: Callable[[int], str]) -> None:
    allocated, file_size, length, alignment = inputs
    segments = build(load, [(fr.start, fr.end, value(i)) for i, fr in enumerate(allocated)])
    expected = find_available_range(allocated, file_size, length, alignment)
    assert expected == seed_find_available_range(allocated, file_size, length, alignment)
    found = segments.find_available_range(file_size, length, alignment)
    assert found == (None if expected is None else tuple(expected))


@pytest.mark.parametrize("load", LOADS)
@given(search_inputs(unaligned=True), st.booleans())
@example(([], 0, 1 << 63, P), False)
@example(([R(0, (1 << 62) - P)], 1 << 62, P, 1 << 63), False)
@example(([], INT64_MAX, MAX_PAGE, 1), False)
@example(([R(0, P), R(2 * P, INT64_MAX)], INT64_MAX, P, 1 << 63), True)
@example(([R(P, INT64_MAX)], INT64_MAX, P, P), False)
def test_find_available_range_equals_the_spec(load: int, inputs: Inputs, merge: bool) -> None:
    # With one value everywhere adjacent ranges merge; with distinct values they stay apart.
    _check_search(load, inputs, (lambda _: "v") if merge else str)


@st.composite
def seed_inputs(draw: st.DrawFn) -> Inputs:
    """Inputs beyond the spec's preconditions: segments anywhere, up to MAX_KEY."""
    points = sorted(draw(st.lists(st.one_of(positions, st.integers(0, MAX_KEY)), max_size=12)))
    allocated = [R(a, b) for a, b in zip(points[::2], points[1::2], strict=False) if a < b]
    file_size = draw(st.one_of(st.integers(0, 64), st.integers(0, INT64_MAX)))
    length = P * draw(st.one_of(st.integers(1, 4), st.integers(1, MAX_PAGE // P)))
    return allocated, file_size, length, 1 << draw(st.integers(0, 63))


@given(seed_inputs())
@example(([R(P, MAX_KEY)], C, P, P))  # no last gap at all
def test_find_available_range_is_the_seed_loop_even_beyond_the_spec(inputs: Inputs) -> None:
    allocated, file_size, length, alignment = inputs
    segments = build(2, [(fr.start, fr.end, str(i)) for i, fr in enumerate(allocated)])
    expected = seed_find_available_range(allocated, file_size, length, alignment)
    found = segments.find_available_range(file_size, length, alignment)
    assert found == (None if expected is None else tuple(expected))


def test_freeing_raises_a_bound_in_the_built_tree() -> None:
    segments = build(4, [(k * 2 * P, (k * 2 + 1) * P, "x") for k in range(40)])
    # A search for 3 pages finds nothing below: it builds the tree over the leaves.
    assert segments.find_available_range(80 * P, 3 * P, P) == (160 * P - 3 * P, 160 * P)
    assert segments._gaps._index is not None
    segments.remove(20 * P, 23 * P)  # a 5-page hole [19P, 24P) inside one leaf
    assert segments._gaps._index is not None
    segments.check()  # the tree agrees with the raised bound
    assert segments.find_available_range(80 * P, 3 * P, P) == (21 * P, 24 * P)


# --- allocation and freeing, as MemoryFile does them, against the specification ----------

Step = tuple[bool, int, int, int]
"""(allocate?, pages, value, pick): allocate ``pages`` with ``value``, or free live[pick]."""

steps = st.lists(
    st.tuples(
        st.booleans(),
        st.one_of(st.integers(1, 8), st.integers(1, 1200)),
        st.integers(0, 2),
        st.integers(0, 1 << 16),
    ),
    max_size=80,
)


@pytest.mark.parametrize("load", [2, 4])
@given(steps)
def test_allocations_and_frees_agree_with_the_spec(load: int, script: list[Step]) -> None:
    """Many small leaves, gaps of mixed sizes: searches cross leaves, bounds go stale."""
    segments: SegmentSet[int] = SegmentSet(load=load)
    file_size = 0
    live: list[tuple[int, int]] = []
    for allocate, pages, value, pick in script:
        if allocate or not live:
            length = pages * P
            alignment = H if length >= H else P
            allocated = [R(start, end) for start, end, _ in segments]
            expected = find_available_range(allocated, file_size, length, alignment)
            found = segments.find_available_range(file_size, length, alignment)
            assert found == (None if expected is None else tuple(expected))
            assert found is not None  # files here stay far below 2**63
            segments.insert(*found, value)
            live.append(found)
            if found[1] > file_size:
                file_size = (found[1] + C - 1) // C * C
        else:
            segments.remove(*live.pop(pick % len(live)))
        segments.check()


# --- the cost of a search: leaves visited, not gaps scanned -------------------------------


class CountingList(list[int]):
    """A leaf of sizes that counts how often it is read."""

    reads = 0

    def __getitem__(self, index: SupportsIndex) -> int:  # type: ignore[override]
        CountingList.reads += 1
        return super().__getitem__(index)


def _count_reads(segments: SegmentSet[str]) -> None:
    gaps = segments._gaps
    gaps._sizes[:] = [CountingList(leaf) for leaf in gaps._sizes]
    CountingList.reads = 0


def test_a_search_reads_a_few_leaves_not_every_gap() -> None:
    # 20,000 one-page holes, every 100th one 8 pages long instead. A search for
    # 8 pages must skip the small holes by their leaves' bounds.
    load = 16
    segments = new_set(load)
    position = 0
    big_holes = []
    for k in range(20_000):
        segments.insert(position, position + P, "x")
        hole_length = 8 * P if k % 100 == 0 else P
        if k % 100 == 0:
            big_holes.append((position + P, position + P + hole_length))
        position += P + hole_length
    segments.insert(position, position + P, "x")
    file_size = position + P
    _count_reads(segments)
    assert segments.find_available_range(file_size, 8 * P, P) == big_holes[-1]
    # Two leaves at most are scanned (the last, and the one found), plus O(1) reads.
    assert CountingList.reads <= 2 * 2 * load + 8
    # Filling the big holes leaves 200 leaves with stale bounds: the next search
    # tightens each once (and finds no room: the file must grow)...
    for hole in big_holes:
        segments.insert(*hole, "x")
    growth = (2 * file_size - 8 * P, 2 * file_size)
    assert segments.find_available_range(file_size, 8 * P, P) == growth
    segments.check()
    # ...after which the same search reads one leaf at most (the last gap's own).
    CountingList.reads = 0
    assert segments.find_available_range(file_size, 8 * P, P) == growth
    assert CountingList.reads <= 2 * load + 8


# --- the checks catch what they are for ----------------------------------------------


def _healthy() -> SegmentSet[str]:
    segments = build(4, [(i * 10, i * 10 + 5, "a") for i in range(20)])
    segments.insert(5, 10, "b")
    segments.find_available_range(C, P, P)  # builds the gap tree if a search needs it
    segments._gaps._build_tree()
    segments.check()
    return segments


def _empty_leaf(s: SegmentSet[str]) -> None:
    s._starts.append([])
    s._ends.append([])
    s._vals.append([])
    s._lasts.append(MAX_KEY)


def _tree_disagrees(s: SegmentSet[str]) -> None:
    tree = s._gaps._index
    assert tree is not None
    tree[1] = 0


CORRUPTIONS: list[tuple[str, Callable[[SegmentSet[str]], object]]] = [
    ("unmerged neighbours", lambda s: s._vals[0].__setitem__(1, "a")),
    ("overlap", lambda s: s._ends[0].__setitem__(0, 7)),
    ("stale leaf end", lambda s: s._lasts.__setitem__(0, s._lasts[0] + 1)),
    ("stale length", lambda s: setattr(s, "_len", s._len + 1)),
    ("empty leaf", _empty_leaf),
    ("gaps not the complement", lambda s: s._gaps.remove(196, 197)),
    ("bound too low", lambda s: s._gaps._bounds.__setitem__(0, 1)),
    ("tree disagrees", _tree_disagrees),
    ("touching gaps", lambda s: s._gaps._sizes[0].__setitem__(1, 6)),
]


@pytest.mark.parametrize(("what", "corrupt"), CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
def test_check_catches(what: str, corrupt: Callable[[SegmentSet[str]], object]) -> None:
    segments = _healthy()
    corrupt(segments)
    with pytest.raises(AssertionError):
        segments.check()


def test_changing_the_set_while_iterating_raises() -> None:
    segments = build(4, [(0, 10, "a"), (20, 30, "a")])
    with pytest.raises(RuntimeError, match="changed during iteration"):
        for start, end, _ in segments:
            segments.update(start, end, lambda v: v + "!")


def test_update_calls_fn_once_per_part_in_order() -> None:
    segments = build(4, [(0, 10, "a"), (10, 20, "b"), (30, 40, "c")])
    seen: list[str] = []

    def fn(value: str) -> str:
        seen.append(value)
        return value.upper()

    segments.update(5, 35, fn)
    assert seen == ["a", "b", "c"]
    assert list(segments) == [
        (0, 5, "a"),
        (5, 10, "A"),
        (10, 20, "B"),
        (30, 35, "C"),
        (35, 40, "c"),
    ]


def test_leaves_must_hold_at_least_two_entries() -> None:
    with pytest.raises(ValueError, match="load must be at least 2"):
        SegmentSet(load=1)

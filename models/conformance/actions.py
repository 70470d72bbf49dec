"""The alphabet of operation sequences: what generated vectors and ``conform`` are made of.

An action looks at the specification's current state (through the
:class:`Recorder`) and issues one or two requests that a well-behaved
client could make — references only on live pages, writes only into live
pages, evictable ranges of a few users — plus, now and then, an
out-of-contract call, or (feature ``kernel-faults``) a change of the kernel
calls that fail. Two ways to choose:

* :data:`EXHAUSTIVE` actions take no choices (each picks the first
  candidate), so every short sequence of them can be enumerated;
* :func:`random_step` draws an action and its arguments with hypothesis, so
  the same code serves the corpus (derandomized) and ``conform``
  (randomized, shrinking to a minimal trace). Draws are ordered so that
  hypothesis shrinks towards small, early, simple choices.

Actions needing a feature the port lacks are never drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol, TypeVar

from hypothesis import strategies as st

from models.conformance import codec
from models.conformance.protocol import OP_FEATURES
from models.conformance.recorder import HOST, MODEL, Range, Recorder
from spec.rangemap import range_set
from spec.vocabulary import (
    CHUNK_SIZE,
    HUGE_PAGE_SIZE,
    MILLISECOND,
    PAGE_SIZE,
    READ,
    SECOND,
    AccessType,
    DelayedEviction,
    FileRange,
    MemoryFileOpts,
)

T = TypeVar("T")
USERS = ("a", "b", "c")
KINDS = ("Anonymous", "PageCache", "System", "Tmpfs", "Ramdiskfs", "Mapped")
CLOCK_STEPS = (20 * MILLISECOND, 0, 5 * MILLISECOND, 10 * MILLISECOND, SECOND, 1500 * MILLISECOND)


class Draw(Protocol):
    """``hypothesis.strategies.DataObject.draw``."""

    def __call__(self, strategy: st.SearchStrategy[T], label: Any = None) -> T: ...


# --- What the state offers ---------------------------------------------------------------


def segments(r: Recorder, *, live: bool) -> list[FileRange]:
    """The usage set's segments, lowest first; only those with references if ``live``."""
    if not r.live:
        return []
    return [fr for fr, info in r.port.spec.state.usage if info.refs > 0 or not live]


def file_size(r: Recorder) -> int:
    return r.port.spec.state.file_size if r.live else 0


def mappings(r: Recorder) -> list[tuple[int, FileRange]]:
    return sorted((number, m.range) for number, m in r.port.mappings.items())


def _range(fr: Range) -> list[str]:
    return codec.range_json(*fr)


# --- Exhaustive actions: no choices ---------------------------------------------------------


def _first(r: Recorder, *, live: bool) -> FileRange | None:
    found = segments(r, live=live)
    return found[0] if found else None


def x_allocate(r: Recorder) -> None:
    r.allocate(2 * PAGE_SIZE)


def x_free(r: Recorder) -> None:
    """dec_ref the first page of the lowest live segment (out of contract if there is none)."""
    fr = _first(r, live=True)
    r.dec_ref((fr.start, fr.start + PAGE_SIZE) if fr else (0, PAGE_SIZE))


def x_ref(r: Recorder) -> None:
    fr = _first(r, live=True)
    r.inc_ref(fr if fr else (0, PAGE_SIZE))


def x_decommit(r: Recorder) -> None:
    fr = _first(r, live=False)
    r.decommit(fr if fr else (0, PAGE_SIZE))


def x_touch(r: Recorder) -> None:
    """Write a byte into the lowest live segment; with none, map (read) the first page."""
    fr = _first(r, live=True)
    if fr is None:
        r.map((0, PAGE_SIZE), READ)
    else:
        r.touch(fr, b"\x2a")


def x_reclaim(r: Recorder) -> None:
    r.simple("reclaim")


def x_usage(r: Recorder) -> None:
    r.update_usage()


EXHAUSTIVE: dict[str, Callable[[Recorder], None]] = {
    "allocate": x_allocate,
    "free": x_free,
    "ref": x_ref,
    "decommit": x_decommit,
    "touch": x_touch,
    "reclaim": x_reclaim,
    "usage": x_usage,
}


# --- Random actions ----------------------------------------------------------------------------


def _choose(draw: Draw, candidates: Sequence[T]) -> T:
    """One of ``candidates`` (shrinking to the first), by exactly one choice.

    ``sampled_from`` of one candidate makes no choice at all. Then dropping an
    earlier step that changes how many candidates there are would shift
    every later choice, and the shrinker could not drop that step. And a
    ``sampled_from`` of functions has a repr holding their addresses, which
    hypothesis's derandomized generation depends on: the corpus would then
    change with the memory layout of the generating process.
    """
    return candidates[draw(st.integers(0, len(candidates) - 1))]


def _pages(draw: Draw, fr: FileRange) -> Range:
    """A non-empty page-aligned part of ``fr``."""
    pages = fr.length() // PAGE_SIZE
    first = draw(st.integers(0, pages - 1))
    count = draw(st.integers(1, pages - first))
    return fr.start + first * PAGE_SIZE, fr.start + (first + count) * PAGE_SIZE


def _length(r: Recorder, draw: Draw, features: Collection[str]) -> int:
    """A length to allocate: mostly a few pages, sometimes huge, a chunk, or too long.

    Whole chunks are not drawn under manual zeroing (the port would write a
    GiB of zeroes), and over-long lengths are only ever ones that fail with
    ENOMEM: a file that really grew near 2**62 bytes could never be scanned
    by update_usage (nor by the seed: it maps every chunk of a segment).

    Every length takes the same two choices, and only the rarest ones depend
    on the options: so the shrinker can turn one length into a smaller one,
    or drop manual zeroing, without shifting or changing any other choice.
    """
    size = draw(st.integers(0, 10))
    variant = draw(st.integers(0, 1))
    if size <= 6:
        return (size + 1) * PAGE_SIZE
    if size == 7:
        return HUGE_PAGE_SIZE + variant * PAGE_SIZE
    if size == 9 and not (r.live and r.port.spec.state.opts.manual_zeroing):
        return CHUNK_SIZE
    if size == 10:  # never fits, never grows the file: plain alloc
        return 1 << 63 if variant else (1 << 62) + PAGE_SIZE
    return 2 * HUGE_PAGE_SIZE


def a_allocate(r: Recorder, draw: Draw, features: Collection[str]) -> None:
    r.allocate(_length(r, draw, features), draw(st.sampled_from(KINDS)))


def _allocate_instead(r: Recorder, draw: Draw, features: Collection[str]) -> None:
    """An action with nothing to act on allocates instead, if the port allocates."""
    if "alloc" in features:
        a_allocate(r, draw, features)


def a_fill(r: Recorder, draw: Draw, features: Collection[str]) -> None:
    length = (draw(st.integers(0, 3)) + 1) * PAGE_SIZE
    count = draw(st.integers(0, length + 100))
    error = draw(st.sampled_from([None, "EIO"]))
    r.fill(length, count, draw(st.sampled_from(KINDS)), reader_error=error)


def _on_segment(op: str, *, live: bool) -> Callable[[Recorder, Draw, Collection[str]], None]:
    def action(r: Recorder, draw: Draw, features: Collection[str]) -> None:
        candidates = segments(r, live=live)
        if candidates:
            r.call({"op": op, "range": _range(_pages(draw, _choose(draw, candidates)))})
        else:
            _allocate_instead(r, draw, features)

    action.__name__ = f"a_{op}"
    return action


def a_write(r: Recorder, draw: Draw, features: Collection[str]) -> None:
    """Map part of a live segment and write a few bytes into it."""
    candidates = segments(r, live=True)
    if not candidates:
        return _allocate_instead(r, draw, features)
    fr = FileRange(*_pages(draw, _choose(draw, candidates)))
    mapping = r.map(fr)
    if mapping is not None:
        offset = draw(st.integers(fr.start, fr.end - 1))
        count = min(draw(st.integers(1, 64)), fr.end - offset)
        r.write(mapping, offset, draw(st.binary(min_size=count, max_size=count)))
    return None


def a_read(r: Recorder, draw: Draw, features: Collection[str]) -> None:
    known = mappings(r)
    if not known:
        return a_write(r, draw, features)
    number, fr = _choose(draw, known)
    start = draw(st.integers(fr.start, fr.end - 1))
    end = min(fr.end, start + draw(st.integers(1, 64)))
    r.read(number, (start, end))
    return None


def _evictable(draw: Draw) -> Range:
    start = draw(st.integers(0, 15)) * 16
    return start, start + draw(st.integers(0, 4)) * 16


def a_mark_evictable(r: Recorder, draw: Draw, features: Collection[str]) -> None:
    r.mark_evictable(draw(st.sampled_from(USERS)), _evictable(draw))


def a_mark_unevictable(r: Recorder, draw: Draw, features: Collection[str]) -> None:
    """Unmark a range; without feature unmark-empty, never an empty one.

    The feature is derived from the ranges the last ``state`` step showed
    (:func:`~models.conformance.vector.derive_features`), which may differ
    from the state now (an eviction since): so, without it, no empty range
    at all (the corpus holds the empty ones that need no feature).
    """
    user = draw(st.sampled_from(USERS))
    start, end = _evictable(draw)
    if "unmark-empty" not in features and start == end:
        end = start + 16
    r.mark_unevictable(user, (start, end))


def a_mark_all_unevictable(r: Recorder, draw: Draw, features: Collection[str]) -> None:
    r.mark_all_unevictable(draw(st.sampled_from(USERS)))


def _simple(op: str) -> Callable[[Recorder, Draw, Collection[str]], None]:
    def action(r: Recorder, draw: Draw, features: Collection[str]) -> None:
        r.simple(op)

    action.__name__ = f"a_{op}"
    return action


def a_update_usage(r: Recorder, draw: Draw, features: Collection[str]) -> None:
    """update_usage with the model's pages, some of them, extra ones, or the real host's."""
    advance = draw(st.sampled_from(CLOCK_STEPS))
    how = draw(st.sampled_from(["model", "fewer", "more", "host"]))
    if how == "host" and "host" in features:
        r.update_usage(advance, HOST)
        return
    committed = r.model_committed()
    if how == "fewer" and committed:
        committed = [run for run in committed if draw(st.booleans())]
    elif how == "more":
        # Pages no live segment holds: update_usage books them as swap.
        live = segments(r, live=True)
        size = file_size(r)
        extra = [
            (page, page + PAGE_SIZE)
            for page in range(0, min(size, 16 * PAGE_SIZE), PAGE_SIZE)
            if not any(fr.contains(page) for fr in live)
        ][: draw(st.integers(1, 4))]
        committed = [(fr.start, fr.end) for fr in _union(committed, extra)]
    r.update_usage(advance, committed if how != "model" else MODEL)


def _union(first: list[Range], second: list[Range]) -> list[FileRange]:
    return list(range_set(FileRange(*fr) for fr in (*first, *second)).ranges())


def a_bad_call(r: Recorder, draw: Draw, features: Collection[str]) -> None:
    """An out-of-contract call (or an EACCES one): the port must reject it and change nothing.

    Only calls of ops in ``features`` (see ``protocol.OP_FEATURES``) are drawn.
    """
    size = file_size(r)
    beyond = (size, size + PAGE_SIZE)
    range_ops = [op for op in ("inc_ref", "dec_ref", "decommit") if OP_FEATURES[op] in features]
    calls: list[tuple[bool, Callable[[], object]]] = [
        (
            "alloc" in features,
            lambda: r.allocate(draw(st.sampled_from([0, PAGE_SIZE + 1, PAGE_SIZE - 1]))),
        ),
        (
            bool(range_ops),
            lambda: r.call({"op": draw(st.sampled_from(range_ops)), "range": _range(beyond)}),
        ),
        ("refcount" in features, lambda: r.dec_ref((PAGE_SIZE, 1))),
        ("refcount" in features, lambda: r.inc_ref((0, PAGE_SIZE + 1))),
        ("map" in features, lambda: r.map(beyond, READ)),
        ("map" in features, lambda: r.map((0, PAGE_SIZE), AccessType(read=True, execute=True))),
        ("evict" in features, lambda: r.mark_evictable(draw(st.sampled_from(USERS)), (9, 3))),
    ]
    allowed = [call for supported, call in calls if supported]
    if allowed:
        _choose(draw, allowed)()


FAULT_SETS: tuple[dict[str, str], ...] = (
    {},
    {"mmap": "ENOMEM"},
    {"mincore": "EAGAIN"},
    {"ftruncate": "ENOSPC"},
    {"punch_hole": "EIO"},
    {"punch_hole": "EIO", "mmap": "ENOMEM"},
    {"ftruncate": "ENOSPC", "mmap": "ENOMEM", "mincore": "EAGAIN"},
)
"""What ``set_faults`` injects: the first (shrunk to) clears every fault; the last but one is
the reclaimer's double fault (docs/divergences.md F1)."""


def a_set_faults(r: Recorder, draw: Draw, features: Collection[str]) -> None:
    """Change the failing kernel calls: pick a set, or (half the time) clear them.

    A punch-hole fault is feature ``faults``: without it, only the sets lacking one.
    """
    allowed = [f for f in FAULT_SETS if "faults" in features or "punch_hole" not in f]
    faults = _choose(draw, allowed)
    r.set_faults(**({} if draw(st.booleans()) else faults))


RandomAction = Callable[[Recorder, Draw, Collection[str]], None]

ACTIONS: list[tuple[RandomAction, int, str]] = [
    (a_allocate, 8, "alloc"),
    (_on_segment("dec_ref", live=True), 6, "refcount"),
    (_simple("reclaim"), 4, "reclaim"),
    (_on_segment("inc_ref", live=True), 2, "refcount"),
    (a_fill, 2, "fill"),
    (_on_segment("decommit", live=False), 2, "decommit"),
    (a_write, 3, "map"),
    (a_read, 2, "map"),
    (a_update_usage, 3, "usage"),
    (a_mark_evictable, 2, "evict"),
    (a_mark_unevictable, 1, "evict"),
    (a_mark_all_unevictable, 1, "evict"),
    (_simple("start_evictions"), 1, "evict"),
    (_simple("run_evictions"), 2, "evict"),
    (_simple("memcg_pressure"), 1, "memcg"),
    (_simple("total_size"), 1, "alloc"),
    (_simple("should_cache_evictable"), 1, "evict"),
    (_simple("total_usage"), 1, "host"),
    (a_bad_call, 2, "bad-input"),
    (a_set_faults, 4, "kernel-faults"),
]
"""(action, weight, the feature it needs); the first is what hypothesis shrinks towards.
Every request an action sends belongs to that feature (``protocol.OP_FEATURES``), or to a
feature it checks for before sending (a fallback allocation needs ``alloc``)."""


ALSO_NEEDS = {"fill": "alloc", "refcount": "alloc", "decommit": "alloc", "map": "alloc"}
"""Features whose actions act on allocations (allocate_and_fill is one): without ``alloc``
they would find nothing to act on, as vectors of them are tagged ``alloc`` too."""


def action_table(features: Collection[str]) -> list[RandomAction]:
    """The actions a port with ``features`` supports, each repeated by its weight."""
    return [
        action
        for action, weight, needs in ACTIONS
        for _ in range(weight)
        if needs in features and ALSO_NEEDS.get(needs, needs) in features
    ]


def random_options(draw: Draw, features: Collection[str]) -> tuple[MemoryFileOpts, dict[str, str]]:
    """Creation options (and injected faults) a port with ``features`` supports.

    Each draw shrinks to the plain choice: default eviction, no memcg, no
    manual zeroing, no faults.
    """
    eviction = draw(st.sampled_from(list(DelayedEviction)))
    memcg = "memcg" in features and draw(st.booleans())
    zeroing = "manual-zeroing" in features and draw(st.integers(0, 3)) == 3
    faults = (
        {"punch_hole": "EOPNOTSUPP"}
        if "faults" in features and draw(st.integers(0, 4)) == 4
        else {}
    )
    if "kernel-faults" in features:  # drawn last: without the feature, nothing else changes
        faults |= (
            {},
            {},
            {},
            {"mmap": "ENOMEM"},
            {"mincore": "EAGAIN"},
        )[draw(st.integers(0, 4))]
    return MemoryFileOpts(eviction, memcg, zeroing), faults


def random_step(
    r: Recorder, draw: Draw, table: list[RandomAction], features: Collection[str]
) -> None:
    """Draw one action from ``table`` and perform it."""
    _choose(draw, table)(r, draw, features)

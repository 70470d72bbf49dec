"""What the usage set's values say, and what a file told its ``MemoryAccounting``.

The seed's ``usageInfo`` (:class:`Usage`) and the transitions of a run of
pages (a reference more or fewer, committed learnt or forgotten); the file's
:class:`Books` (bytes booked by kind, the usage expected and swapped) and the
marking that books as it goes (markCommitted, markDecommitted, the
reclaimer's markReclaimed). Plain data and functions over a usage set; the
scan that finds what is committed is :mod:`impl.usage`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, NamedTuple

from impl.accounting import MemoryAccounting
from impl.segments import SegmentSet
from spec.errors import InvariantViolation
from spec.vocabulary import FileRange, MemoryKind

# (The module's constants are Final: compiled, a Final is a C static, where a
# plain module name is a dict lookup per use.)
SYSTEM: Final = MemoryKind.SYSTEM


class Usage(NamedTuple):
    """The seed's ``usageInfo``: what is known about a run of pages."""

    kind: MemoryKind
    known_committed: bool
    """True only if the pages are certainly committed."""
    refs: int


FREED: Final = Usage(SYSTEM, False, 0)
FREED_KNOWN: Final = Usage(SYSTEM, True, 0)
UNREFERENCED_SYSTEM: Final[tuple[Usage, ...]] = (FREED, FREED_KNOWN)
"""Every value of pages the reclaimer may take (values compare by ==, so `in` finds them;
compiled, `in` a tuple[Usage, ...] is the C containment test, identity first)."""
FRESH: Final[tuple[Usage, ...]] = tuple(
    Usage(MemoryKind(value), False, 1) for value in range(len(MemoryKind))
)
"""What a new allocation of each kind holds, indexed by kind (made once: the allocation
path is hot; compiled, indexing a tuple costs less than a dict lookup). The kinds are
numbered from 0, or this raises ValueError at import."""


def add_ref(u: Usage) -> Usage:
    return Usage(u.kind, u.known_committed, u.refs + 1)


def drop_ref(u: Usage) -> Usage:
    # The last reference gone, the pages are System memory until reclaimed.
    if u.refs > 1:
        return Usage(u.kind, u.known_committed, u.refs - 1)
    return FREED_KNOWN if u.known_committed else FREED


def forget_committed(u: Usage) -> Usage:
    return Usage(u.kind, False, u.refs) if u.known_committed else u


def learn_committed(u: Usage) -> Usage:
    # Only committable pages (referenced, not yet known) change; see update_usage.
    return Usage(u.kind, True, u.refs) if not u.known_committed and u.refs else u


class Books:
    """What a file told its ``MemoryAccounting``, and what it expects the kernel to hold.

    Plain data under the file's lock. Invariants: ``contributed[k]`` is the
    sum of every change booked for kind ``k``; ``expected`` is the length of
    the pages known committed; ``swapped`` is what the last scan found the
    kernel holding beyond ``expected`` (booked as System).
    """

    __slots__ = ("accounting", "contributed", "expected", "last", "swapped")

    def __init__(self, accounting: MemoryAccounting) -> None:
        self.accounting = accounting
        self.contributed = [0] * len(MemoryKind)
        self.expected = 0
        self.swapped = 0
        self.last: int | None = None
        """When the last scan began (the seed's ``usageLast``); None: never."""

    def account(self, kind: MemoryKind, delta: int) -> None:
        self.contributed[kind] += delta
        if delta >= 0:
            self.accounting.inc(delta, kind)
        else:
            self.accounting.dec(-delta, kind)

    def freed(self, kind: MemoryKind, length: int) -> None:
        """Committed pages of ``kind`` lost their last reference: System until reclaimed."""
        self.contributed[kind] -= length
        self.contributed[SYSTEM] += length
        self.accounting.move(length, SYSTEM, kind)

    def learn(self, usage: SegmentSet[Usage], start: int, end: int) -> None:
        """The committed run ``[start, end)`` found by ``mincore``: see :func:`mark_committed`."""
        self.expected += mark_committed(usage, start, end, self.account)

    def forget(self, usage: SegmentSet[Usage], start: int, end: int) -> None:
        """markDecommitted of ``[start, end)``: see :func:`mark_decommitted`."""
        self.expected -= mark_decommitted(usage, start, end, self.account)

    def reclaimed(self, usage: SegmentSet[Usage], start: int, end: int) -> None:
        """The reclaimer punched the free ``[start, end)``: see :func:`committed_if_free`."""
        committed = committed_if_free(usage, start, end)
        if committed:
            self.account(SYSTEM, -committed)
            self.expected -= committed

    def book_swap(self, current: int) -> None:
        """Book what the kernel holds (``current``) beyond ``expected`` as swap, or drop it."""
        if self.expected < current:
            swapped = current - self.expected
            self.account(SYSTEM, swapped - self.swapped)
            self.swapped = swapped
        elif self.swapped:
            self.account(SYSTEM, -self.swapped)
            self.swapped = 0

    def accounting_observation(self) -> tuple[tuple[MemoryKind, int], ...]:
        return tuple((kind, self.contributed[kind]) for kind in MemoryKind)


Account = Callable[[MemoryKind, int], None]
"""Books a change of ``delta`` bytes of a kind (``Books.account``)."""


def mark_committed(usage: SegmentSet[Usage], start: int, end: int, account: Account) -> int:
    """Mark the committable pages of the committed run ``[start, end)``; the bytes learnt."""
    learnt = 0
    for s, e, u in usage.segments(start, end):
        if not u.known_committed and u.refs:
            account(u.kind, e - s)
            learnt += e - s
    if learnt:
        usage.update(start, end, learn_committed)
    return learnt


def mark_decommitted(usage: SegmentSet[Usage], start: int, end: int, account: Account) -> int:
    """markDecommitted: forget that the pages of ``[start, end)`` are committed; the bytes."""
    forgotten = 0
    for s, e, u in usage.segments(start, end):
        if u.known_committed:
            account(u.kind, -(e - s))
            forgotten += e - s
    if forgotten:
        usage.update(start, end, forget_committed)
    return forgotten


def committed_if_free(usage: SegmentSet[Usage], start: int, end: int) -> int:
    """The known committed bytes of ``[start, end)``, which must be unreferenced System pages.

    InvariantViolation otherwise (the reclaimer took pages that are not free).
    """
    segment = usage.lower_bound(start)
    if (
        segment is not None
        and segment[0] <= start
        and end <= segment[1]
        and segment[2] in UNREFERENCED_SYSTEM
    ):
        # The usual case, one free segment holds the whole range: what the
        # loop below finds when that segment is the only part.
        return end - start if segment[2].known_committed else 0
    committed = 0
    position = start
    for s, e, u in usage.segments(start, end):
        if s != position or u.refs or u.kind is not SYSTEM:
            raise InvariantViolation(f"reclaimed pages {FileRange(start, end)} are not free")
        if u.known_committed:
            committed += e - s
        position = e
    if position != end:
        raise InvariantViolation(f"reclaimed pages {FileRange(start, end)} are not in use")
    return committed

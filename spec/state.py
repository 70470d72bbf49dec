"""The abstract state of a MemoryFile, and the observation of it that ports share.

One frozen :class:`State` holds everything the seed's ``MemoryFile`` keeps
under its mutex, plus what its threads hold in local variables (so that a
model checker can interleave them), plus the host model. Transitions in
``spec/allocator.py``, ``spec/reclaimer.py``, ``spec/eviction.py`` and
``spec/usage.py`` are pure functions from a state to a new state.

Field names follow the seed (``usage``, ``reclaim``, ``usageExpected``...).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace

from spec.host import Host
from spec.rangemap import EMPTY_SET, RangeMap, RangeSet
from spec.vocabulary import (
    EvictableRange,
    FileRange,
    MemoryFileOpts,
    MemoryKind,
    Observation,
)
from spec.vocabulary import SeedDefects as SeedDefects  # noqa: PLC0414 (re-exported)


@dataclass(frozen=True, slots=True)
class UsageInfo:
    """The seed's ``usageInfo``: what the allocator knows about a range of pages."""

    kind: MemoryKind
    known_committed: bool
    """True only if the pages are certainly committed (False: maybe)."""
    refs: int

    def can_commit(self) -> bool:
        """Whether update_usage should look for commitment here (the seed's canCommit).

        Pages with no references await reclaim and are assumed uncommitted.
        """
        return not self.known_committed and self.refs != 0


FREED = UsageInfo(MemoryKind.SYSTEM, known_committed=False, refs=0)
"""The only value a range may have when the reclaimer removes it from usage."""


class ReclaimerStep(enum.Enum):
    """Where the reclaimer goroutine (``runReclaim``) is.

    The steps are split where the seed's goroutine takes or drops ``mu``.
    """

    RUNNING = "running"
    """Runnable: about to lock and look for work (``findReclaimable``)."""
    WAITING = "waiting"
    """Blocked on ``reclaimCond``; a signal makes it RUNNING, else signals are lost."""
    DECOMMITTING = "decommitting"
    """Holds a range taken off the reclaim set; punching it without the lock."""
    MARKING_DECOMMITTED = "marking-decommitted"
    """Punched; about to lock and clear knownCommitted (``markDecommitted``)."""
    MARKING_RECLAIMED = "marking-reclaimed"
    """About to lock again and remove the range from usage (``markReclaimed``)."""
    EXITING = "exiting"
    """Saw ``destroyed``: about to close the file and unmap every chunk."""
    EXITED = "exited"
    FAILED = "failed"
    """Could neither punch nor zero its range (the seed panics): it keeps the range,
    which is never handed out again, and does nothing more until destroy, then exits."""


@dataclass(frozen=True, slots=True)
class Reclaimer:
    step: ReclaimerStep
    range: FileRange | None = None
    """The range being reclaimed, in DECOMMITTING and both MARKING steps; once
    FAILED, the range it could not reclaim, kept to the end."""
    error: int | None = None
    """Once FAILED, the errno of the ``mmap`` that made zeroing fail."""


@dataclass(frozen=True, slots=True)
class EvictableUser:
    """The seed's ``evictableMemoryUserInfo``, plus its eviction goroutine's local state."""

    ranges: RangeSet = EMPTY_SET
    evicting: bool = False
    """An eviction goroutine is running for this user."""
    in_flight: EvictableRange | None = None
    """The range that goroutine took and is about to pass to ``Evict`` without the lock."""


@dataclass(frozen=True, slots=True)
class UsageScan:
    """An ``update_usage`` call in progress: ``updateUsageLocked``'s local state.

    The scan visits each committable segment chunk slice by chunk slice; for
    each slice it drops the lock to ask the host (``mincore``), then takes it
    again to record what it learnt.
    """

    current_usage: int
    """``TotalUsage()`` when the call began (the seed books swap against it)."""
    segment: FileRange
    """The segment being scanned (``r`` as first read; the slices cover it)."""
    slice: FileRange
    """The chunk slice being queried or applied."""
    committed: RangeSet | None = None
    """What the host reported for ``slice`` (None until queried)."""
    queried_generation: int = 0
    """``State.decommit_generation`` when ``committed`` was read."""


SEED = SeedDefects(stale_mincore=True, adjacent_segment=True, empty_unevictable=True)
"""The seed's behaviour, defects included."""


@dataclass(frozen=True, slots=True)
class State:
    """Everything a MemoryFile is, at one instant."""

    opts: MemoryFileOpts
    """Normalised options (DEFAULT already made ENABLED)."""
    defects: SeedDefects = SeedDefects()
    file_size: int = 0
    """A power-of-two multiple of the chunk size, or 0."""
    usage: RangeMap[UsageInfo] = field(default_factory=RangeMap)
    """Every allocated page, and pages awaiting reclaim (refs 0)."""
    reclaim: RangeSet = EMPTY_SET
    """Pages with no references that the reclaimer has not taken yet."""
    reclaimable: bool = False
    """The seed's hint that ``reclaim`` may be non-empty."""
    accounting: tuple[int, ...] = (0,) * len(MemoryKind)
    """This file's contribution to ``usage.MemoryAccounting``, by kind."""
    usage_expected: int = 0
    """Bytes known committed (the sum over known-committed segments)."""
    usage_swapped: int = 0
    """Committed bytes update_usage could not attribute, accounted as System."""
    usage_last: int | None = None
    """Clock (ns) of the last scan that was not skipped; None before any."""
    evictable: tuple[tuple[Hashable, EvictableUser], ...] = ()
    """Evictable users in the order they were first marked."""
    mapped_chunks: frozenset[int] = frozenset()
    destroyed: bool = False
    file_open: bool = True
    reclaimer: Reclaimer = Reclaimer(ReclaimerStep.RUNNING)
    scan: UsageScan | None = None
    decommits: tuple[FileRange, ...] = ()
    """Client decommits punched but not yet marked (between their two steps)."""
    decommit_generation: int = 0
    """Counts ``markDecommitted`` calls; lets update_usage detect a stale mincore."""
    host: Host = Host()


# --- Small accessors -----------------------------------------------------------


def user_info(state: State, user: Hashable) -> EvictableUser | None:
    for u, info in state.evictable:
        if u == user:
            return info
    return None


def with_user(state: State, user: Hashable, info: EvictableUser | None) -> State:
    """``state`` with ``user``'s entry replaced (appended if new, removed if None)."""
    entries = [(u, i) for u, i in state.evictable if u != user]
    if info is not None:
        position = next((n for n, (u, _) in enumerate(state.evictable) if u == user), len(entries))
        entries.insert(position, (user, info))
    return replace(state, evictable=tuple(entries))


def account(accounting: tuple[int, ...], kind: MemoryKind, delta: int) -> tuple[int, ...]:
    """``MemoryAccounting.Inc`` (positive delta) or ``Dec`` (negative)."""
    values = list(accounting)
    values[kind] += delta
    return tuple(values)


# --- The observation -------------------------------------------------------------


def observe(state: State, label: Callable[[Hashable], str] = str) -> Observation:
    """The observation of ``state``; ``label`` names evictable users."""
    return Observation(
        file_size=state.file_size,
        usage=tuple((fr, info.kind, info.refs, info.known_committed) for fr, info in state.usage),
        reclaim=state.reclaim.ranges(),
        accounting=tuple((kind, state.accounting[kind]) for kind in MemoryKind),
        usage_expected=state.usage_expected,
        usage_swapped=state.usage_swapped,
        evictable=tuple(
            sorted(
                (
                    label(user),
                    tuple(EvictableRange(*r) for r in info.ranges.ranges()),
                    info.evicting,
                )
                for user, info in state.evictable
            )
        ),
    )

"""``SpecMemoryFile``: the specification behind the seed's method names.

A mutable handle on a :class:`State` whose methods apply the pure
transitions, so that code written against ``impl.MemoryFile`` runs against
the specification unchanged. Nothing runs in the background: the reclaimer
and the eviction goroutines advance only when :meth:`reclaim` or
:meth:`run_evictions` (or :meth:`wait_for_evictions`) is called, and the
clock of ``update_usage`` is an argument.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from spec import allocator, eviction, reclaimer, usage
from spec.arguments import check_reader
from spec.errors import os_error
from spec.rangemap import RangeSet
from spec.state import ReclaimerStep, SeedDefects, State, observe
from spec.vocabulary import (
    NO_FAULTS,
    WRITE,
    AccessType,
    EvictableMemoryUser,
    EvictableRange,
    FileRange,
    FillResult,
    HostFaults,
    MemoryFileOpts,
    MemoryKind,
    Observation,
    Reader,
)


class SpecMemoryFile:
    """The executable specification of ``pgalloc.MemoryFile``, one call at a time.

    ``faults`` makes kernel calls fail (see :class:`spec.vocabulary.HostFaults`);
    it may be changed between calls. A method whose kernel call fails raises
    ``OSError`` with the errno, keeping whatever the seed changed before the
    failure (``allocate``'s growth of the file, ``update_usage``'s marks and
    swap booking, ``allocate_and_fill``'s release of its allocation). The
    reclaimer zeroes by hand where a punch fails; if zeroing fails too,
    :meth:`reclaim` raises, and the reclaimer stops until destroy.
    """

    def __init__(
        self,
        opts: MemoryFileOpts = MemoryFileOpts(),
        *,
        defects: SeedDefects = SeedDefects(),
        faults: HostFaults = NO_FAULTS,
    ) -> None:
        self.state: State = allocator.new_memory_file(opts, defects, faults.truncate)
        self.faults = faults

    # --- The seed's methods ------------------------------------------------------

    def allocate(self, length: int, kind: MemoryKind) -> FileRange:
        self.state, fr = allocator.find_and_grow(self.state, length, kind, self.faults.truncate)
        self.state = allocator.take_range(self.state, fr, kind, self.faults.map)
        return fr

    def allocate_and_fill(self, length: int, kind: MemoryKind, reader: Reader) -> FillResult:
        """The seed's composition: Allocate, MapInternal (DecRef if it fails), then the fill."""
        check_reader(reader)
        fr = self.allocate(length, kind)
        try:
            self.map_internal(fr, WRITE)
        except OSError:
            self.dec_ref(fr)
            raise
        self.state, result = allocator.fill(self.state, fr, reader)
        return result

    def decommit(self, fr: FileRange) -> None:
        self.state = allocator.decommit(self.state, fr, self.faults.punch, self.faults.map)

    def inc_ref(self, fr: FileRange) -> None:
        self.state = allocator.inc_ref(self.state, fr)

    def dec_ref(self, fr: FileRange) -> None:
        self.state = allocator.dec_ref(self.state, fr)

    def map_internal(self, fr: FileRange, at: AccessType) -> tuple[FileRange, ...]:
        """The blocks of the mapping, as file ranges (one per chunk)."""
        self.state, blocks = allocator.map_internal(self.state, fr, at, self.faults.map)
        return blocks

    def mark_evictable(self, user: Hashable, er: EvictableRange) -> None:
        self.state = eviction.mark_evictable(self.state, user, er)

    def mark_unevictable(self, user: Hashable, er: EvictableRange) -> None:
        self.state = eviction.mark_unevictable(self.state, user, er)

    def mark_all_unevictable(self, user: Hashable) -> None:
        self.state = eviction.mark_all_unevictable(self.state, user)

    def should_cache_evictable(self) -> bool:
        return allocator.should_cache_evictable(self.state)

    def start_evictions(self) -> None:
        self.state, _ = eviction.start_evictions(self.state)

    def wait_for_evictions(self) -> None:
        """Runs every eviction goroutine to its end (nothing else would)."""
        self.run_evictions()

    def update_usage(self, now: int, committed: RangeSet | None = None) -> None:
        """``now``: the clock in ns; ``committed``: what the host says, if not the host model."""
        faults = self.faults
        self.state, error = usage.update_usage(
            self.state, now, committed, faults.map, faults.mincore
        )
        if error is not None:
            raise error

    def total_usage(self) -> int:
        return allocator.total_usage(self.state)

    def total_size(self) -> int:
        return allocator.total_size(self.state)

    def destroy(self) -> None:
        """Destroy, then let the reclaimer and the eviction goroutines finish."""
        self.state = allocator.destroy(self.state)
        self.run_evictions()
        while reclaimer.reclaimer_runnable(self.state):
            self.state = self._reclaimer_step()

    def __str__(self) -> str:
        return allocator.describe(self.state)

    # --- Access through mappings --------------------------------------------------

    def read(self, fr: FileRange) -> bytes:
        """Read ``fr`` through the file's mappings (``map_internal`` it first)."""
        self.state, data = allocator.read_mapped(self.state, fr)
        return data

    def write(self, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` through the file's mappings."""
        self.state = allocator.write_mapped(self.state, offset, data)

    # --- Driving the background work ----------------------------------------------

    def reclaim(self) -> list[FileRange]:
        """Run the reclaimer until it waits; the ranges it reclaimed, in order.

        Raises the ``mmap`` error if the reclaimer fails (it could neither
        punch nor zero a range); from then on it reclaims nothing.
        """
        reclaimed = []
        while reclaimer.reclaimer_runnable(self.state) and not self.state.destroyed:
            self.state = self._reclaimer_step()
            taken = self.state.reclaimer
            if taken.step is ReclaimerStep.MARKING_DECOMMITTED and taken.range is not None:
                reclaimed.append(taken.range)
            if taken.step is ReclaimerStep.FAILED and taken.error is not None:
                raise os_error(taken.error, f"reclaim could neither punch nor zero {taken.range}")
        return reclaimed

    def _reclaimer_step(self) -> State:
        return reclaimer.reclaimer_step(self.state, self.faults.punch, self.faults.map)

    def run_evictions(self) -> list[tuple[Hashable, EvictableRange]]:
        """Run every eviction goroutine to its end, user by user in registration order.

        Each range is passed to ``user.evict`` if the user has that method (it
        may call back into this file); all are returned in delivery order.
        """
        delivered = []
        while users := eviction.evicting_users(self.state):
            user = users[0]
            self.state = eviction.take_eviction(self.state, user)
            info = next((i for u, i in self.state.evictable if u == user), None)
            if info is None or info.in_flight is None:
                continue
            self.state, er = eviction.deliver_eviction(self.state, user)
            delivered.append((user, er))
            if isinstance(user, EvictableMemoryUser):
                user.evict(er)
        return delivered

    def memcg_pressure(self) -> bool:
        """Deliver a memory-cgroup pressure notification; whether evictions started."""
        self.state, started = eviction.memcg_pressure(self.state)
        return started

    def observation(self, label: Callable[[Hashable], str] = str) -> Observation:
        return observe(self.state, label)

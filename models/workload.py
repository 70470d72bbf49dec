"""A random workload through the specification, checking invariants after every step.

The workload plays a well-behaved client (it only releases references it
holds) that also makes out-of-contract calls now and then, which must be
rejected without changing anything. After each step it checks
:func:`spec.invariants.check_invariants`; after each allocation, that the
memory reads as zeroes; after each ``update_usage``, the swap booking.

It is seeded and deterministic: a failure names the seed and the step, and
re-running :func:`run_workload` with them replays it.
"""

from __future__ import annotations

import errno
import random
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from spec import allocator
from spec.errors import ContractViolation, InvariantViolation
from spec.invariants import check_fresh_allocation, check_invariants, check_swap_booking
from spec.memory_file import SpecMemoryFile
from spec.vocabulary import (
    HUGE_PAGE_SIZE,
    PAGE_SIZE,
    READ,
    READ_WRITE,
    BytesReader,
    DelayedEviction,
    EvictableRange,
    FileRange,
    HostFaults,
    MemoryFileOpts,
    MemoryKind,
)

USERS: tuple[Hashable, ...] = ("user-a", "user-b")


@dataclass
class WorkloadStats:
    steps: int = 0
    rejected: int = 0
    """Out-of-contract calls correctly rejected."""
    by_operation: dict[str, int] = field(default_factory=dict)


class WorkloadFailure(AssertionError):
    """The specification broke an invariant or a rejected call changed the state."""


def random_opts(rnd: random.Random) -> MemoryFileOpts:
    return MemoryFileOpts(
        delayed_eviction=rnd.choice(list(DelayedEviction)),
        use_host_memcg_pressure=rnd.random() < 0.3,
        manual_zeroing=rnd.random() < 0.3,
    )


class _Client:
    """One random client of a SpecMemoryFile."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd
        self.file = SpecMemoryFile(
            random_opts(rnd),
            faults=HostFaults(punch=errno.EOPNOTSUPP if rnd.random() < 0.2 else None),
        )
        self.held: list[FileRange] = []
        """One entry per reference this client holds."""
        self.clock = 0

    def _length(self) -> int:
        rnd = self.rnd
        if rnd.random() < 0.1:
            return rnd.randint(1, 3) * HUGE_PAGE_SIZE + rnd.choice([0, PAGE_SIZE])
        return rnd.randint(1, 8) * PAGE_SIZE

    def _part_of_held(self) -> FileRange | None:
        if not self.held:
            return None
        fr = self.rnd.choice(self.held)
        pages = fr.length() // PAGE_SIZE
        first = self.rnd.randrange(pages)
        last = self.rnd.randrange(first, pages)
        return FileRange(fr.start + first * PAGE_SIZE, fr.start + (last + 1) * PAGE_SIZE)

    # --- Operations: each returns its name -------------------------------------------

    def allocate(self) -> str:
        try:
            fr = self.file.allocate(self._length(), self.rnd.choice(list(MemoryKind)))
        except OSError:
            return "allocate-enomem"
        check_fresh_allocation(self.file.state, fr)
        self.held.append(fr)
        return "allocate"

    def allocate_and_fill(self) -> str:
        length = self._length()
        data = self.rnd.randbytes(self.rnd.randint(0, length // PAGE_SIZE + 1) * 1000)
        error = OSError(errno.EIO, "injected") if self.rnd.random() < 0.5 else None
        result = self.file.allocate_and_fill(
            length, MemoryKind.PAGE_CACHE, BytesReader(data, error)
        )
        if result.file_range.length():
            self.held.append(result.file_range)
        return "allocate_and_fill"

    def inc_ref(self) -> str:
        if (fr := self._part_of_held()) is None:
            return self.allocate()
        self.file.inc_ref(fr)
        self.held.append(fr)
        return "inc_ref"

    def dec_ref(self) -> str:
        if not self.held:
            return self.allocate()
        fr = self.held.pop(self.rnd.randrange(len(self.held)))
        self.file.dec_ref(fr)
        return "dec_ref"

    def decommit(self) -> str:
        if (fr := self._part_of_held()) is None:
            return self.allocate()
        try:
            self.file.decommit(fr)
        except OSError:
            return "decommit-failed"
        return "decommit"

    def write_and_read(self) -> str:
        if (fr := self._part_of_held()) is None:
            return self.allocate()
        self.file.map_internal(fr, READ_WRITE)
        offset = fr.start + self.rnd.randrange(fr.length())
        data = self.rnd.randbytes(self.rnd.randint(1, 64))[: fr.end - offset]
        self.file.write(offset, data)
        if self.file.read(FileRange(offset, offset + len(data))) != data:
            raise WorkloadFailure(f"read back different bytes at {offset:#x}")
        return "write_and_read"

    def touch(self) -> str:
        if (fr := self._part_of_held()) is None:
            return self.allocate()
        self.file.map_internal(fr, READ)
        self.file.read(FileRange(fr.start, fr.start + 1))
        return "touch"

    def update_usage(self) -> str:
        self.clock += self.rnd.choice([0, 5_000_000, 20_000_000, 1_500_000_000])
        last_scan = self.file.state.usage_last
        self.file.update_usage(self.clock)
        if self.file.state.usage_last != last_scan:  # the scan ran (was not skipped)
            check_swap_booking(self.file.state)
        return "update_usage"

    def reclaim(self) -> str:
        self.file.reclaim()
        return "reclaim"

    def mark_evictable(self) -> str:
        start = self.rnd.randrange(0, 64) * 16
        self.file.mark_evictable(
            self.rnd.choice(USERS), EvictableRange(start, start + 16 * self.rnd.randint(0, 4))
        )
        return "mark_evictable"

    def mark_unevictable(self) -> str:
        start = self.rnd.randrange(0, 64) * 16
        self.file.mark_unevictable(self.rnd.choice(USERS), EvictableRange(start, start + 32))
        return "mark_unevictable"

    def mark_all_unevictable(self) -> str:
        self.file.mark_all_unevictable(self.rnd.choice(USERS))
        return "mark_all_unevictable"

    def start_evictions(self) -> str:
        self.file.start_evictions()
        return "start_evictions"

    def run_evictions(self) -> str:
        self.file.run_evictions()
        return "run_evictions"

    def memcg_pressure(self) -> str:
        self.file.memcg_pressure()
        return "memcg_pressure"

    def out_of_contract(self) -> str:
        """A call the seed would panic on: it must raise and change nothing."""
        file, rnd = self.file, self.rnd
        free = FileRange(file.state.file_size, file.state.file_size + PAGE_SIZE)
        calls: list[Callable[[], object]] = [
            lambda: file.allocate(0, MemoryKind.ANONYMOUS),
            lambda: file.allocate(PAGE_SIZE + 1, MemoryKind.ANONYMOUS),
            lambda: file.dec_ref(FileRange(2 * PAGE_SIZE, PAGE_SIZE)),
            lambda: file.inc_ref(FileRange(PAGE_SIZE, PAGE_SIZE + 1)),
            lambda: file.dec_ref(free),
            lambda: file.inc_ref(free),
            lambda: file.decommit(free),
            lambda: file.map_internal(FileRange(0, 0), READ),
            lambda: file.map_internal(free, READ),
            lambda: file.mark_evictable("user-a", EvictableRange(9, 3)),
        ]
        before = file.state
        try:
            rnd.choice(calls)()
        except ContractViolation:
            if file.state != before:
                raise WorkloadFailure("a rejected call changed the state") from None
            return "out_of_contract"
        raise WorkloadFailure("an out-of-contract call was accepted")


def run_workload(seed: int, steps: int) -> WorkloadStats:
    """Run ``steps`` random operations from ``seed``; raise :class:`WorkloadFailure` on a defect."""
    rnd = random.Random(seed)
    client = _Client(rnd)
    operations: list[tuple[Callable[[], str], int]] = [
        (client.allocate, 8),
        (client.allocate_and_fill, 2),
        (client.inc_ref, 2),
        (client.dec_ref, 6),
        (client.decommit, 2),
        (client.write_and_read, 3),
        (client.touch, 2),
        (client.update_usage, 3),
        (client.reclaim, 3),
        (client.mark_evictable, 2),
        (client.mark_unevictable, 1),
        (client.mark_all_unevictable, 1),
        (client.start_evictions, 1),
        (client.run_evictions, 2),
        (client.memcg_pressure, 1),
        (client.out_of_contract, 2),
    ]
    choices = [op for op, _ in operations]
    weights = [weight for _, weight in operations]
    stats = WorkloadStats()
    for step in range(steps):
        operation = rnd.choices(choices, weights)[0]
        try:
            name = operation()
            check_invariants(client.file.state)
        except (InvariantViolation, WorkloadFailure, ContractViolation) as failure:
            raise WorkloadFailure(
                f"seed {seed}, step {step} ({operation.__name__}): {failure}\n"
                f"state:\n{allocator.describe(client.file.state)}"
            ) from failure
        stats.steps += 1
        stats.by_operation[name] = stats.by_operation.get(name, 0) + 1
        if name == "out_of_contract":
            stats.rejected += 1
    client.file.destroy()
    check_invariants(client.file.state)
    return stats

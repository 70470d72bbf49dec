"""The same random operations through ``SpecMemoryFile`` and ``impl.MemoryFile``, compared.

Each step applies one operation (well-formed or out of contract) to the
specification and to the real allocator (no threads, a controlled clock),
then compares: results, exception types, observations field by field, what
``mincore`` says is committed against the spec's host model, and bytes
read back. This is the small, deterministic cousin of the stateful machine.
"""

from __future__ import annotations

import dataclasses
import errno
import random
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from hypothesis import given
from hypothesis import strategies as st

from impl import Kernel, MemoryAccounting, MemoryFile
from spec import SpecMemoryFile
from spec.vocabulary import (
    HUGE_PAGE_SIZE,
    MILLISECOND,
    PAGE_SIZE,
    READ,
    READ_WRITE,
    AccessType,
    BytesReader,
    DelayedEviction,
    EvictableRange,
    FileRange,
    MemoryFileOpts,
    MemoryKind,
)

AnyFile = SpecMemoryFile | MemoryFile
T = TypeVar("T")


class RecordingUser:
    """An evictable user that records what it is asked to evict."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.evicted: list[EvictableRange] = []

    def evict(self, er: EvictableRange) -> None:
        self.evicted.append(er)

    def __str__(self) -> str:
        return self.name


class Pair:
    """A spec and an impl file driven in lockstep."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd
        opts = MemoryFileOpts(
            delayed_eviction=rnd.choice(list(DelayedEviction)),
            use_host_memcg_pressure=rnd.random() < 0.3,
            manual_zeroing=rnd.random() < 0.3,
        )
        punch_error = errno.EOPNOTSUPP if rnd.random() < 0.2 else None
        self.now = 0
        self.spec = SpecMemoryFile(opts, punch_error=punch_error)
        self.impl = MemoryFile(
            opts,
            background=False,
            accounting=MemoryAccounting(),
            clock=lambda: self.now,
            kernel=Kernel(punch_error=punch_error),
        )
        # Users: labels for the spec (no evict method), recording objects for the impl.
        self.spec_users: list[Hashable] = ["a", "b"]
        self.impl_users = [RecordingUser("a"), RecordingUser("b")]
        self.held: list[FileRange] = []

    # --- Comparison ---------------------------------------------------------------

    def both(self, call: Callable[[AnyFile], T]) -> tuple[T, T] | None:
        """Apply ``call`` to both files: both return (the results), or both raise the
        same exception type (None)."""
        results: list[T] = []
        errors: list[type[Exception]] = []
        for file in (self.spec, self.impl):
            try:
                results.append(call(file))
            except Exception as error:
                errors.append(type(error))
        assert len(results) in (0, 2), (results, errors, self.spec.state)
        if errors:
            assert errors[0] is errors[1], errors
            return None
        return results[0], results[1]

    def compare(self) -> None:
        assert fields_of(self.spec.observation()) == fields_of(self.impl.observation())
        assert self.impl.committed_ranges() == list(self.spec.state.host.committed.ranges())
        assert self.spec.total_usage() == self.impl.total_usage()

    # --- Draws -------------------------------------------------------------------------

    def length(self) -> int:
        if self.rnd.random() < 0.1:
            return self.rnd.randint(1, 2) * HUGE_PAGE_SIZE + self.rnd.choice([0, PAGE_SIZE])
        return self.rnd.randint(1, 8) * PAGE_SIZE

    def part(self) -> FileRange | None:
        if not self.held:
            return None
        fr = self.rnd.choice(self.held)
        pages = fr.length() // PAGE_SIZE
        first = self.rnd.randrange(pages)
        last = self.rnd.randrange(first, pages)
        return FileRange(fr.start + first * PAGE_SIZE, fr.start + (last + 1) * PAGE_SIZE)

    def user(self) -> int:
        return self.rnd.randrange(2)

    # --- Operations ---------------------------------------------------------------------

    def step(self) -> None:
        rnd = self.rnd
        op = rnd.choices(
            [
                "allocate",
                "fill",
                "inc_ref",
                "dec_ref",
                "decommit",
                "write",
                "update_usage",
                "reclaim",
                "evictable",
                "unevictable",
                "all_unevictable",
                "start_evictions",
                "run_evictions",
                "pressure",
                "bad",
            ],
            [8, 2, 2, 6, 2, 3, 3, 3, 2, 1, 1, 1, 2, 1, 3],
        )[0]
        getattr(self, f"op_{op}")()
        self.compare()

    def op_allocate(self) -> None:
        length, kind = self.length(), rnd_kind(self.rnd)
        if (both := self.both(lambda f: f.allocate(length, kind))) is not None:
            assert both[0] == both[1]
            self.held.append(both[0])

    def op_fill(self) -> None:
        length = self.length()
        data = self.rnd.randbytes(self.rnd.randint(0, length // PAGE_SIZE + 1) * 1000)
        error = OSError(errno.EIO, "injected") if self.rnd.random() < 0.5 else None
        both = self.both(
            lambda f: f.allocate_and_fill(length, MemoryKind.PAGE_CACHE, BytesReader(data, error))
        )
        assert both is not None
        spec_result, impl_result = both
        assert spec_result.file_range == impl_result.file_range
        assert type(spec_result.error) is type(impl_result.error)
        fr = spec_result.file_range
        if fr.length():
            self.held.append(fr)
            self.impl.map_internal(fr, READ)
            self.spec.map_internal(fr, READ)
            assert self.impl.read(fr) == self.spec.read(fr) == data[: fr.length()]

    def op_inc_ref(self) -> None:
        if (fr := self.part()) is not None:
            self.both(lambda f: f.inc_ref(fr))
            self.held.append(fr)

    def op_dec_ref(self) -> None:
        if self.held:
            fr = self.held.pop(self.rnd.randrange(len(self.held)))
            self.both(lambda f: f.dec_ref(fr))

    def op_decommit(self) -> None:
        if (fr := self.part()) is not None:
            self.both(lambda f: f.decommit(fr))

    def op_write(self) -> None:
        if (fr := self.part()) is None:
            return
        spec_blocks = self.spec.map_internal(fr, READ_WRITE)
        impl_views = self.impl.map_internal(fr, READ_WRITE)
        assert [b.length() for b in spec_blocks] == [len(v) for v in impl_views]
        for view in impl_views:
            view.release()
        offset = fr.start + self.rnd.randrange(fr.length())
        data = self.rnd.randbytes(self.rnd.randint(1, 5000))[: fr.end - offset]
        self.both(lambda f: f.write(offset, data))
        assert self.spec.read(fr) == self.impl.read(fr)

    def op_update_usage(self) -> None:
        self.now += self.rnd.choice([0, 5 * MILLISECOND, 20 * MILLISECOND, 1_500 * MILLISECOND])
        self.spec.update_usage(self.now)
        self.impl.update_usage()

    def op_reclaim(self) -> None:
        assert self.spec.reclaim() == self.impl.reclaim()

    def op_evictable(self) -> None:
        u, start = self.user(), self.rnd.randrange(0, 64) * 16
        er = EvictableRange(start, start + 16 * self.rnd.randint(0, 4))
        self.spec.mark_evictable(self.spec_users[u], er)
        self.impl.mark_evictable(self.impl_users[u], er)

    def op_unevictable(self) -> None:
        u, start = self.user(), self.rnd.randrange(0, 64) * 16
        er = EvictableRange(start, start + 32)
        self.spec.mark_unevictable(self.spec_users[u], er)
        self.impl.mark_unevictable(self.impl_users[u], er)

    def op_all_unevictable(self) -> None:
        u = self.user()
        self.spec.mark_all_unevictable(self.spec_users[u])
        self.impl.mark_all_unevictable(self.impl_users[u])

    def op_start_evictions(self) -> None:
        self.both(lambda f: f.start_evictions())

    def op_run_evictions(self) -> None:
        spec_delivered = self.spec.run_evictions()
        impl_delivered = self.impl.run_evictions()
        assert [(str(u), er) for u, er in spec_delivered] == [
            (str(u), er) for u, er in impl_delivered
        ]

    def op_pressure(self) -> None:
        assert self.spec.memcg_pressure() == self.impl.memcg_pressure()

    def op_bad(self) -> None:
        """An out-of-contract call: the same exception type, nothing changed."""
        size = self.spec.state.file_size
        beyond = FileRange(size, size + PAGE_SIZE)
        free = FileRange(0, PAGE_SIZE)
        # Deliberately ill-typed arguments, as a careless caller passes them.
        not_a_kind: Any = 3
        a_tuple: Any = (0, PAGE_SIZE)
        not_access: Any = "r"
        unhashable: Any = []
        calls: list[Callable[[AnyFile], object]] = [
            lambda f: f.allocate(0, MemoryKind.ANONYMOUS),
            lambda f: f.allocate(PAGE_SIZE + 1, MemoryKind.ANONYMOUS),
            lambda f: f.allocate(PAGE_SIZE, not_a_kind),
            lambda f: f.allocate(-PAGE_SIZE, MemoryKind.ANONYMOUS),
            lambda f: f.dec_ref(FileRange(2 * PAGE_SIZE, PAGE_SIZE)),
            lambda f: f.inc_ref(FileRange(PAGE_SIZE, PAGE_SIZE + 1)),
            lambda f: f.dec_ref(beyond),
            lambda f: f.inc_ref(beyond),
            lambda f: f.dec_ref(free),
            lambda f: f.decommit(beyond),
            lambda f: f.decommit(a_tuple),
            lambda f: f.map_internal(FileRange(0, 0), READ),
            lambda f: f.map_internal(beyond, READ),
            lambda f: f.map_internal(FileRange(0, PAGE_SIZE), AccessType(execute=True)),
            lambda f: f.map_internal(FileRange(0, PAGE_SIZE), not_access),
            lambda f: f.mark_evictable("a", EvictableRange(9, 3)),
            lambda f: f.mark_evictable(unhashable, EvictableRange(0, 3)),
            lambda f: f.mark_unevictable("a", a_tuple),
            lambda f: f.read(beyond),
            lambda f: f.write(size, b"x"),
        ]
        if self.held:
            fr = self.rnd.choice(self.held)
            calls.append(lambda f: f.dec_ref(FileRange(fr.start, size + PAGE_SIZE)))
        call = self.rnd.choice(calls)
        before = self.impl.observation()
        assert self.both(call) is None  # both raised, the same type
        assert self.impl.observation() == before


def fields_of(observation: object) -> tuple[object, ...]:
    """The field values, in order (a shallow ``dataclasses.astuple``)."""
    return tuple(getattr(observation, f.name) for f in dataclasses.fields(observation))  # type: ignore[arg-type]


def rnd_kind(rnd: random.Random) -> MemoryKind:
    return rnd.choice(list(MemoryKind))


@given(st.integers(0, 2**32 - 1))
def test_impl_agrees_with_spec_step_by_step(seed: int) -> None:
    pair = Pair(random.Random(seed))
    try:
        for _ in range(60):
            pair.step()
    finally:
        pair.spec.destroy()
        pair.impl.destroy()

"""Random operation sequences keep every invariant of the specification.

A hypothesis state machine plays a well-behaved client of ``SpecMemoryFile``
(it releases only references it holds) and checks the invariants after every
step; rejected out-of-contract calls must leave the state as it was.
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from spec.errors import ContractViolation
from spec.invariants import check_fresh_allocation, check_invariants
from spec.memory_file import SpecMemoryFile
from spec.vocabulary import (
    HUGE_PAGE_SIZE,
    PAGE_SIZE,
    READ_WRITE,
    BytesReader,
    DelayedEviction,
    EvictableRange,
    FileRange,
    MemoryFileOpts,
    MemoryKind,
)

P = PAGE_SIZE

lengths = st.one_of(
    st.integers(1, 8).map(lambda n: n * P),
    st.sampled_from([HUGE_PAGE_SIZE, HUGE_PAGE_SIZE + P]),
)
kinds = st.sampled_from(list(MemoryKind))
users = st.sampled_from(["user-a", "user-b"])
evictable_ranges = st.tuples(st.integers(0, 40), st.integers(0, 8)).map(
    lambda t: EvictableRange(t[0], t[0] + t[1])
)


class SpecClient(RuleBasedStateMachine):
    """Each item of ``references`` is one reference the client holds."""

    references = Bundle("references")

    def __init__(self) -> None:
        super().__init__()
        self.file = SpecMemoryFile()
        self.clock = 0

    @initialize(
        mode=st.sampled_from(list(DelayedEviction)),
        memcg=st.booleans(),
        manual_zeroing=st.booleans(),
    )
    def create(self, mode: DelayedEviction, memcg: bool, manual_zeroing: bool) -> None:
        self.file = SpecMemoryFile(MemoryFileOpts(mode, memcg, manual_zeroing))

    @rule(target=references, length=lengths, kind=kinds)
    def allocate(self, length: int, kind: MemoryKind) -> FileRange:
        fr = self.file.allocate(length, kind)
        check_fresh_allocation(self.file.state, fr)
        return fr

    @rule(target=references, length=lengths, filled=st.integers(0, 9000), fails=st.booleans())
    def allocate_and_fill(self, length: int, filled: int, fails: bool) -> object:
        error = OSError(5, "injected") if fails else None
        result = self.file.allocate_and_fill(
            length, MemoryKind.PAGE_CACHE, BytesReader(b"z" * filled, error)
        )
        assert result.file_range.length() == min(length, filled - filled % P)
        return multiple(result.file_range) if result.file_range.length() else multiple()

    @rule(target=references, fr=references)
    def inc_ref(self, fr: FileRange) -> FileRange:
        self.file.inc_ref(fr)
        return fr  # one more reference (the one drawn stays held)

    @rule(fr=consumes(references))
    def dec_ref(self, fr: FileRange) -> None:
        self.file.dec_ref(fr)

    @rule(fr=references)
    def decommit(self, fr: FileRange) -> None:
        self.file.decommit(fr)

    @rule(fr=references, data=st.binary(min_size=1, max_size=32), where=st.integers(0, 2**20))
    def write_and_read_back(self, fr: FileRange, data: bytes, where: int) -> None:
        self.file.map_internal(fr, READ_WRITE)
        offset = fr.start + where % fr.length()
        data = data[: fr.end - offset]
        self.file.write(offset, data)
        assert self.file.read(FileRange(offset, offset + len(data))) == data

    @rule(elapsed=st.sampled_from([0, 5_000_000, 20_000_000, 2_000_000_000]))
    def update_usage(self, elapsed: int) -> None:
        self.clock += elapsed
        self.file.update_usage(self.clock)

    @rule()
    def reclaim(self) -> None:
        self.file.reclaim()

    @rule(user=users, er=evictable_ranges)
    def mark_evictable(self, user: str, er: EvictableRange) -> None:
        self.file.mark_evictable(user, er)

    @rule(user=users, er=evictable_ranges)
    def mark_unevictable(self, user: str, er: EvictableRange) -> None:
        self.file.mark_unevictable(user, er)

    @rule(user=users)
    def mark_all_unevictable(self, user: str) -> None:
        self.file.mark_all_unevictable(user)

    @rule()
    def start_evictions(self) -> None:
        self.file.start_evictions()

    @rule()
    def run_evictions(self) -> None:
        self.file.run_evictions()

    @rule()
    def memcg_pressure(self) -> None:
        self.file.memcg_pressure()

    @precondition(lambda self: self.file.state.file_size > 0)
    @rule(page=st.integers(0, 2**18))
    def dec_ref_of_a_page_not_held_is_rejected_unchanged(self, page: int) -> None:
        fr = FileRange(page * P, (page + 1) * P)
        refs = [info.refs for part, info in self.file.state.usage.within(fr)]
        if refs and all(refs):
            return  # held by someone: a legitimate call for its holder, not for us
        before = self.file.state
        try:
            self.file.dec_ref(fr)
        except ContractViolation:
            assert self.file.state == before
        else:
            raise AssertionError(f"dec_ref of {fr}, which holds no references, was accepted")

    @invariant()
    def invariants_hold(self) -> None:
        check_invariants(self.file.state)

    def teardown(self) -> None:
        self.file.destroy()
        check_invariants(self.file.state)


TestSpecClient = SpecClient.TestCase

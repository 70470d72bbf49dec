"""Random junk arguments for every operation, on the spec and the impl at once.

Beyond the table's chosen cases: hypothesis draws an operation and
arguments from boundary numbers, ranges built of them, wrong types and
readers, and applies the call to a ``SpecMemoryFile`` and an
``impl.MemoryFile`` prepared as the table's. Either both reject it with the
same documented error (a ``ContractViolation`` or an ``OSError`` with the
same errno) and neither changes, or both accept it with the same result and
the same observation. Nothing else (a bare ``TypeError``, say) may escape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import assume, event, given
from hypothesis import strategies as st

from impl import MemoryFile
from spec import SpecMemoryFile
from spec.errors import ContractViolation, RangeBeyondFile
from spec.vocabulary import (
    MAX_PAGE,
    READ,
    RESCAN_INTERVAL,
    UINT64_MAX,
    WRITE,
    AccessType,
    BytesReader,
    EvictableRange,
    FileRange,
    FillResult,
    MemoryKind,
)
from tests.bad_input_cases import (
    ANON,
    FREED,
    LIVE,
    SET_UP_NOW,
    TMPFS,
    TOP,
    AnyFile,
    Changed,
    P,
    UnhashableUser,
    assert_unchanged,
    impl_snapshot,
    quiet_file,
    set_up,
    update_usage_at,
)
from tests.figures import FIGURES

NUMBERS = [
    *(-P, -1, 0, 1, 3, P - 1, P, P + 1, 2 * P, 4 * P, 2 << 20),
    *(TMPFS.start, FREED.start, FREED.end, LIVE.start + 1, LIVE.start, LIVE.end - 1),
    *(TOP - 1, TOP, TOP + 1, TOP + P, MAX_PAGE, UINT64_MAX, 1 << 64, 1 << 65),
]
"""Offsets and lengths around every boundary of the set-up layout and of uint64.

(None valid is much longer than a chunk: a fill maps all it allocates.)"""

TIMES = [-SET_UP_NOW, 0, SET_UP_NOW - 1, SET_UP_NOW + RESCAN_INTERVAL, 2 * SET_UP_NOW]
"""Clock readings around set_up's scan."""


@dataclass(frozen=True)
class ReaderOf:
    """A reader to be made afresh for each side (a reader is used up by one fill)."""

    data: bytes


numbers = st.sampled_from(NUMBERS)
file_ranges = st.builds(FileRange, numbers, numbers)
evictable_ranges = st.builds(EvictableRange, numbers, numbers)
readers = st.builds(ReaderOf, st.binary(max_size=3 * P))
junk = st.one_of(
    numbers,
    file_ranges,
    evictable_ranges,
    st.tuples(numbers, numbers),
    readers,
    st.sampled_from(
        [
            *(4096.0, True, None, "4096", b"", b"abc", bytearray(b"xy"), [1, 2], {}),
            *(ANON, MemoryKind.TMPFS, READ, WRITE, AccessType(read=True, execute=True)),
            *({"read": True}, "user", "stranger", UnhashableUser()),
        ]
    ),
)
"""Anything, of any type."""


def either(right: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """Three times in four an argument of the right type (its value may be wrong), else junk."""
    return st.integers(0, 3).flatmap(lambda i: right if i else junk)  # (one_of would flatten)


kinds = either(st.sampled_from(MemoryKind))
users = either(st.sampled_from(["user", "other", "stranger"]))
SIGNATURES: dict[str, tuple[st.SearchStrategy[object], ...]] = {
    "allocate": (either(numbers), kinds),
    "allocate_and_fill": (either(numbers), kinds, either(readers)),
    "inc_ref": (either(file_ranges),),
    "dec_ref": (either(file_ranges),),
    "decommit": (either(file_ranges),),
    "map_internal": (either(file_ranges), either(st.sampled_from([READ, WRITE, AccessType()]))),
    "read": (either(file_ranges),),
    "write": (either(numbers), either(st.binary(max_size=2 * P))),
    "mark_evictable": (users, either(evictable_ranges)),
    "mark_unevictable": (users, either(evictable_ranges)),
    "mark_all_unevictable": (users,),
    "update_usage": (either(st.sampled_from(TIMES)),),
}
"""Every operation that takes arguments, and what to draw for each."""
calls = st.sampled_from(sorted(SIGNATURES)).flatmap(
    lambda op: st.tuples(st.just(op), st.tuples(*SIGNATURES[op]))
)


def attempt(
    f: AnyFile, operation: str, args: tuple[object, ...]
) -> tuple[object, Exception | None]:
    """Call ``operation``; (its result, None), or (None, what it raised)."""
    fresh = list(args)
    if operation == "allocate_and_fill" and isinstance(args[2], ReaderOf):
        fresh[2] = BytesReader(args[2].data)  # elsewhere the ReaderOf itself is the junk
    try:
        if operation == "update_usage":
            update_usage_at(f, fresh[0])
            return None, None
        result = getattr(f, operation)(*fresh)
    except Exception as error:
        return None, error
    if operation == "map_internal":
        return None, None  # views on one side, file ranges on the other
    if isinstance(result, FillResult):
        return (result.file_range, type(result.error)), None
    return result, None


def check_junk_call(
    make: Callable[[], MemoryFile], operation: str, args: tuple[object, ...]
) -> str:
    """Spec and impl agree on the call; a rejected call is documented and changes neither.

    Returns the outcome: the error's type name, or "accepted".
    """
    spec, impl = SpecMemoryFile(), make()
    try:
        set_up(spec)
        set_up(impl)
        spec_before, impl_before = spec.state, impl_snapshot(impl, False)
        spec_result, spec_error = attempt(spec, operation, args)
        impl_result, impl_error = attempt(impl, operation, args)
        call = f"{operation}{args!r}"
        for error in (spec_error, impl_error):
            assert error is None or isinstance(error, ContractViolation | OSError), (
                f"{call}: undocumented {error!r}"
            )
        assert type(spec_error) is type(impl_error), f"{call}: {spec_error!r} vs {impl_error!r}"
        if isinstance(spec_error, OSError):
            assert getattr(impl_error, "errno", None) == spec_error.errno, call
        if spec_error is not None:
            assert spec.state == spec_before, f"{call}: the spec changed"
            assert_unchanged(call, impl_before, impl_snapshot(impl, False))
        assert spec_result == impl_result, call
        assert spec.observation() == impl.observation(), call
        return type(spec_error).__name__ if spec_error is not None else "accepted"
    finally:
        impl.destroy()


@given(calls)
def test_junk_arguments_are_rejected_as_the_spec_rejects_them_or_accepted_alike(
    call: tuple[str, tuple[object, ...]],
) -> None:
    operation, args = call
    assume(not (operation == "read" and _long_range(args[0])))
    outcome = check_junk_call(quiet_file, operation, args)
    event(outcome)
    FIGURES["junk calls tried (spec and impl)"] += 1
    FIGURES["junk calls rejected alike"] += outcome != "accepted"


def _long_range(fr: object) -> bool:
    """A valid range of more than 64 pages: reading it copies up to a GiB on each side."""
    return (
        isinstance(fr, FileRange) and type(fr.start) is type(fr.end) is int and fr.length() > 64 * P
    )


class WritesBeforeChecking(MemoryFile):
    """Broken: a write running past the file writes what fits, then raises."""

    def write(self, offset: int, data: bytes) -> None:
        try:
            super().write(offset, data)
        except RangeBeyondFile:
            super().write(offset, data[: max(0, self.total_size() - offset)])
            raise


def test_the_junk_check_catches_a_partial_write() -> None:
    check_junk_call(quiet_file, "write", (TOP - 1, b"ab"))
    with pytest.raises(Changed) as failure:
        check_junk_call(lambda: WritesBeforeChecking(background=False), "write", (TOP - 1, b"ab"))
    assert failure.value.parts == ["total usage", "committed ranges", "file contents"]

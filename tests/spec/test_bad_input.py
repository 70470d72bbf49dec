"""Every class of bad input: the right exception, and the state exactly as it was."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from spec.errors import (
    ContractViolation,
    InvalidArgument,
    InvalidLength,
    InvalidRange,
    NoReferences,
    RangeBeyondFile,
    UnallocatedPages,
    UseAfterDestroy,
)
from spec.memory_file import SpecMemoryFile
from spec.vocabulary import (
    CHUNK_SIZE,
    MAX_PAGE,
    PAGE_SIZE,
    READ,
    UINT64_MAX,
    BytesReader,
    EvictableRange,
    FileRange,
    MemoryKind,
)

P = PAGE_SIZE
C = CHUNK_SIZE
ANON = MemoryKind.ANONYMOUS


def populated() -> SpecMemoryFile:
    """A file with a live allocation at [C-2P, C-P) and freed pages at [C-P, C)."""
    f = SpecMemoryFile()
    f.allocate(P, ANON)
    f.allocate(P, MemoryKind.TMPFS)
    f.dec_ref(FileRange(C - P, C))
    f.mark_evictable("user", EvictableRange(0, 10))
    return f


Call = Callable[[SpecMemoryFile], object]

CASES: list[tuple[str, Call, type[ContractViolation]]] = [
    ("allocate zero", lambda f: f.allocate(0, ANON), InvalidLength),
    ("allocate unaligned", lambda f: f.allocate(P + 1, ANON), InvalidLength),
    ("allocate beyond uint64", lambda f: f.allocate(1 << 64, ANON), InvalidArgument),
    ("allocate negative", lambda f: f.allocate(-P, ANON), InvalidArgument),
    ("allocate a float", lambda f: f.allocate(4096.0, ANON), InvalidArgument),  # type: ignore[arg-type]
    ("allocate a bool", lambda f: f.allocate(True, ANON), InvalidArgument),
    ("allocate bad kind", lambda f: f.allocate(P, 1), InvalidArgument),  # type: ignore[arg-type]
    (
        "fill zero",
        lambda f: f.allocate_and_fill(0, ANON, BytesReader(b"x")),
        InvalidLength,
    ),
    (
        "fill from a non-reader",
        lambda f: f.allocate_and_fill(P, ANON, b"data"),  # type: ignore[arg-type]
        InvalidArgument,
    ),
    ("inc_ref ill-formed", lambda f: f.inc_ref(FileRange(C - P, C - 2 * P)), InvalidRange),
    ("inc_ref empty", lambda f: f.inc_ref(FileRange(C - P, C - P)), InvalidRange),
    ("inc_ref unaligned", lambda f: f.inc_ref(FileRange(C - 2 * P, C - P + 1)), InvalidRange),
    ("inc_ref a tuple", lambda f: f.inc_ref((0, P)), InvalidArgument),  # type: ignore[arg-type]
    ("inc_ref beyond uint64", lambda f: f.inc_ref(FileRange(0, 1 << 64)), InvalidArgument),
    ("inc_ref unallocated", lambda f: f.inc_ref(FileRange(0, P)), UnallocatedPages),
    (
        "inc_ref partly unallocated",
        lambda f: f.inc_ref(FileRange(C - 3 * P, C - P)),
        UnallocatedPages,
    ),
    ("inc_ref freed pages", lambda f: f.inc_ref(FileRange(C - P, C)), NoReferences),
    ("dec_ref unallocated", lambda f: f.dec_ref(FileRange(0, P)), UnallocatedPages),
    ("dec_ref beyond the file", lambda f: f.dec_ref(FileRange(C, C + P)), UnallocatedPages),
    ("dec_ref freed pages", lambda f: f.dec_ref(FileRange(C - 2 * P, C)), NoReferences),
    ("dec_ref unaligned", lambda f: f.dec_ref(FileRange(C - 2 * P + 1, C - P)), InvalidRange),
    ("decommit unallocated", lambda f: f.decommit(FileRange(0, P)), UnallocatedPages),
    ("decommit empty", lambda f: f.decommit(FileRange(P, P)), InvalidRange),
    ("map ill-formed", lambda f: f.map_internal(FileRange(P, 0), READ), InvalidRange),
    ("map empty", lambda f: f.map_internal(FileRange(P, P), READ), InvalidRange),
    (
        "map beyond the file",
        lambda f: f.map_internal(FileRange(C - 1, C + 1), READ),
        RangeBeyondFile,
    ),
    ("map bad access", lambda f: f.map_internal(FileRange(0, P), "r"), InvalidArgument),  # type: ignore[arg-type]
    ("read unmapped", lambda f: f.read(FileRange(0, 1)), RangeBeyondFile),
    (
        "evictable ill-formed",
        lambda f: f.mark_evictable("user", EvictableRange(5, 1)),
        InvalidRange,
    ),
    (
        "evictable unhashable user",
        lambda f: f.mark_evictable([], EvictableRange(0, 1)),  # type: ignore[arg-type]
        InvalidArgument,
    ),
    (
        "unevictable ill-formed",
        lambda f: f.mark_unevictable("user", EvictableRange(5, 1)),
        InvalidRange,
    ),
    (
        "evictable beyond uint64",
        lambda f: f.mark_evictable("user", EvictableRange(0, UINT64_MAX + 1)),
        InvalidArgument,
    ),
    ("update_usage without a clock", lambda f: f.update_usage(1.5), InvalidArgument),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(
    ("call", "error"), [(c, e) for _, c, e in CASES], ids=[n for n, _, _ in CASES]
)
def test_bad_input_raises_and_changes_nothing(call: Call, error: type[ContractViolation]) -> None:
    f = populated()
    before = f.state
    with pytest.raises(error):
        call(f)
    assert f.state == before


def test_fill_with_bad_length_never_calls_the_reader() -> None:
    class Untouchable:
        def readinto(self, buffer: memoryview, /) -> int:
            raise AssertionError("the reader was called")

    f = populated()
    with pytest.raises(InvalidLength):
        f.allocate_and_fill(P + 1, ANON, Untouchable())


def test_the_longest_valid_length_is_accepted() -> None:
    with pytest.raises(OSError):  # valid, but nothing that long fits: ENOMEM, not a contract error
        SpecMemoryFile().allocate(MAX_PAGE, ANON)


AFTER_DESTROY: list[Call] = [
    lambda f: f.allocate(P, ANON),
    lambda f: f.allocate_and_fill(P, ANON, BytesReader(b"")),
    lambda f: f.inc_ref(FileRange(C - 2 * P, C - P)),
    lambda f: f.dec_ref(FileRange(C - 2 * P, C - P)),
    lambda f: f.decommit(FileRange(C - 2 * P, C - P)),
    lambda f: f.map_internal(FileRange(0, P), READ),
    lambda f: f.mark_evictable("user", EvictableRange(0, 1)),
    lambda f: f.mark_unevictable("user", EvictableRange(0, 1)),
    lambda f: f.mark_all_unevictable("user"),
    lambda f: f.start_evictions(),
    lambda f: f.update_usage(10**9),
    lambda f: f.total_usage(),
    lambda f: f.total_size(),
    lambda f: f.should_cache_evictable(),
]


@pytest.mark.parametrize("call", AFTER_DESTROY)
def test_every_method_is_rejected_after_destroy(call: Call) -> None:
    f = populated()
    f.destroy()
    before = f.state
    with pytest.raises(UseAfterDestroy):
        call(f)
    assert f.state == before

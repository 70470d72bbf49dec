"""The bad-input table: every public operation x every class of invalid argument.

Shared by ``tests/spec/test_bad_input.py`` (the specification) and
``tests/impl/test_bad_input.py`` (the real allocator, compared with the
specification): each :class:`Case` is one call on a file prepared by
:func:`set_up` (destroyed first if the case says so), and the exception the
call must raise (:func:`run` makes the call and checks that). A rejected
call must change nothing: for the spec, its ``State`` is one comparable
value; for the impl, :func:`impl_snapshot` collects what could change.

The layout :func:`set_up` builds, in a one-chunk file (allocations come from
its top)::

    [0, TMPFS.start)        unallocated (HOLE is its first page)
    TMPFS                   referenced, Tmpfs
    FREED                   no references, awaiting reclaim (written before the free)
    LIVE                    referenced, Anonymous, "data" written at its start
    [TOP, ...)              beyond the file

after an ``update_usage`` (so some pages are known committed and accounted),
with the whole chunk mapped and two evictable users.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from impl import MemoryAccounting, MemoryFile
from spec import SpecMemoryFile
from spec.errors import (
    InvalidArgument,
    InvalidLength,
    InvalidRange,
    NoReferences,
    RangeBeyondFile,
    UnallocatedPages,
    UseAfterDestroy,
)
from spec.vocabulary import (
    CHUNK_SIZE,
    MAX_PAGE,
    PAGE_SIZE,
    READ,
    SECOND,
    UINT64_MAX,
    AccessType,
    DelayedEviction,
    EvictableRange,
    FileRange,
    MemoryFileOpts,
    MemoryKind,
)

AnyFile = SpecMemoryFile | MemoryFile
P = PAGE_SIZE
TOP = CHUNK_SIZE
ANON = MemoryKind.ANONYMOUS
LIVE = FileRange(TOP - 4 * P, TOP)
FREED = FileRange(TOP - 6 * P, TOP - 4 * P)
TMPFS = FileRange(TOP - 8 * P, TOP - 6 * P)
HOLE = FileRange(0, P)
BEYOND = FileRange(TOP, TOP + P)
SET_UP_NOW = 1000 * SECOND
"""The clock of set_up's update_usage (the same for both sides, so later scans agree)."""


def bad(value: object) -> Any:
    """``value``, typed as anything: an argument the signature does not allow, on purpose."""
    return value


def update_usage_at(f: AnyFile, now: object) -> None:
    """``update_usage`` with the clock reading ``now`` (the spec takes it; impl asks its clock)."""
    if isinstance(f, SpecMemoryFile):
        f.update_usage(bad(now))
    else:
        f.clock = lambda: bad(now)
        f.update_usage()


def set_up(f: AnyFile) -> None:
    """Build the layout of the module docstring."""
    assert f.allocate(4 * P, ANON) == LIVE
    assert f.allocate(2 * P, ANON) == FREED
    assert f.allocate(2 * P, MemoryKind.TMPFS) == TMPFS
    f.map_internal(FileRange(0, TOP), READ)
    f.write(LIVE.start, b"data")
    f.write(FREED.start, b"secret")
    update_usage_at(f, SET_UP_NOW)
    f.dec_ref(FREED)
    f.mark_evictable("user", EvictableRange(0, 10))
    f.mark_evictable("other", EvictableRange(20, 30))


class ReaderCalled(BaseException):
    """Raised by :class:`UntouchableReader`: not an Exception, so no fill swallows it."""


class UntouchableReader:
    """A reader for calls that must be rejected before anything is read."""

    def readinto(self, buffer: memoryview, /) -> int:
        raise ReaderCalled("a rejected allocate_and_fill called its reader")


class UnhashableUser:
    """A user whose hash fails (it defines __hash__, so isinstance(Hashable) holds)."""

    def __hash__(self) -> int:
        raise TypeError("no hash")


class NotCallableReadinto:
    """Not a reader, though it has a ``readinto``."""

    readinto = 5


@dataclass(frozen=True)
class Case:
    """One bad call: ``call`` on a file from :func:`set_up` must raise ``error`` and change nothing.

    ``error`` None: a call that must be harmless (return, change nothing);
    ``destroyed``: the file is destroyed first; ``impl_only``: the spec lacks the method.
    """

    operation: str
    argument: str
    call: Callable[[Any], object]
    error: type[BaseException] | None
    errno: int | None = None
    destroyed: bool = False
    impl_only: bool = False

    @property
    def name(self) -> str:
        return f"{self.operation}: {self.argument}"


def _allocate_cases() -> list[Case]:
    lengths: list[tuple[str, object, type[BaseException]]] = [
        ("negative", -P, InvalidArgument),
        ("zero", 0, InvalidLength),
        ("unaligned, one byte", 1, InvalidLength),
        ("unaligned", P + 1, InvalidLength),
        ("2^64 - 1", UINT64_MAX, InvalidLength),
        ("2^64", 1 << 64, InvalidArgument),
        ("beyond 2^64, page-aligned", (1 << 64) + P, InvalidArgument),
        ("a float", float(P), InvalidArgument),
        ("a bool", True, InvalidArgument),
        ("a str", "4096", InvalidArgument),
        ("None", None, InvalidArgument),
        ("a MemoryKind", MemoryKind.TMPFS, InvalidArgument),
    ]
    kinds: list[tuple[str, object]] = [
        ("kind an int", 1),
        ("kind None", None),
        ("kind a str", "ANONYMOUS"),
        ("kind another IntEnum", DelayedEviction.ENABLED),
    ]
    cases = []
    for name, length, error in lengths:
        cases.append(Case("allocate", f"length {name}", _allocate(length, ANON), error))
        cases.append(
            Case(
                "allocate_and_fill",
                f"length {name}",
                _fill(length, ANON, UntouchableReader()),
                error,
            )
        )
    for name, kind in kinds:
        cases.append(Case("allocate", name, _allocate(P, kind), InvalidArgument))
        cases.append(
            Case("allocate_and_fill", name, _fill(P, kind, UntouchableReader()), InvalidArgument)
        )
    enomem = errno.ENOMEM
    cases += [
        Case(
            "allocate", "longest length: nothing fits", _allocate(MAX_PAGE, ANON), OSError, enomem
        ),
        Case(
            "allocate_and_fill",
            "longest length: nothing fits",
            _fill(MAX_PAGE, ANON, UntouchableReader()),
            OSError,
            enomem,
        ),
        Case("allocate_and_fill", "reader bytes", _fill(P, ANON, b"data"), InvalidArgument),
        Case("allocate_and_fill", "reader None", _fill(P, ANON, None), InvalidArgument),
        Case(
            "allocate_and_fill",
            "reader's readinto not callable",
            _fill(P, ANON, NotCallableReadinto()),
            InvalidArgument,
        ),
        Case(
            "allocate_and_fill",
            "reader bytes and length zero (the reader is checked first)",
            _fill(0, ANON, b"data"),
            InvalidArgument,
        ),
    ]
    return cases


def _allocate(length: object, kind: object) -> Callable[[AnyFile], object]:
    return lambda f: f.allocate(bad(length), bad(kind))


def _fill(length: object, kind: object, reader: object) -> Callable[[AnyFile], object]:
    return lambda f: f.allocate_and_fill(bad(length), bad(kind), bad(reader))


WRONG_TYPE_RANGES: list[tuple[str, object]] = [
    ("a tuple", tuple(LIVE)),
    ("a list", list(LIVE)),
    ("None", None),
    ("an int", LIVE.start),
    ("an EvictableRange", EvictableRange(*LIVE)),
    ("a FileRange of floats", FileRange(bad(float(LIVE.start)), bad(float(LIVE.end)))),
    ("a FileRange of bools", FileRange(bad(False), bad(True))),
    ("a FileRange of strs", FileRange(bad("0"), bad("4096"))),
]
"""Ranges of the wrong type: InvalidArgument wherever a FileRange is expected."""

UINT64_RANGES: list[tuple[str, FileRange]] = [
    ("negative start", FileRange(-P, P)),
    ("negative end", FileRange(0, -P)),
    ("ending at 2^64", FileRange(MAX_PAGE, 1 << 64)),
    ("beyond 2^64", FileRange(1 << 64, (1 << 64) + P)),
    ("ending beyond 2^64", FileRange(0, 1 << 65)),
]
"""FileRanges with offsets outside uint64: InvalidArgument."""

ILL_FORMED_RANGES: list[tuple[str, FileRange]] = [
    ("empty at zero", FileRange(0, 0)),
    ("empty", FileRange(LIVE.start, LIVE.start)),
    ("ill-formed", FileRange(LIVE.end, LIVE.start)),
    ("ill-formed by one byte", FileRange(LIVE.start + 1, LIVE.start)),
]
"""Empty or ill-formed FileRanges: InvalidRange."""


def _page_range_cases() -> list[Case]:
    """inc_ref, dec_ref and decommit: page ranges of allocated pages (referenced, for refs)."""
    shared: list[tuple[str, object, type[BaseException]]] = [
        *((n, r, InvalidArgument) for n, r in WRONG_TYPE_RANGES + UINT64_RANGES),
        *((n, r, InvalidRange) for n, r in ILL_FORMED_RANGES),
        ("unaligned start", FileRange(LIVE.start + 1, LIVE.end), InvalidRange),
        ("unaligned end", FileRange(LIVE.start, LIVE.end - 1), InvalidRange),
        ("unaligned, ending at 2^64 - 1", FileRange(MAX_PAGE, UINT64_MAX), InvalidRange),
        ("unallocated", HOLE, UnallocatedPages),
        ("partly unallocated, below", FileRange(TMPFS.start - 2 * P, TMPFS.end), UnallocatedPages),
        ("beyond the file", BEYOND, UnallocatedPages),
        ("partly beyond the file", FileRange(LIVE.start, BEYOND.end), UnallocatedPages),
        ("the last page below 2^64", FileRange(MAX_PAGE - P, MAX_PAGE), UnallocatedPages),
    ]
    references: list[tuple[str, object, type[BaseException]]] = [
        ("references already zero", FREED, NoReferences),
        ("partly references already zero", FileRange(FREED.start, LIVE.end), NoReferences),
        ("unallocated and freed", FileRange(TMPFS.start - P, FREED.end), UnallocatedPages),
    ]
    cases = []
    for operation in ("inc_ref", "dec_ref", "decommit"):
        # Decommit needs allocated pages, not references: freed pages are fine.
        rows = shared + (references if operation != "decommit" else [])
        for name, fr, error in rows:
            cases.append(Case(operation, name, _method(operation, fr), error))
    return cases


def _method(operation: str, *args: object) -> Callable[[AnyFile], object]:
    return lambda f: getattr(f, operation)(*args)


def _byte_range_cases() -> list[Case]:
    """map_internal and read: byte ranges inside the file (mapped, for read)."""
    rows: list[tuple[str, object, type[BaseException]]] = [
        *((n, r, InvalidArgument) for n, r in WRONG_TYPE_RANGES + UINT64_RANGES),
        *((n, r, InvalidRange) for n, r in ILL_FORMED_RANGES),
        ("beyond the file", BEYOND, RangeBeyondFile),
        ("partly beyond the file, unaligned", FileRange(TOP - 1, TOP + 1), RangeBeyondFile),
        ("up to 2^64 - 1", FileRange(0, UINT64_MAX), RangeBeyondFile),
    ]
    cases = []
    for name, fr, error in rows:
        cases.append(Case("map_internal", name, _method("map_internal", fr, READ), error))
        cases.append(Case("read", name, _method("read", fr), error))
    eacces = errno.EACCES
    execute = AccessType(read=True, execute=True)
    accesses: list[tuple[str, object]] = [
        ("access a dict", {"read": True}),
        ("access a str", "r"),
        ("access None", None),
        ("access an int", 1),
    ]
    for name, at in accesses:
        cases.append(Case("map_internal", name, _method("map_internal", LIVE, at), InvalidArgument))
    cases += [
        Case(
            "map_internal",
            "execute access",
            _method("map_internal", LIVE, execute),
            OSError,
            eacces,
        ),
        Case(
            "map_internal",
            "execute access beyond the file (EACCES is checked first)",
            _method("map_internal", BEYOND, execute),
            OSError,
            eacces,
        ),
        Case(
            "map_internal",
            "execute access, a tuple range (the range is checked first)",
            _method("map_internal", tuple(LIVE), execute),
            InvalidArgument,
        ),
    ]
    return cases


def _write_cases() -> list[Case]:
    rows: list[tuple[str, object, object, type[BaseException]]] = [
        ("offset negative", -1, b"a", InvalidArgument),
        ("offset a float", float(LIVE.start), b"a", InvalidArgument),
        ("offset a str", "0", b"a", InvalidArgument),
        ("offset None", None, b"a", InvalidArgument),
        ("offset 2^64 - 1, ending at 2^64", UINT64_MAX, b"a", InvalidArgument),
        ("offset 2^64", 1 << 64, b"a", InvalidArgument),
        ("beyond the file", TOP, b"a", RangeBeyondFile),
        ("partly beyond the file", TOP - 1, b"ab", RangeBeyondFile),
        ("data a str", LIVE.start, "ab", InvalidArgument),
        ("data a list of ints", LIVE.start, [1, 2], InvalidArgument),
        ("data an int", LIVE.start, 5, InvalidArgument),
        ("data None", LIVE.start, None, InvalidArgument),
    ]
    return [Case("write", n, _method("write", o, d), e) for n, o, d, e in rows]


def _evictable_cases() -> list[Case]:
    ranges: list[tuple[str, object, type[BaseException]]] = [
        ("ill-formed", EvictableRange(9, 3), InvalidRange),
        ("negative", EvictableRange(-1, 3), InvalidArgument),
        ("ending at 2^64", EvictableRange(0, 1 << 64), InvalidArgument),
        ("beyond 2^64", EvictableRange(1 << 64, 1 << 65), InvalidArgument),
        ("a tuple", (0, 3), InvalidArgument),
        ("a FileRange", FileRange(0, 3), InvalidArgument),
        ("floats", EvictableRange(bad(0.0), bad(3.0)), InvalidArgument),
        ("None", None, InvalidArgument),
    ]
    users: list[tuple[str, object]] = [
        ("user a list", []),
        ("user a dict", {}),
        ("user whose hash fails", UnhashableUser()),
    ]
    cases = []
    for operation in ("mark_evictable", "mark_unevictable"):
        for name, er, error in ranges:
            cases.append(Case(operation, f"range {name}", _method(operation, "user", er), error))
        cases.append(
            Case(
                operation,
                "range ill-formed, unknown user (checked before the lookup)",
                _method(operation, "stranger", EvictableRange(9, 3)),
                InvalidRange,
            )
        )
        for name, user in users:
            call = _method(operation, user, EvictableRange(0, 1))
            cases.append(Case(operation, name, call, InvalidArgument))
    for name, user in users:
        call = _method("mark_all_unevictable", user)
        cases.append(Case("mark_all_unevictable", name, call, InvalidArgument))
    return cases


def _clock_reads(now: object) -> Callable[[AnyFile], object]:
    return lambda f: update_usage_at(f, now)


def _clock_cases() -> list[Case]:
    clocks: list[tuple[str, object]] = [
        ("a float", SET_UP_NOW + 0.5),
        ("a bool", True),
        ("a str", "now"),
        ("None", None),
    ]
    return [
        Case(
            "update_usage",
            f"clock {name}",
            _clock_reads(now),
            InvalidArgument,
        )
        for name, now in clocks
    ]


def _after_destroy_cases() -> list[Case]:
    """Every method after destroy: UseAfterDestroy, or (error None) nothing at all."""
    refused: list[tuple[str, str, Callable[[Any], object]]] = [
        ("allocate", "", _allocate(P, ANON)),
        ("allocate_and_fill", "", _fill(P, ANON, UntouchableReader())),
        ("inc_ref", "", _method("inc_ref", LIVE)),
        ("dec_ref", "", _method("dec_ref", LIVE)),
        ("decommit", "", _method("decommit", LIVE)),
        ("map_internal", "", _method("map_internal", LIVE, READ)),
        ("read", "", _method("read", LIVE)),
        ("write", "", _method("write", LIVE.start, b"x")),
        ("write", ", no data", _method("write", LIVE.start, b"")),
        ("mark_evictable", "", _method("mark_evictable", "user", EvictableRange(0, 1))),
        ("mark_unevictable", "", _method("mark_unevictable", "user", EvictableRange(0, 1))),
        ("mark_all_unevictable", "", _method("mark_all_unevictable", "user")),
        ("should_cache_evictable", "", _method("should_cache_evictable")),
        ("start_evictions", "", _method("start_evictions")),
        ("update_usage", "", lambda f: update_usage_at(f, 2 * SET_UP_NOW)),
        ("total_usage", "", _method("total_usage")),
        ("total_size", "", _method("total_size")),
    ]
    cases = [
        Case(operation, f"after destroy{more}", call, UseAfterDestroy, destroyed=True)
        for operation, more, call in refused
    ]
    for operation in ("fd", "file", "committed_ranges"):  # impl's own methods
        call = _method(operation)
        cases.append(
            Case(operation, "after destroy", call, UseAfterDestroy, destroyed=True, impl_only=True)
        )
    # The drivers of background work find none; a second destroy does nothing.
    for operation in (
        "reclaim",
        "run_evictions",
        "wait_for_evictions",
        "memcg_pressure",
        "destroy",
    ):
        cases.append(Case(operation, "after destroy", _method(operation), None, destroyed=True))
    return cases


CASES: tuple[Case, ...] = (
    *_allocate_cases(),
    *_page_range_cases(),
    *_byte_range_cases(),
    *_write_cases(),
    *_evictable_cases(),
    *_clock_cases(),
    *_after_destroy_cases(),
)
"""Every (operation, argument class) case: the table."""


OPTION_CASES: list[tuple[str, object]] = [
    ("delayed_eviction out of range", MemoryFileOpts(delayed_eviction=bad(7))),
    ("delayed_eviction negative", MemoryFileOpts(delayed_eviction=bad(-1))),
    ("delayed_eviction a str", MemoryFileOpts(delayed_eviction=bad("enabled"))),
    ("delayed_eviction a bool", MemoryFileOpts(delayed_eviction=bad(True))),
    ("delayed_eviction a float", MemoryFileOpts(delayed_eviction=bad(2.0))),
    ("delayed_eviction None", MemoryFileOpts(delayed_eviction=bad(None))),
    ("use_host_memcg_pressure an int", MemoryFileOpts(use_host_memcg_pressure=bad(1))),
    ("use_host_memcg_pressure None", MemoryFileOpts(use_host_memcg_pressure=bad(None))),
    ("manual_zeroing an int", MemoryFileOpts(manual_zeroing=bad(0))),
    ("manual_zeroing a str", MemoryFileOpts(manual_zeroing=bad("yes"))),
    ("opts a str", "opts"),
    ("opts None", None),
    ("opts a dict", {"delayed_eviction": DelayedEviction.ENABLED}),
    ("opts a DelayedEviction", DelayedEviction.MANUAL),
]
"""Constructor options the seed's NewMemoryFile rejects: InvalidOptions, and no file made."""

BAD_INPUTS = len(CASES) + len(OPTION_CASES)
"""How many bad inputs the table tries (docs/reliability.md quotes it)."""

OPERATIONS = frozenset(case.operation for case in CASES) | {"__init__"}
"""The operations the table covers."""


def prepare(f: AnyFile, case: Case) -> None:
    """Bring a new file to the case's starting point."""
    set_up(f)
    if case.destroyed:
        f.destroy()


def run(f: AnyFile, case: Case) -> BaseException | None:
    """Make the case's call; assert it raised the case's error (errno too); return that error.

    Any other outcome is an AssertionError naming the case, so a check
    reports a wrong exception as a failure, not as an error of its own.
    """
    try:
        case.call(f)
    except (Exception, ReaderCalled) as error:
        raised: BaseException | None = error
    else:
        raised = None
    if case.error is None:
        assert raised is None, f"{case.name}: raised {raised!r}"
        return None
    assert isinstance(raised, case.error), (
        f"{case.name}: expected {case.error.__name__}, got {raised!r}"
    )
    if case.errno is not None:
        assert isinstance(raised, OSError) and raised.errno == case.errno, (
            f"{case.name}: expected errno {case.errno}, got {raised!r}"
        )
    return raised


def file_contents(fd: int, size: int) -> tuple[tuple[int, int, str], ...]:
    """(offset, length, sha256) of every data region of the file, read with ``pread``.

    SEEK_DATA/SEEK_HOLE skip the holes, and ``pread`` neither commits pages
    nor touches the file's mappings: looking changes nothing.
    """
    regions = []
    position = 0
    while position < size:
        try:
            start = os.lseek(fd, position, os.SEEK_DATA)
        except OSError as error:
            if error.errno == errno.ENXIO:  # no data after position
                break
            raise
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        digest = hashlib.sha256(os.pread(fd, end - start, start)).hexdigest()
        regions.append((start, end - start, digest))
        position = end
    return tuple(regions)


def impl_snapshot(f: MemoryFile, destroyed: bool) -> dict[str, object]:
    """Everything a rejected call could change on a real file, by name.

    The observation (usage, reclaim set, accounting, counters, evictable
    users), and the kernel's view: the size, the blocks ``fstat`` counts,
    what ``mincore`` says is committed, the bytes of every data region, and
    which chunks are mapped. A destroyed file has only its observation left.
    """
    if destroyed:
        return {"observation": f.observation()}
    size = f.total_size()
    return {
        "observation": f.observation(),
        "total size": size,
        "total usage": f.total_usage(),
        "committed ranges": f.committed_ranges(),
        "file contents": file_contents(f.fd(), size),
        "mapped chunks": f._state.chunks.mapped(),
    }


def changed(before: dict[str, object], after: dict[str, object]) -> list[str]:
    """The names of the parts of two snapshots that differ."""
    return [name for name in before if before[name] != after[name]]


class Changed(AssertionError):
    """A rejected call changed ``parts`` of the file (names of :func:`impl_snapshot`'s parts).

    The report names the parts only: a snapshot holds the bytes of the file.
    """

    def __init__(self, call: str, parts: list[str]) -> None:
        super().__init__(f"{call}: changed {parts}")
        self.call = call
        self.parts = parts


def assert_unchanged(call: str, before: dict[str, object], after: dict[str, object]) -> None:
    r""":class:`Changed` naming the parts of two :func:`impl_snapshot`\ s that differ, if any."""
    parts = changed(before, after)
    if parts:
        raise Changed(call, parts)


def quiet_file() -> MemoryFile:
    """A file without threads, accounting to its own MemoryAccounting."""
    return MemoryFile(background=False, accounting=MemoryAccounting())

"""Every class of bad input: the spec's exception type, and nothing changed.

Each case is applied to a ``SpecMemoryFile`` and an ``impl.MemoryFile`` set
up identically (live memory, memory awaiting reclaim, an evictable user,
mapped chunks). Both must raise the same exception type (the same errno for
``OSError``), and neither may change: the observations before and after are
equal, and the impl's still equals the spec's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from impl import MemoryAccounting, MemoryFile
from spec import SpecMemoryFile
from spec.errors import (
    InvalidArgument,
    InvalidLength,
    InvalidOptions,
    InvalidRange,
    NoReferences,
    RangeBeyondFile,
    UnallocatedPages,
)
from spec.vocabulary import (
    CHUNK_SIZE,
    MAX_PAGE,
    PAGE_SIZE,
    READ,
    AccessType,
    BytesReader,
    DelayedEviction,
    EvictableRange,
    FileRange,
    MemoryFileOpts,
    MemoryKind,
)

AnyFile = SpecMemoryFile | MemoryFile
ANON = MemoryKind.ANONYMOUS
TOP = CHUNK_SIZE  # the file is one chunk; allocations come from its top
LIVE = FileRange(TOP - 4 * PAGE_SIZE, TOP)
FREED = FileRange(TOP - 6 * PAGE_SIZE, TOP - 4 * PAGE_SIZE)
HOLE = FileRange(0, PAGE_SIZE)
BEYOND = FileRange(TOP, TOP + PAGE_SIZE)


def set_up(f: AnyFile) -> None:
    assert f.allocate(4 * PAGE_SIZE, ANON) == LIVE
    assert f.allocate(2 * PAGE_SIZE, ANON) == FREED
    f.allocate(2 * PAGE_SIZE, MemoryKind.TMPFS)
    f.dec_ref(FREED)  # awaits reclaim: refs 0
    f.map_internal(LIVE, READ)
    f.write(LIVE.start, b"data")
    f.mark_evictable("user", EvictableRange(0, 10))


def with_bad(value: object) -> Any:
    return value


CASES: dict[str, tuple[Callable[[AnyFile], object], type[Exception], int | None]] = {
    # allocate / allocate_and_fill: the length and the kind
    "length zero": (lambda f: f.allocate(0, ANON), InvalidLength, None),
    "length unaligned": (lambda f: f.allocate(PAGE_SIZE + 1, ANON), InvalidLength, None),
    "length negative": (lambda f: f.allocate(-PAGE_SIZE, ANON), InvalidArgument, None),
    "length beyond uint64": (lambda f: f.allocate(1 << 64, ANON), InvalidArgument, None),
    "length a float": (lambda f: f.allocate(with_bad(4096.0), ANON), InvalidArgument, None),
    "length a bool": (lambda f: f.allocate(with_bad(True), ANON), InvalidArgument, None),
    "kind an int": (lambda f: f.allocate(PAGE_SIZE, with_bad(1)), InvalidArgument, None),
    "no range fits": (lambda f: f.allocate(MAX_PAGE, ANON), OSError, 12),
    "fill length zero": (
        lambda f: f.allocate_and_fill(0, ANON, BytesReader(b"x")),
        InvalidLength,
        None,
    ),
    "fill from a non-reader": (
        lambda f: f.allocate_and_fill(PAGE_SIZE, ANON, with_bad(b"data")),
        InvalidArgument,
        None,
    ),
    # ranges of inc_ref / dec_ref / decommit
    "range ill-formed": (lambda f: f.dec_ref(FileRange(TOP, TOP - PAGE_SIZE)), InvalidRange, None),
    "range empty": (lambda f: f.inc_ref(FileRange(LIVE.start, LIVE.start)), InvalidRange, None),
    "range unaligned": (
        lambda f: f.decommit(FileRange(LIVE.start, LIVE.end - 1)),
        InvalidRange,
        None,
    ),
    "range a tuple": (lambda f: f.dec_ref(with_bad(tuple(LIVE))), InvalidArgument, None),
    "range negative": (lambda f: f.inc_ref(FileRange(-PAGE_SIZE, 0)), InvalidArgument, None),
    "range unallocated": (lambda f: f.dec_ref(HOLE), UnallocatedPages, None),
    "range partly unallocated": (
        lambda f: f.inc_ref(FileRange(LIVE.start, BEYOND.end)),
        UnallocatedPages,
        None,
    ),
    "decommit unallocated": (lambda f: f.decommit(HOLE), UnallocatedPages, None),
    "dec_ref without references": (lambda f: f.dec_ref(FREED), NoReferences, None),
    "inc_ref without references": (
        lambda f: f.inc_ref(FileRange(FREED.start, LIVE.end)),
        NoReferences,
        None,
    ),
    # map_internal, read, write
    "map empty": (lambda f: f.map_internal(FileRange(0, 0), READ), InvalidRange, None),
    "map beyond the file": (lambda f: f.map_internal(BEYOND, READ), RangeBeyondFile, None),
    "map executable": (
        lambda f: f.map_internal(LIVE, AccessType(read=True, execute=True)),
        OSError,
        13,
    ),
    "map with a string access": (
        lambda f: f.map_internal(LIVE, with_bad("r")),
        InvalidArgument,
        None,
    ),
    "read beyond the file": (lambda f: f.read(BEYOND), RangeBeyondFile, None),
    "read ill-formed": (lambda f: f.read(FileRange(5, 1)), InvalidRange, None),
    "write beyond uint64": (lambda f: f.write((1 << 64) - 1, b"ab"), InvalidArgument, None),
    "write beyond the file": (lambda f: f.write(TOP, b"a"), RangeBeyondFile, None),
    # evictable ranges and users
    "evictable ill-formed": (
        lambda f: f.mark_evictable("user", EvictableRange(9, 3)),
        InvalidRange,
        None,
    ),
    "evictable a tuple": (
        lambda f: f.mark_unevictable("user", with_bad((0, 3))),
        InvalidArgument,
        None,
    ),
    "evictable negative": (
        lambda f: f.mark_evictable("user", EvictableRange(-1, 3)),
        InvalidArgument,
        None,
    ),
    "user unhashable": (
        lambda f: f.mark_evictable(with_bad([]), EvictableRange(0, 3)),
        InvalidArgument,
        None,
    ),
    "user unhashable, all": (lambda f: f.mark_all_unevictable(with_bad({})), InvalidArgument, None),
}


def observe(f: AnyFile) -> tuple[object, ...]:
    o = f.observation()
    return tuple(getattr(o, field.name) for field in dataclasses.fields(o))


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_rejected_like_the_spec_and_changes_nothing(case: str) -> None:
    call, expected, code = CASES[case]
    spec = SpecMemoryFile()
    with MemoryFile(background=False, accounting=MemoryAccounting()) as impl:
        set_up(spec)
        set_up(impl)
        spec_before, impl_before = observe(spec), observe(impl)
        assert spec_before == impl_before
        raised = []
        for f in (spec, impl):
            with pytest.raises(expected) as error:
                call(f)
            raised.append(error.value)
        assert type(raised[0]) is type(raised[1])
        if code is not None:
            assert isinstance(raised[1], OSError) and raised[1].errno == code
            assert getattr(raised[0], "errno", None) == code
        assert observe(spec) == spec_before
        assert observe(impl) == impl_before
        assert impl.read(LIVE)[:4] == b"data"


@pytest.mark.parametrize(
    "opts",
    [
        MemoryFileOpts(delayed_eviction=with_bad(7)),
        MemoryFileOpts(delayed_eviction=with_bad("enabled")),
        MemoryFileOpts(use_host_memcg_pressure=with_bad(1)),
        with_bad("opts"),
    ],
)
def test_bad_options_are_invalid_options(opts: MemoryFileOpts) -> None:
    with pytest.raises(InvalidOptions):
        SpecMemoryFile(opts)
    with pytest.raises(InvalidOptions):
        MemoryFile(opts, background=False)


def test_options_are_normalised_as_the_spec_does() -> None:
    for mode in DelayedEviction:
        for memcg in (False, True):
            opts = MemoryFileOpts(mode, use_host_memcg_pressure=memcg)
            with MemoryFile(opts, background=False) as f:
                assert f.opts == SpecMemoryFile(opts).state.opts
                assert f.should_cache_evictable() == SpecMemoryFile(opts).should_cache_evictable()

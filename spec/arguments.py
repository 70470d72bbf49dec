"""Argument checks shared by the specification and the implementation.

Each function checks one argument of a public operation, as the seed's
``panic`` guards do, and raises the matching :mod:`spec.errors` exception.
They look at values only, never at allocator state, so ``impl/`` can use them
and reject exactly what the specification rejects.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import cast

from spec.errors import InvalidArgument, InvalidLength, InvalidOptions, InvalidRange
from spec.vocabulary import (
    PAGE_SIZE,
    AccessType,
    DelayedEviction,
    EvictableRange,
    FileRange,
    MemoryFileOpts,
    MemoryKind,
    Reader,
    is_uint64,
)


def check_length(length: object) -> int:
    """Allocate's guard: ``length`` is a non-zero multiple of the page size."""
    if not is_uint64(length):
        raise InvalidArgument(f"length must be a uint64 int, not {length!r}")
    assert isinstance(length, int)
    if length == 0 or length % PAGE_SIZE != 0:
        raise InvalidLength(f"invalid allocation length: {length:#x}")
    return length


def check_kind(kind: object) -> MemoryKind:
    if not isinstance(kind, MemoryKind):
        raise InvalidArgument(f"kind must be a MemoryKind, not {kind!r}")
    return kind


def check_file_range(fr: object) -> FileRange:
    """MapInternal's guard: a well-formed, non-empty range of uint64 offsets."""
    if not (isinstance(fr, FileRange) and is_uint64(fr.start) and is_uint64(fr.end)):
        raise InvalidArgument(f"expected a FileRange of uint64 offsets, not {fr!r}")
    if not fr.well_formed() or fr.start == fr.end:
        raise InvalidRange(f"invalid range: {fr}")
    return fr


def check_page_range(fr: object) -> FileRange:
    """The guard of Decommit, IncRef and DecRef: also page-aligned."""
    fr = check_file_range(fr)
    if fr.start % PAGE_SIZE or fr.end % PAGE_SIZE:
        raise InvalidRange(f"invalid range: {fr} is not page-aligned")
    return fr


def check_evictable_range(er: object) -> EvictableRange:
    """A well-formed range of uint64 offsets (it may be empty)."""
    if not (isinstance(er, EvictableRange) and is_uint64(er.start) and is_uint64(er.end)):
        raise InvalidArgument(f"expected an EvictableRange of uint64 offsets, not {er!r}")
    if not er.well_formed():
        raise InvalidRange(f"invalid evictable range: {er}")
    return er


def check_user(user: object) -> Hashable:
    if not isinstance(user, Hashable):
        raise InvalidArgument(f"an evictable memory user must be hashable, not {user!r}")
    try:
        hash(user)
    except Exception as error:  # a user's own __hash__ may raise anything
        raise InvalidArgument(f"an evictable memory user must be hashable: {error!r}") from error
    return user


def check_access(at: object) -> AccessType:
    if not isinstance(at, AccessType):
        raise InvalidArgument(f"expected an AccessType, not {at!r}")
    return at


def normalize_opts(opts: object) -> MemoryFileOpts:
    """NewMemoryFile's option handling: validate, then normalise.

    DEFAULT becomes ENABLED; DISABLED and MANUAL turn memcg pressure off (it
    only means something with ENABLED). Anything else is :class:`InvalidOptions`.
    """
    if not isinstance(opts, MemoryFileOpts):
        raise InvalidOptions(f"expected MemoryFileOpts, not {opts!r}")
    if type(opts.use_host_memcg_pressure) is not bool or type(opts.manual_zeroing) is not bool:
        raise InvalidOptions(f"use_host_memcg_pressure and manual_zeroing must be bools: {opts}")
    value: object = opts.delayed_eviction
    try:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError
        delayed = DelayedEviction(value)
    except ValueError:
        raise InvalidOptions(
            f"invalid MemoryFileOpts.DelayedEviction: {opts.delayed_eviction!r}"
        ) from None
    memcg = opts.use_host_memcg_pressure
    if delayed is DelayedEviction.DEFAULT:
        delayed = DelayedEviction.ENABLED
    elif delayed in (DelayedEviction.DISABLED, DelayedEviction.MANUAL):
        memcg = False
    return MemoryFileOpts(delayed, memcg, opts.manual_zeroing)


def check_reader(reader: object) -> Reader:
    """AllocateAndFill's reader has a ``readinto`` method (:class:`spec.vocabulary.Reader`).

    Checked before anything else, so a wrong argument allocates nothing.
    """
    if not callable(getattr(reader, "readinto", None)):
        raise InvalidArgument(
            f"reader must have a readinto(buffer) method (spec.vocabulary.Reader), not {reader!r}"
        )
    return cast(Reader, reader)


def check_write(offset: object, data: object) -> tuple[FileRange, bytes]:
    """write's arguments: a uint64 offset and bytes-like data; the range written, and the bytes.

    The range may end past uint64 (its check then rejects it) and is empty for no data.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidArgument(f"data must be bytes, bytearray or memoryview, not {data!r}")
    if not is_uint64(offset):
        raise InvalidArgument(f"offset must be a uint64 int, not {offset!r}")
    assert isinstance(offset, int)
    data = bytes(data)
    return FileRange(offset, offset + len(data)), data


def read_count(n: object, size: int) -> int:
    """The bytes a ``readinto`` of a ``size``-byte buffer wrote, from what it returned.

    None (no data: Python's non-blocking "nothing now") counts as 0, the end;
    a count above ``size`` as ``size`` (the reader cannot have written more).
    ValueError for anything but None or a non-negative int: ``allocate_and_fill``
    ends with it as the reader's error.
    """
    if n is None:
        return 0
    if type(n) is not int or n < 0:
        raise ValueError(f"readinto returned {n!r}, not a count of bytes written")
    return min(n, size)

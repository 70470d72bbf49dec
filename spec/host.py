"""The host model: what the kernel holds for the backing file.

The seed's comments define it (``MemoryFile``'s "modeled as follows"): each
page of the file is *committed* (the kernel spends memory on it) or not. An
uncommitted page reads as zeroes. Touching a page through a mapping commits
it, reads included; ``fallocate(PUNCH_HOLE)`` is the only thing that
uncommits. ``fstat``'s block count is the committed total, and ``mincore``
reports which pages are committed (there is no swap on the hosts we model).

We also keep the contents of pages that are not all zeroes, so the
specification can predict what a read returns, and in particular that memory
freed and allocated again reads as zeroes.

Ranges given to ``punch_hole`` and ``zero`` are page-aligned; reads and writes
may be at any byte offset and commit every page they touch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from spec.rangemap import EMPTY_SET, RangeSet
from spec.vocabulary import PAGE_SIZE, FileRange

ZERO_PAGE = bytes(PAGE_SIZE)


@dataclass(frozen=True, slots=True)
class Host:
    """The kernel's view of the backing file."""

    committed: RangeSet = EMPTY_SET
    """Pages that hold memory."""
    data: tuple[tuple[int, bytes], ...] = ()
    """(page offset, contents) for committed pages that are not all zeroes, sorted."""


def pages_touched(fr: FileRange) -> FileRange:
    """The page-aligned range covering every byte of ``fr``."""
    start = fr.start - fr.start % PAGE_SIZE
    end = -(-fr.end // PAGE_SIZE) * PAGE_SIZE
    return FileRange(start, max(start, end))


def committed_bytes(host: Host) -> int:
    """What ``fstat`` reports: ``st_blocks * 512``."""
    return host.committed.total()


def touch(host: Host, fr: FileRange) -> Host:
    """A read or write through a mapping: commits every page ``fr`` touches."""
    if fr.start >= fr.end:
        return host
    return replace(host, committed=host.committed.assign(pages_touched(fr), None))


def read(host: Host, fr: FileRange) -> tuple[Host, bytes]:
    """Read ``fr`` through a mapping: its bytes, and the pages it committed."""
    contents = dict(host.data)
    out = bytearray()
    for page in range(pages_touched(fr).start, pages_touched(fr).end, PAGE_SIZE):
        out += contents.get(page, ZERO_PAGE)
    offset = fr.start % PAGE_SIZE
    return touch(host, fr), bytes(out[offset : offset + fr.length()])


def write(host: Host, offset: int, data: bytes) -> Host:
    """Write ``data`` at ``offset`` through a mapping."""
    fr = FileRange(offset, offset + len(data))
    contents = dict(host.data)
    for page in range(pages_touched(fr).start, pages_touched(fr).end, PAGE_SIZE):
        lo = max(fr.start, page)
        hi = min(fr.end, page + PAGE_SIZE)
        buffer = bytearray(contents.get(page, ZERO_PAGE))
        buffer[lo - page : hi - page] = data[lo - fr.start : hi - fr.start]
        contents[page] = bytes(buffer)
    return replace(touch(host, fr), data=_nonzero(contents))


def zero(host: Host, fr: FileRange) -> Host:
    """Write zeroes over the page-aligned ``fr`` (manual zeroing): commits it."""
    return replace(touch(host, fr), data=_drop(host.data, fr))


def punch_hole(host: Host, fr: FileRange) -> Host:
    """``fallocate(PUNCH_HOLE | KEEP_SIZE)`` over the page-aligned ``fr``."""
    return Host(committed=host.committed.remove(fr), data=_drop(host.data, fr))


def reads_as_zero(host: Host, fr: FileRange) -> bool:
    """Whether every byte of ``fr`` is zero (without touching anything)."""
    for page, contents in host.data:
        lo = max(fr.start, page)
        hi = min(fr.end, page + PAGE_SIZE)
        if lo < hi and any(contents[lo - page : hi - page]):
            return False
    return True


def _drop(data: tuple[tuple[int, bytes], ...], fr: FileRange) -> tuple[tuple[int, bytes], ...]:
    return tuple((page, contents) for page, contents in data if not fr.contains(page))


def _nonzero(contents: dict[int, bytes]) -> tuple[tuple[int, bytes], ...]:
    return tuple(sorted((page, c) for page, c in contents.items() if c != ZERO_PAGE))

"""The client's hot operations on a :class:`impl.state.FileState`: allocate, inc_ref, dec_ref.

These are the bodies of ``MemoryFile``'s methods of the same names, kept apart so
that the compiled build compiles them (setup.py) while ``memory_file`` stays
interpreted. Precondition: every argument has exactly the Python type its
annotation names (``memory_file`` makes sure of it, and refuses anything else
as the spec does): compiled code converts an argument to its declared type at
the call, which would take ``True`` as 1. Everything else is checked here,
under the lock, in the seed's order: the file is live, then each value.

Each operation takes ``mu`` through ``FileState.mu_acquire``/``mu_release`` (a
``with`` costs more) and builds its ``FileRange`` with ``tuple.__new__``
(NamedTuple's ``__new__`` is Python code). O(log n) in the usage segments,
plus the segments a range spans.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from impl import usage
from impl.books import FRESH, SYSTEM, Usage, add_ref, drop_ref
from impl.state import FileState
from spec.arguments import check_length, check_page_range
from spec.errors import UseAfterDestroy, enomem
from spec.vocabulary import (
    CHUNK_MASK,
    HUGE_PAGE_SIZE,
    PAGE_SIZE,
    FileRange,
    MemoryKind,
)

# Final: compiled, a Final module constant is a C static, not a lookup in the module's dict.
_PAGE_MASK: Final = PAGE_SIZE - 1
_SMALL: Final = (1 << 62) - 1
"""The fast checks accept offsets and lengths up to here and leave larger ones to
``spec.arguments``: compiled, larger ints are boxed and compare slowly."""
_new_tuple: Final = tuple.__new__
_FILE_RANGE: Final = FileRange


def require_live(state: FileState) -> None:
    """UseAfterDestroy once the file is destroyed (every client method checks first)."""
    if state.destroyed:
        raise UseAfterDestroy("the MemoryFile has been destroyed")


def page_range(start: int, end: int, fr: FileRange) -> None:
    """``check_page_range(fr)`` for a FileRange of two ints ``start``, ``end``."""
    if not (0 <= start < end <= _SMALL and not (start | end) & _PAGE_MASK):
        check_page_range(fr)  # raises, unless a valid range beyond _SMALL


def allocate(state: FileState, length: int, kind: MemoryKind) -> FileRange:
    """Allocate (see ``MemoryFile.allocate``)."""
    state.mu_acquire()
    try:
        require_live(state)
        if not (0 < length <= _SMALL and not length & _PAGE_MASK):
            check_length(length)  # raises, unless a valid length beyond _SMALL
        # Hugepage-and-larger allocations are hugepage-aligned, to suit hugetmpfs.
        alignment = HUGE_PAGE_SIZE if length >= HUGE_PAGE_SIZE else PAGE_SIZE
        size = state.file_size
        # (An Iterable, not the tuple it is: compiled, it then goes to FileRange as it
        # is, where a tuple[int, int] would be unboxed and boxed again.)
        found: Iterable[int] | None = state.usage.find_available_range(size, length, alignment)
        if found is None:
            raise enomem(f"no range of {length:#x} bytes fits in {size:#x}")
        fr: FileRange = _new_tuple(_FILE_RANGE, found)
        start, end = fr
        if end > size:
            new_size = (end + CHUNK_MASK) & ~CHUNK_MASK
            state.kernel.ftruncate(state.fd, new_size)
            state.file_size = new_size
        if state.manual_zeroing:
            state.chunks.zero(start, end)
        state.usage.insert(start, end, FRESH[kind])
        return fr
    finally:
        state.mu_release()


def inc_ref(state: FileState, fr: FileRange) -> None:
    """IncRef (see ``MemoryFile.inc_ref``)."""
    state.mu_acquire()
    try:
        require_live(state)
        start, end = fr
        page_range(start, end, fr)
        usage.referenced(state.usage, fr, "IncRef")
        state.usage.update(start, end, add_ref)
    finally:
        state.mu_release()


def dec_ref(state: FileState, fr: FileRange) -> None:
    """DecRef (see ``MemoryFile.dec_ref``)."""
    state.mu_acquire()
    try:
        require_live(state)
        start, end = fr
        page_range(start, end, fr)
        segment = state.usage.lower_bound(start)
        if segment is not None and segment[0] <= start < end <= segment[1] and segment[2].refs:
            # The usual case, a whole allocation in one segment: what the
            # general path below does when that segment is the only part.
            u = segment[2]
            if u.refs == 1:
                free_locked(state, start, end, u)
        else:
            for s, e, u in usage.referenced(state.usage, fr, "DecRef"):
                if u.refs == 1:
                    free_locked(state, s, e, u)
        state.usage.update(start, end, drop_ref)
    finally:
        state.mu_release()


def free_locked(state: FileState, start: int, end: int, u: Usage) -> None:
    """``[start, end)`` of ``u`` lost its last reference: reclaim it, as System memory."""
    state.reclaim.add(start, end)
    if u.known_committed and u.kind is not SYSTEM:
        state.books.freed(u.kind, end - start)
    state.reclaimable = True
    state.signal_reclaimer_locked()

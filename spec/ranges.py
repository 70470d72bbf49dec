"""Where an allocation goes: ``find_available_range``, stated declaratively.

The seed finds a range with a loop over the gaps of its segment set, from the
end of the file backwards, then grows the file by doubling. This module says
*what* that loop computes, without the loop:

1. **Fit in a gap.** Of all the free gaps below the file size, take the
   highest aligned range of the requested length that fits in one of them.
2. **Else grow.** Double the file size (an empty file jumps to one chunk) until
   the aligned range at the very top of the file starts at or above the aligned
   start of the last free gap, i.e. above every allocated range. The file size
   is a Go ``int64``: a size that would exceed ``2**63 - 1`` means no fit.

Two lengths above ``2**63`` can never fit, and a length whose aligned start
would wrap past ``2**64`` cannot either; both fall out of step 2 without
special cases. ``models/proofs`` shows with z3 that the seed's loop returns
exactly this for every 64-bit input meeting the preconditions: it runs these
very functions on z3 terms (``models/proofs/symbolic.py``), so each is
written with ``+``, ``-``, ``*``, ``&``, ``~`` and comparisons of ints only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from spec.errors import InvalidArgument
from spec.vocabulary import (
    CHUNK_SIZE,
    HUGE_PAGE_SIZE,
    INT64_MAX,
    MAX_PAGE,
    PAGE_SIZE,
    FileRange,
    is_uint64,
)


def allocation_alignment(length: int) -> int:
    """Hugepage-and-larger allocations are hugepage-aligned, to suit hugetmpfs."""
    return HUGE_PAGE_SIZE if length >= HUGE_PAGE_SIZE else PAGE_SIZE


def align_down(value: int, alignment: int) -> int:
    """The largest multiple of ``alignment`` (a power of two) not above ``value``."""
    return value & ~(alignment - 1)


def align_up(value: int, alignment: int) -> int:
    """The smallest multiple of ``alignment`` (a power of two) not below ``value``."""
    return (value + alignment - 1) & ~(alignment - 1)


def is_power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


def free_gaps(allocated: Sequence[FileRange], file_size: int) -> list[FileRange]:
    """The gaps between ``allocated`` ranges below ``file_size``, lowest first (may be empty)."""
    gaps = []
    previous_end = 0
    for fr in allocated:
        gaps.append(FileRange(previous_end, fr.start))
        previous_end = fr.end
    gaps.append(FileRange(previous_end, file_size))
    return gaps


def top_fit(gap: FileRange, length: int, alignment: int) -> FileRange | None:
    """The highest range of ``length`` bytes with an aligned start inside ``gap``."""
    if gap.end < length:
        return None
    start = align_down(gap.end - length, alignment)
    return FileRange(start, start + length) if start >= gap.start else None


def highest(fits: Iterable[FileRange | None]) -> FileRange | None:
    """The highest of the fits that exist, or None."""
    return max((fit for fit in fits if fit is not None), default=None)


def growth_sizes(file_size: int) -> Iterator[int]:
    """The file sizes the seed tries when growing, smallest first.

    Each is double the last (an empty file becomes one chunk), while it fits in
    an ``int64``. Growth doubles whatever size it is given.
    """
    size = file_size
    while True:
        size = 2 * size if size else CHUNK_SIZE
        if size > INT64_MAX:
            return
        yield size


def find_available_range(
    allocated: Sequence[FileRange], file_size: int, length: int, alignment: int
) -> FileRange | None:
    """The range the seed's ``findAvailableRange`` returns, or None where it fails.

    ``allocated`` holds every range in the usage set (ranges awaiting reclaim
    included), sorted and disjoint, below ``file_size``. If the result ends
    beyond ``file_size``, the caller grows the file to cover it.

    Preconditions (else :class:`InvalidArgument`): ``alignment`` is a power of
    two; ``length`` is a non-zero multiple of the page size, at most
    ``MAX_PAGE``; ``0 <= file_size <= INT64_MAX``.
    """
    _check_preconditions(allocated, file_size, length, alignment)
    best = highest(top_fit(gap, length, alignment) for gap in free_gaps(allocated, file_size))
    if best is not None:
        return best
    last_gap_start = allocated[-1].end if allocated else 0
    lowest_start = align_up(last_gap_start, alignment)
    for size in growth_sizes(file_size):
        if fit := top_fit(FileRange(lowest_start, size), length, alignment):
            return fit
    return None


def _check_preconditions(
    allocated: Sequence[FileRange], file_size: int, length: int, alignment: int
) -> None:
    # alignment must be a power of two (the seed masks with alignment - 1).
    if not (is_uint64(alignment) and is_power_of_two(alignment)):
        raise InvalidArgument(f"alignment {alignment!r} is not a power of two")
    # length is what Allocate accepts: page-aligned, non-zero, a uint64.
    if not (is_uint64(length) and 0 < length <= MAX_PAGE and length % PAGE_SIZE == 0):
        raise InvalidArgument(f"length {length!r} is not a non-zero multiple of the page size")
    # file_size is the seed's int64 fileSize, never negative.
    if not (type(file_size) is int and 0 <= file_size <= INT64_MAX):
        raise InvalidArgument(f"file size {file_size!r} is not a non-negative int64")
    # allocated is the usage set: sorted, disjoint, well-formed, inside the file.
    previous_end = 0
    for fr in allocated:
        if not (previous_end <= fr.start <= fr.end <= file_size):
            raise InvalidArgument(
                f"allocated ranges must be sorted, disjoint and below the file size: {fr}"
            )
        previous_end = fr.end

"""The seed's ``findAvailableRange`` loop, transcribed line by line.

This is *not* the specification (``spec.ranges`` is): it is the seed's
algorithm over a plain list of allocated ranges, with Go's fixed-width
arithmetic emulated (uint64 offsets that wrap, an int64 file size), so that
tests and self-checks can compare it with the declarative specification on
any input, and the z3 encoding in ``models/proofs`` has a runnable twin.

Gaps are those of gVisor's segment set: one before each allocated range
(possibly empty), and a last one from the end of the last range to
``MaxKey = 2**64 - 1``. ``PrevLargeEnoughGap(n)`` is the nearest earlier gap
at least ``n`` bytes long.
"""

from __future__ import annotations

from collections.abc import Sequence

from spec.vocabulary import CHUNK_SIZE, UINT64_MAX, FileRange


def u64(value: int) -> int:
    """Go's uint64 wrap-around."""
    return value & UINT64_MAX


def i64(value: int) -> int:
    """Go's int64 wrap-around."""
    value &= UINT64_MAX
    return value - (1 << 64) if value >> 63 else value


def segment_set_gaps(allocated: Sequence[FileRange]) -> list[FileRange]:
    """The gaps of a segment set holding ``allocated`` (sorted, disjoint)."""
    gaps = []
    previous_end = 0
    for fr in allocated:
        gaps.append(FileRange(previous_end, fr.start))
        previous_end = fr.end
    gaps.append(FileRange(previous_end, UINT64_MAX))
    return gaps


def seed_find_available_range(
    allocated: Sequence[FileRange], file_size: int, length: int, alignment: int
) -> FileRange | None:
    """findAvailableRange(usage, fileSize, length, alignment), as the seed runs it."""
    alignment_mask = alignment - 1
    gaps = segment_set_gaps(allocated)
    last_gap = len(gaps) - 1

    # Search for space in existing gaps, from the end of the file backwards.
    index = last_gap
    while True:
        gap = gaps[index]
        end = min(gap.end, u64(file_size))
        unaligned_start = u64(end - length)
        if unaligned_start > end:
            break  # negative overflow: this and all preceding gaps are too small
        start = unaligned_start & ~alignment_mask
        if start >= gap.start:
            return FileRange(start, start + length)
        index -= 1  # PrevLargeEnoughGap(length)
        while index >= 0 and gaps[index].end - gaps[index].start < length:
            index -= 1
        if index < 0:
            break

    # Check that it's possible to fit this allocation at the end of a file of any size.
    minimum = u64(gaps[last_gap].start + alignment_mask) & ~alignment_mask
    if u64(minimum + length) < minimum:
        return None  # overflow: the allocation would exceed the range of uint64

    # Determine the minimum file size required to fit this allocation at its end.
    while True:
        new_file_size = i64(2 * file_size)
        if new_file_size <= file_size:
            if file_size != 0:
                return None  # overflow: the allocation would exceed the range of int64
            new_file_size = CHUNK_SIZE
        file_size = new_file_size
        unaligned_start = u64(file_size - length)
        if unaligned_start > u64(file_size):
            continue  # negative overflow: fileSize is still inadequate
        start = unaligned_start & ~alignment_mask
        if start >= minimum:
            return FileRange(start, start + length)

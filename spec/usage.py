"""update_usage: learning from the host which pages are committed.

The allocator cannot see page faults, so it asks the host. ``UpdateUsage``
first compares ``TotalUsage()`` (``fstat``) with what it already knows and
skips the scan when:

1. the file holds exactly ``usage_expected`` bytes and nothing is booked as
   swapped;
2. it holds ``usage_expected + usage_swapped`` and the last scan is less than
   a second old;
3. the last scan is less than 10 ms old (1000 / CLOCKS_PER_SEC: the kernel
   updates its counters at CONFIG_HZ).

Otherwise it records the clock and scans: for every *committable* segment
(references held, not known committed), chunk slice by chunk slice, it drops
the lock, asks ``mincore`` which pages are committed, takes the lock again
and marks those pages known committed, accounting them to their kind. At the
end, whatever the file holds beyond ``usage_expected`` is booked as swapped
(System); if it holds less, the swap booking is dropped.

The clock and the host's answers are inputs: ``now`` in nanoseconds, and
optionally ``committed``, a set of committed ranges to use instead of the host
model (to feed the specification what a real kernel said).

The scan is split where the seed drops its lock: :func:`begin_update_usage`,
then for each slice :func:`query_committed` (unlocked) and
:func:`apply_committed` (locked). Two things can change while the lock is
dropped, and the seed assumed neither would (see :class:`spec.state.SeedDefects`):
pages may be decommitted, making a mincore answer stale (we ask again if a
``markDecommitted`` ran meanwhile), and the file's usage may shrink, so we book
swap against the usage read at the end of the scan, under the lock, not at its
start. With nothing running concurrently both read the same.

A failing kernel call ends the scan where it is: mapping the slice's chunk
(``map_error``) or ``mincore`` (``mincore_error``). The slices before it stay
marked, the swap booking still runs (the seed defers it), and
:func:`update_usage` returns the error with that state, as the seed's
``UpdateUsage`` returns it.
"""

from __future__ import annotations

from dataclasses import replace

from spec import host as hostmodel
from spec.allocator import chunk_slices, chunks_of, needs_mapping, require_live
from spec.errors import InvalidArgument, os_error
from spec.rangemap import RangeSet
from spec.state import State, UsageScan, account
from spec.vocabulary import CHUNK_SIZE, RESCAN_INTERVAL, SECOND, FileRange, MemoryKind


def update_usage(
    state: State,
    now: int,
    committed: RangeSet | None = None,
    map_error: int | None = None,
    mincore_error: int | None = None,
) -> tuple[State, OSError | None]:
    """UpdateUsage, all steps at once: no other thread runs meanwhile.

    Returns the new state and the error of the kernel call that failed, if
    one did (the state is then what the seed leaves: see the module docstring).
    """
    state = begin_update_usage(state, now, committed)
    while state.scan is not None:
        state, error = map_for_query(state, map_error, mincore_error)
        if error is not None:
            return end_scan(state, committed), error
        state = apply_committed(query_committed(state, committed), committed)
    return state, None


def map_for_query(
    state: State, map_error: int | None, mincore_error: int | None
) -> tuple[State, OSError | None]:
    """The scan's next query up to ``mincore``, and the error it meets there, if any.

    The slice's chunk is mapped first, under the lock (the seed's
    getChunkMapping; ``map_error`` if that fails), and stays mapped even when
    ``mincore`` then fails (``mincore_error``).
    """
    scan = _scanning(state)
    if needs_mapping(state, scan.slice):
        if map_error is not None:
            return state, os_error(map_error, f"mmap of the chunk of {scan.slice}")
        state = replace(state, mapped_chunks=state.mapped_chunks | chunks_of(scan.slice))
    if mincore_error is not None:
        return state, os_error(mincore_error, f"mincore of {scan.slice}")
    return state, None


def end_scan(state: State, committed: RangeSet | None = None) -> State:
    """End the scan where it is (a kernel call failed): only the swap booking still runs."""
    return _finish(state, _scanning(state).current_usage, committed)


def should_skip(state: State, now: int, current_usage: int) -> bool:
    """The three skip rules of UpdateUsage, in the seed's order."""
    if current_usage == state.usage_expected and state.usage_swapped == 0:
        return True
    last = state.usage_last
    if last is None:  # Go's zero time: every interval since is huge
        return False
    if current_usage == state.usage_expected + state.usage_swapped and now < last + SECOND:
        return True
    return now - last < RESCAN_INTERVAL


def begin_update_usage(state: State, now: int, committed: RangeSet | None = None) -> State:
    """UpdateUsage up to its first unlocked mincore (or to its end, if skipped)."""
    require_live(state)
    if type(now) is not int:
        raise InvalidArgument(f"the clock must be an int of nanoseconds, not {now!r}")
    if state.scan is not None:
        raise InvalidArgument("an update_usage call is already in progress")
    current = _current_usage(state, committed)
    if should_skip(state, now, current):
        return state
    state = replace(state, usage_last=now)
    return _scan_from(state, 0, current, committed)


def _scan_from(state: State, position: int, current: int, committed: RangeSet | None) -> State:
    """Find the first committable segment at or after ``position`` and its first slice."""
    for fr, info in state.usage:
        if fr.end > position and info.can_commit():
            scan = UsageScan(current, segment=fr, slice=chunk_slices(fr)[0])
            return replace(state, scan=scan)
    return _finish(state, current, committed)


def query_committed(state: State, committed: RangeSet | None = None) -> State:
    """The unlocked step: ask the host (``mincore``) which pages of the slice are committed.

    The slice's chunk is mapped first (the seed maps it just before, under the lock).
    """
    scan = _scanning(state)
    view = committed if committed is not None else state.host.committed
    answer = view.restrict(scan.slice)
    return replace(
        state,
        scan=replace(scan, committed=answer, queried_generation=state.decommit_generation),
        mapped_chunks=state.mapped_chunks | chunks_of(scan.slice),
    )


def apply_committed(state: State, committed: RangeSet | None = None) -> State:
    """The locked step after mincore: mark the committed pages, then move on.

    ``committed``, if given, replaces the host model when the scan ends and
    the usage is read again.
    """
    scan = _scanning(state)
    if scan.committed is None:
        raise InvalidArgument("apply_committed needs query_committed first")
    if scan.queried_generation != state.decommit_generation and not state.defects.stale_mincore:
        # Pages were decommitted while the lock was dropped: the answer may be stale.
        return replace(state, scan=replace(scan, committed=None))
    for run, _ in scan.committed:
        state = _mark_committed(state, run, scan.slice)
    if scan.slice.end < scan.segment.end:
        following = FileRange(scan.slice.end, min(scan.segment.end, scan.slice.end + CHUNK_SIZE))
        return replace(state, scan=replace(scan, slice=following, committed=None))
    return _scan_from(state, scan.segment.end, scan.current_usage, committed)


def _mark_committed(state: State, run: FileRange, slice_: FileRange) -> State:
    """Mark the committable pages of ``run`` known committed, accounting them to their kind.

    With the seed's ``adjacent_segment`` defect, a committable segment that
    ends exactly where ``run`` starts is marked too, all of it.
    """
    adjacent = state.defects.adjacent_segment
    accounting, expected = state.accounting, state.usage_expected
    marked = []
    for fr, info in state.usage:
        if fr.end <= slice_.start or not info.can_commit():
            continue
        if fr.overlaps(run):
            part = fr.intersect(run)
        elif adjacent and fr.end == run.start:
            part = fr
        else:
            continue
        marked.append(part)
        accounting = account(accounting, info.kind, part.length())
        expected += part.length()
    usage = state.usage
    for part in marked:
        usage = usage.update(part, lambda u: replace(u, known_committed=True))
    return replace(state, usage=usage, accounting=accounting, usage_expected=expected)


def _finish(state: State, began_with: int, committed: RangeSet | None) -> State:
    """The deferred end of updateUsageLocked: adjust the swap booking.

    The seed books against ``began_with``, the usage read before the scan,
    assuming it "may have only increased" since; the lock was dropped
    meanwhile, so we read it again.
    """
    current = began_with
    if not state.defects.stale_mincore:
        current = _current_usage(state, committed)
    accounting, swapped = state.accounting, state.usage_swapped
    if state.usage_expected < current:
        new_swapped = current - state.usage_expected
        accounting = account(accounting, MemoryKind.SYSTEM, new_swapped - swapped)
        swapped = new_swapped
    elif swapped:
        accounting = account(accounting, MemoryKind.SYSTEM, -swapped)
        swapped = 0
    return replace(state, scan=None, accounting=accounting, usage_swapped=swapped)


def _current_usage(state: State, committed: RangeSet | None) -> int:
    """TotalUsage: what the host (or the view given in its place) holds."""
    return committed.total() if committed is not None else hostmodel.committed_bytes(state.host)


def _scanning(state: State) -> UsageScan:
    if state.scan is None:
        raise InvalidArgument("no update_usage call is in progress")
    return state.scan

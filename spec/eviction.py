"""Evictable memory: marking ranges, starting evictions, and the eviction goroutines.

A user (any hashable object; in ``impl/`` an :class:`EvictableMemoryUser`)
marks ranges of its own offsets evictable. When evictions start, each user
with evictable ranges gets one eviction goroutine, which repeatedly takes the
*last* range under the lock and calls ``Evict`` on it without the lock (so
``Evict`` may race with ``mark_unevictable``). The goroutine deletes the
user's entry once no ranges are left; nothing else deletes an entry while
it runs.

When evictions start depends on ``DelayedEviction``: DISABLED starts them as
soon as a range is marked; ENABLED on memory-cgroup pressure, or, without it,
whenever the reclaimer runs out of work; MANUAL only on ``start_evictions``.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import replace

from spec.allocator import require_live, signal_reclaimer
from spec.arguments import check_evictable_range, check_user
from spec.errors import InvalidArgument
from spec.rangemap import EMPTY_SET
from spec.state import EvictableUser, State, user_info, with_user
from spec.vocabulary import DelayedEviction, EvictableRange, FileRange


def mark_evictable(state: State, user: Hashable, er: EvictableRange) -> State:
    """MarkEvictable: ``user.evict(er)`` may be called in the future.

    Marking a range already evictable has no further effect.
    """
    require_live(state)
    check_user(user)
    check_evictable_range(er)
    info = user_info(state, user) or EvictableUser()
    if er.start < er.end:
        info = replace(info, ranges=info.ranges.assign(FileRange(*er), None))
    state = with_user(state, user, info)
    if not info.evicting:
        opts = state.opts
        if opts.delayed_eviction is DelayedEviction.DISABLED:
            # Kick off eviction immediately.
            state = with_user(state, user, replace(info, evicting=True))
        elif opts.delayed_eviction is DelayedEviction.ENABLED and not opts.use_host_memcg_pressure:
            # Ensure that the reclaimer runs, so that it can start eviction when necessary.
            state = signal_reclaimer(state)
    return state


def mark_unevictable(state: State, user: Hashable, er: EvictableRange) -> State:
    """MarkUnevictable: ``user`` no longer considers ``er`` evictable.

    An ``Evict`` already on its way may still arrive (see the module docstring).
    An empty ``er`` removes nothing, unless the seed's defect is restored
    (:func:`_seed_unmarked`).
    """
    require_live(state)
    check_user(user)
    check_evictable_range(er)
    info = user_info(state, user)
    if info is None:
        return state
    unmarked = FileRange(*er)
    if state.defects.empty_unevictable:
        unmarked = _seed_unmarked(info, unmarked)
    info = replace(info, ranges=info.ranges.remove(unmarked))
    return with_user(state, user, _kept(info))


def _seed_unmarked(info: EvictableUser, er: FileRange) -> FileRange:
    """What the seed's MarkUnevictable loop removes: ``er``, or for an empty ``er`` at ``x``
    strictly inside a range ``[s, e)``, the tail ``[x, e)`` (docs/divergences.md D4).

    The loop starts at the segment holding ``x`` and runs while ``seg.Start() < er.End``;
    ``Isolate`` splits that segment at ``x`` but not again at ``x``, and the upper part
    is removed.
    """
    holding = [fr for fr, _ in info.ranges if fr.start < er.start == er.end < fr.end]
    return FileRange(er.start, holding[0].end) if holding else er


def mark_all_unevictable(state: State, user: Hashable) -> State:
    """MarkAllUnevictable: nothing of ``user`` is evictable any more."""
    require_live(state)
    check_user(user)
    info = user_info(state, user)
    if info is None:
        return state
    return with_user(state, user, _kept(replace(info, ranges=EMPTY_SET)))


def _kept(info: EvictableUser) -> EvictableUser | None:
    """An entry without ranges goes, unless an eviction goroutine runs for it."""
    return info if info.evicting or info.ranges else None


def start_evictions(state: State) -> tuple[State, bool]:
    """StartEvictions: start evicting every user not already being evicted."""
    require_live(state)
    return start_evictions_locked(state)


def start_evictions_locked(state: State) -> tuple[State, bool]:
    """startEvictionsLocked: one eviction goroutine per user that has none; whether any started."""
    idle = [user for user, info in state.evictable if not info.evicting]
    for user in idle:
        info = user_info(state, user)
        assert info is not None
        state = with_user(state, user, replace(info, evicting=True))
    return state, bool(idle)


def memcg_pressure(state: State) -> tuple[State, bool]:
    """A memory-cgroup "low" pressure notification; whether it started evictions.

    Only a file created ENABLED with ``use_host_memcg_pressure`` registers
    for these; for any other file the notification changes nothing.
    """
    opts = state.opts
    if state.destroyed or not (
        opts.delayed_eviction is DelayedEviction.ENABLED and opts.use_host_memcg_pressure
    ):
        return state, False
    return start_evictions_locked(state)


# --- The eviction goroutine ---------------------------------------------------------


def evicting_users(state: State) -> tuple[Hashable, ...]:
    """The users with an eviction goroutine, in registration order."""
    return tuple(user for user, info in state.evictable if info.evicting)


def _running(state: State, user: Hashable) -> EvictableUser:
    info = user_info(state, user)
    if info is None or not info.evicting:
        raise InvalidArgument(f"no eviction goroutine runs for {user!r}")
    return info


def take_eviction(state: State, user: Hashable) -> State:
    """The goroutine's locked step: take the user's last range, or finish.

    It finishes, deleting the user's entry, when no ranges are left, or (unlike
    the seed, whose goroutines outlive Destroy) once the file is destroyed.
    """
    info = _running(state, user)
    if info.in_flight is not None:
        raise InvalidArgument(
            f"the eviction goroutine of {user!r} must first deliver {info.in_flight}"
        )
    last = info.ranges.last()
    if last is None or state.destroyed:
        return with_user(state, user, replace(info, evicting=False) if info.ranges else None)
    fr = last[0]
    info = replace(info, ranges=info.ranges.remove(fr), in_flight=EvictableRange(*fr))
    return with_user(state, user, info)


def deliver_eviction(state: State, user: Hashable) -> tuple[State, EvictableRange]:
    """The goroutine's unlocked step: call ``user.Evict(er)`` on the range it took."""
    info = _running(state, user)
    if info.in_flight is None:
        raise InvalidArgument(f"the eviction goroutine of {user!r} holds no range")
    return with_user(state, user, replace(info, in_flight=None)), info.in_flight

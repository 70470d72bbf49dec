"""The reclaimer and eviction loops, built from steps that threads and tests share.

The seed runs a reclaimer goroutine (``runReclaim``) and one eviction
goroutine per user. Here each loop body is a step function over a
``MemoryFile``'s locked primitives:

* :func:`first_step` and :func:`reclaim_step` — take the last reclaimable
  range under the lock (or learn there is nothing to do, or that the file is
  destroyed), punch it without the lock (zeroing by hand, with a warning, if
  punching fails), then remove it from usage and take the next, under the lock;
* :func:`evict_step` — take a user's last evictable range under the lock, or
  finish; the caller then calls ``user.evict`` without the lock.

The background threads (:func:`run_reclaimer`, :func:`run_evictor`) loop over
these steps and block between them (telling a file's tracer of each step, see
:mod:`impl.tracing`); the manual drivers
(:func:`reclaim_until_idle`, :func:`evict_all`) run the same steps on the
caller's thread until the loop would block, which is what
``SpecMemoryFile.reclaim`` and ``run_evictions`` do with the specification.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import TYPE_CHECKING, Literal

from impl.tracing import traced
from spec.vocabulary import EvictableRange, FileRange

if TYPE_CHECKING:
    from impl.memory_file import MemoryFile

log = logging.getLogger(__name__)


Taken = tuple[int, int] | Literal["wait", "exit"]
"""What a find step yields: a range taken off the reclaim set, or "wait" (idle), or "exit"."""


def first_step(f: MemoryFile, manual: bool) -> Taken:
    """A find under the lock: the reclaimer's first, and its first after each wake-up.

    Driven by hand (``manual``), a reclaimer that waits for a signal, or whose
    file is destroyed, or that failed, has nothing to do: "wait".
    """
    f._mu.acquire()  # (not `with`: see "Hot paths" in impl.memory_file)
    try:
        if manual and (not f._reclaimer_runnable or f._destroyed or f._reclaimer_failed):
            return "wait"
        return f._find_reclaimable_locked()
    finally:
        f._mu.release()


def punch_step(f: MemoryFile, taken: tuple[int, int]) -> None:
    """Punch the range taken, without the lock (zeroing it, with a warning, if that fails)."""
    try:
        f._decommit_reclaimed(*taken)
    except BaseException:
        # Neither punched nor zeroed: the range must never be handed out again,
        # so it stays in usage, unreferenced, and the reclaimer stops (the seed
        # panics here; the spec's FAILED step).
        with f._mu:
            f._reclaimer_failed = True
            f._unlocked_done_locked()
        raise


def mark_step(f: MemoryFile, taken: tuple[int, int]) -> Taken:
    """Mark the punched range decommitted and reclaimed, then take the next one.

    The spec's consecutive locked steps of the same thread, run as one
    critical section (which only removes interleavings).
    """
    f._mu.acquire()
    try:
        f._mark_reclaimed_locked(*taken)
        return f._find_reclaimable_locked()
    finally:
        f._mu.release()


def reclaim_step(f: MemoryFile, taken: tuple[int, int]) -> Taken:
    """Reclaim the range taken (:func:`punch_step`, :func:`mark_step`); the next one taken."""
    punch_step(f, taken)
    return mark_step(f, taken)


def run_reclaimer(f: MemoryFile) -> None:
    """The reclaimer thread: reclaim, wait for a signal when idle, exit once destroyed."""
    find = traced(f, "reclaim_find", first_step)
    punch = traced(f, "reclaim_punch", punch_step)
    mark = traced(f, "reclaim_mark", mark_step)
    try:
        taken = find(f, False)
        while taken != "exit":
            if isinstance(taken, tuple):
                punch(f, taken)
                taken = mark(f, taken)
                continue
            with f._mu:
                f._wait_for_signal_locked()
            taken = find(f, False)
    except BaseException:
        log.critical("the MemoryFile reclaimer failed; nothing more will be reclaimed")
        with f._mu:
            f._reclaimer_failed = True
            f._notify_idle_locked()
        raise  # destroy still closes the file and unmaps the chunks
    with f._mu:
        f._exit_locked()


def reclaim_until_idle(f: MemoryFile) -> list[FileRange]:
    """Run reclaimer steps on this thread until it would wait; the ranges reclaimed, in order."""
    reclaimed: list[FileRange] = []
    taken = first_step(f, manual=True)
    while isinstance(taken, tuple):
        reclaimed.append(tuple.__new__(FileRange, taken))  # FileRange(*taken), built in C
        taken = reclaim_step(f, taken)
    return reclaimed


def evict_step(f: MemoryFile, user: Hashable) -> EvictableRange | None:
    """The eviction loop's locked step: the user's last range, or None when it is done."""
    with f._mu:
        return f._take_eviction_locked(user)


def run_evictor(f: MemoryFile, user: Hashable) -> None:
    """An eviction thread: evict ``user``'s ranges, last first, until none is left."""
    take = traced(f, "evict_take", evict_step)
    try:
        while (er := take(f, user)) is not None:
            try:
                f._deliver(user, er)
            except Exception:
                log.exception("evicting %s of %r failed", er, user)
    finally:
        with f._mu:
            f._evictor_done_locked()


def evict_all(f: MemoryFile) -> list[tuple[Hashable, EvictableRange]]:
    """Run every pending eviction on this thread, user by user in registration order.

    Returns what was delivered, in order; an exception from ``evict`` propagates.
    """
    delivered: list[tuple[Hashable, EvictableRange]] = []
    while True:
        with f._mu:
            user = next((u for u, info in f._evictable.items() if info.evicting), None)
            if user is None:
                return delivered
            er = f._take_eviction_locked(user)
        if er is not None:
            delivered.append((user, er))
            f._deliver(user, er)

"""The eviction goroutines: starting them, and their loops over a small named step interface.

The seed runs one eviction goroutine per user. :class:`Evictor` is that work
on a file's :class:`impl.state.FileState` (the evictable sets themselves are
:mod:`impl.evictables`): it starts eviction threads and offers the
:class:`EvictorSteps`. :func:`run_evictor` is an eviction thread's loop and
:func:`evict_all` runs every pending eviction on the caller's thread (what
``SpecMemoryFile.run_evictions`` does); both drive the steps, never the
file's members.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable
from typing import Protocol

from mypy_extensions import mypyc_attr

from impl.evictables import Evictable
from impl.runtime import Runtime
from impl.state import FileState
from spec.vocabulary import EvictableMemoryUser, EvictableRange

log = logging.getLogger(__name__)


class EvictorSteps(Protocol):
    """What the eviction loops drive; each step takes the file's lock or runs without it."""

    def evict_take(self, user: Hashable) -> EvictableRange | None:
        """Under the lock: ``user``'s last evictable range, or None when its eviction is done."""

    def evict_next(self) -> tuple[Hashable, EvictableRange | None] | None:
        """Under the lock: the first user being evicted and what :meth:`evict_take` gives it."""

    def evict_deliver(self, user: Hashable, er: EvictableRange) -> None:
        """Without the lock: ``user.evict(er)``."""

    def evictor_done(self) -> None:
        """Under the lock: this eviction thread has ended."""


@mypyc_attr(allow_interpreted_subclasses=True)  # tests plant broken evictors as subclasses
class Evictor:
    """The eviction work on ``state``: starting evictions, and the :class:`EvictorSteps`."""

    __slots__ = ("state",)

    def __init__(self, state: FileState) -> None:
        self.state = state

    def start_evictions_locked(self) -> bool:
        """StartEvictions under the lock: one eviction per idle user; whether any started."""
        idle = self.state.evictable.idle()
        for user, info in idle:
            self.start_evictor_locked(user, info)
        return bool(idle)

    def start_evictor_locked(self, user: Hashable, info: Evictable) -> None:
        """Start evicting ``user``: a thread, or (without threads) a pending eviction run."""
        s = self.state
        info.evicting = True
        s.runtime.event("evictor_start", (user,))  # an effect no result of the call shows
        if s.background:
            thread = s.runtime.thread("pgalloc-evict", run_evictor, self, s.runtime, user)
            s.evictors.add(thread)
            s.evictors_running += 1
            thread.start()

    def wait_until_done(self) -> None:
        """Until no eviction thread is running."""
        s = self.state
        with s.mu:
            while s.evictors_running:
                s.wait_idle_locked()

    def join_threads(self) -> None:
        """Join every eviction thread started but the caller (destroy, once destroyed is set)."""
        with self.state.mu:
            threads = list(self.state.evictors)
        me = threading.current_thread()
        for thread in threads:
            if thread is not me:
                thread.join()

    # --- EvictorSteps: each takes the lock itself, or runs without it ---------------------

    def evict_take(self, user: Hashable) -> EvictableRange | None:
        s = self.state
        with s.mu:
            return s.evictable.take(user, s.destroyed)

    def evict_next(self) -> tuple[Hashable, EvictableRange | None] | None:
        s = self.state
        with s.mu:
            user = s.evictable.first_evicting()
            return None if user is None else (user, s.evictable.take(user, s.destroyed))

    def evict_deliver(self, user: Hashable, er: EvictableRange) -> None:
        """Call ``user.evict(er)``, without the lock (users that are mere labels get nothing)."""
        if isinstance(user, EvictableMemoryUser):
            user.evict(er)

    def evictor_done(self) -> None:
        s = self.state
        with s.mu:
            s.evictors.discard(threading.current_thread())
            s.evictors_running -= 1
            s.notify_idle_locked()


def run_evictor(steps: EvictorSteps, runtime: Runtime, user: Hashable) -> None:
    """An eviction thread: evict ``user``'s ranges, last first, until none is left."""
    take = runtime.step("evict_take", steps.evict_take)
    try:
        while (er := take(user)) is not None:
            try:
                steps.evict_deliver(user, er)
            except Exception:
                log.exception("evicting %s of %r failed", er, user)
    finally:
        steps.evictor_done()


def evict_all(steps: EvictorSteps) -> list[tuple[Hashable, EvictableRange]]:
    """Run every pending eviction on this thread, user by user in registration order.

    Returns what was delivered, in order; an exception from ``evict`` propagates.
    """
    delivered: list[tuple[Hashable, EvictableRange]] = []
    while (taken := steps.evict_next()) is not None:
        user, er = taken
        if er is not None:
            delivered.append((user, er))
            steps.evict_deliver(user, er)
    return delivered

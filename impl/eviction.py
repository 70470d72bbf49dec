"""Evictable ranges and the eviction loops, over a small named step interface.

:class:`Evictables` is the seed's ``evictable`` map: for each user, in the
order users were first marked, its evictable ranges and whether an eviction
goroutine runs for it. It is plain data under the file's lock; the file
decides when to start an eviction.

The seed runs one eviction goroutine per user. :func:`run_evictor` is that
thread's loop and :func:`evict_all` runs every pending eviction on the
caller's thread (what ``SpecMemoryFile.run_evictions`` does); both drive an
:class:`EvictorSteps`, never the file's members.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterator
from typing import Protocol

from impl.gaps import GapSet
from impl.runtime import Runtime
from spec.errors import InvariantViolation
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


class Evictable:
    """The seed's ``evictableMemoryUserInfo``."""

    __slots__ = ("evicting", "ranges")

    def __init__(self) -> None:
        self.ranges = GapSet()
        self.evicting = False
        """An eviction thread (or, without threads, a pending eviction run) exists for the user."""


class Evictables:
    """Users and their evictable ranges, in the order users were first marked."""

    __slots__ = ("_users",)

    def __init__(self) -> None:
        self._users: dict[Hashable, Evictable] = {}
        """Dicts keep insertion order: the order users were first marked."""

    def __bool__(self) -> bool:
        return bool(self._users)

    def __getitem__(self, user: Hashable) -> Evictable:
        return self._users[user]

    def items(self) -> Iterator[tuple[Hashable, Evictable]]:
        return iter(self._users.items())

    def mark(self, user: Hashable, start: int, end: int) -> Evictable:
        """MarkEvictable's bookkeeping: ``[start, end)`` joins ``user``'s ranges; its entry."""
        info = self._users.get(user)
        if info is None:
            info = self._users[user] = Evictable()
        if start < end:
            info.ranges.add(start, end)
        return info

    def unmark(self, user: Hashable, start: int, end: int) -> None:
        """MarkUnevictable's: ``[start, end)`` leaves; an idle user with nothing left goes."""
        info = self._users.get(user)
        if info is None:
            return
        if start < end:
            info.ranges.remove(start, end)
        if not info.evicting and not info.ranges:
            del self._users[user]

    def unmark_all(self, user: Hashable) -> None:
        """MarkAllUnevictable's: every range leaves; an idle user goes."""
        info = self._users.get(user)
        if info is None:
            return
        info.ranges.clear()
        if not info.evicting:
            del self._users[user]

    def idle(self) -> list[tuple[Hashable, Evictable]]:
        """The users no eviction runs for, in order (StartEvictions starts one for each)."""
        return [(user, info) for user, info in self._users.items() if not info.evicting]

    def first_evicting(self) -> Hashable | None:
        return next((user for user, info in self._users.items() if info.evicting), None)

    def take(self, user: Hashable, destroyed: bool) -> EvictableRange | None:
        """The eviction thread's locked step: take the user's last range, or finish.

        It finishes (deleting the entry unless ranges remain) when none is
        left or the file is ``destroyed``.
        """
        info = self._users.get(user)
        if info is None or not info.evicting:
            raise InvariantViolation(f"no eviction runs for {user!r}")
        if destroyed or not info.ranges:
            if info.ranges:
                info.evicting = False
            else:
                del self._users[user]
            return None
        last = info.ranges.pop_last()
        assert last is not None
        return EvictableRange(*last)

    def observation(
        self, label: Callable[[Hashable], str]
    ) -> tuple[tuple[str, tuple[EvictableRange, ...], bool], ...]:
        """(label, ranges, evicting) of every user, sorted by label."""
        return tuple(
            sorted(
                (label(user), tuple(EvictableRange(s, e) for s, e in info.ranges), info.evicting)
                for user, info in self._users.items()
            )
        )


def deliver(user: Hashable, er: EvictableRange) -> None:
    """Call ``user.evict(er)``, without the lock (users that are mere labels get nothing)."""
    if isinstance(user, EvictableMemoryUser):
        user.evict(er)


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

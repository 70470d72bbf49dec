"""The evictable sets: for each user, its evictable ranges and whether an eviction runs for it.

:class:`Evictables` is the seed's ``evictable`` map, in the order users were
first marked. It is plain data under the file's lock (a field of
:class:`impl.state.FileState`); :mod:`impl.eviction` decides when an eviction
starts and runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator

from impl.gaps import GapSet
from spec.errors import InvariantViolation
from spec.vocabulary import EvictableRange


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

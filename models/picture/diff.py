"""Every difference between two values: field by field, and byte range by byte range.

The runner's comparison stops at the first difference; a picture needs all
of them. :func:`fields` walks two JSON values in step and lists each path
where they differ. :func:`ranges` compares two observations byte by byte:
for each maximal byte range, which attributes differ (usage kind, refs,
committedness, reclaim membership, each user's evictable ranges, the file
end). The same two functions mark what one step changed from the previous.

Cost: :func:`fields` is linear in the values; :func:`ranges` is
O(b log r) for b break points and r ranges.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from models.picture.observation import Observation


@dataclass(frozen=True, slots=True)
class Field:
    """One differing place: its path (as the runner writes it), and the two values there."""

    path: str
    expected: Any
    actual: Any
    """``MISSING`` where one side has no such field or element."""


MISSING = "(missing)"


def fields(expected: Any, actual: Any, path: str = "") -> list[Field]:
    """Every path where ``expected`` and ``actual`` differ (a leaf or a missing member)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        found: list[Field] = []
        for key in [*expected, *(k for k in actual if k not in expected)]:
            where = f"{path}.{key}" if path else str(key)
            found += fields(expected.get(key, MISSING), actual.get(key, MISSING), where)
        return found
    if isinstance(expected, list) and isinstance(actual, list):
        found = []
        for i in range(max(len(expected), len(actual))):
            found += fields(
                expected[i] if i < len(expected) else MISSING,
                actual[i] if i < len(actual) else MISSING,
                f"{path}[{i}]",
            )
        return found
    same = expected == actual and type(expected) is type(actual)
    return [] if same else [Field(path or "(top)", expected, actual)]


@dataclass(frozen=True, slots=True)
class Range:
    """A maximal byte range over which the same attributes differ."""

    start: int
    end: int
    what: tuple[str, ...]
    """The attributes that differ there: ``usage``, ``kind``, ``refs``, ``known_committed``,
    ``reclaim``, ``evictable USER``, ``file_size``."""


def ranges(expected: Observation, actual: Observation) -> list[Range]:
    """The byte ranges where ``expected`` and ``actual`` differ, and in what."""
    points = sorted(expected.offsets() | actual.offsets())
    looks = (_Lookup(expected), _Lookup(actual))
    found: list[Range] = []
    for start, end in itertools.pairwise(points):
        what = _differing(looks[0], looks[1], start)
        if not what:
            continue
        if found and found[-1].end == start and found[-1].what == what:
            found[-1] = Range(found[-1].start, end, what)
        else:
            found.append(Range(start, end, what))
    return found


def changed(before: Observation | None, after: Observation) -> list[Range]:
    """What one step changed: :func:`ranges` from the previous observation (all of it if none)."""
    if before is None:
        return []
    return ranges(before, after)


class _Lookup:
    """Point queries on one observation's ranges, by binary search."""

    def __init__(self, observation: Observation) -> None:
        self.size = observation.file_size
        self.usage = _Index([((s.start, s.end), s) for s in observation.usage])
        self.reclaim = _Index([(r, True) for r in observation.reclaim])
        self.users = {
            user.name: _Index([(r, True) for r in user.ranges]) for user in observation.evictable
        }


class _Index:
    def __init__(self, items: Sequence[tuple[tuple[int, int], Any]]) -> None:
        self.items = sorted(items, key=lambda item: item[0])
        self.starts = [item[0][0] for item in self.items]

    def at(self, offset: int) -> Any:
        """The value of the range holding ``offset``, or None (ranges are disjoint)."""
        i = bisect.bisect_right(self.starts, offset) - 1
        if i >= 0 and offset < self.items[i][0][1]:
            return self.items[i][1]
        return None


def _differing(a: _Lookup, b: _Lookup, offset: int) -> tuple[str, ...]:
    what: list[str] = []
    if (offset < a.size) != (offset < b.size):
        what.append("file_size")
    sa, sb = a.usage.at(offset), b.usage.at(offset)
    if (sa is None) != (sb is None):
        what.append("usage")
    elif sa is not None and sb is not None:
        what += [
            name
            for name in ("kind", "refs", "known_committed")
            if getattr(sa, name) != getattr(sb, name)
        ]
    if a.reclaim.at(offset) != b.reclaim.at(offset):
        what.append("reclaim")
    for user in sorted(set(a.users) | set(b.users)):
        inside = [look.users[user].at(offset) if user in look.users else None for look in (a, b)]
        if inside[0] != inside[1]:
            what.append(f"evictable {user}")
    return tuple(what)

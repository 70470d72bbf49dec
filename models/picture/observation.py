"""An observation as the picture reads it: checked against the schema, then typed.

The picture is drawn from ``observation.schema.json`` alone, never from our
specification's types, so it serves any port's responses. :func:`parse`
accepts a JSON value only if it matches the schema and every range in it is
non-empty (the schema leaves ranges unchecked, for requests); anything else
is a :class:`Broken` observation, drawn as an error and never trusted.

Cost: one schema validation (about a millisecond) per observation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from models.conformance.schema import SchemaError, load, validate_result

KINDS: tuple[str, ...] = tuple(load("observation")["$defs"]["kind"]["enum"])
"""The memory kinds, in the schema's order (which fixes their colours and rows)."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One maximal run of the usage set: pages with the same kind, references, committedness."""

    start: int
    end: int
    kind: str
    refs: int
    known_committed: bool


@dataclass(frozen=True, slots=True)
class User:
    """An evictable user: its name (any string; escaped wherever it is shown) and ranges."""

    name: str
    ranges: tuple[tuple[int, int], ...]
    evicting: bool


@dataclass(frozen=True, slots=True)
class Observation:
    """The observable state of a memory file, field by field as the schema has it."""

    file_size: int
    usage: tuple[Segment, ...]
    reclaim: tuple[tuple[int, int], ...]
    accounting: tuple[tuple[str, int], ...]
    """Bytes by kind, every kind in :data:`KINDS` order."""
    usage_expected: int
    usage_swapped: int
    evictable: tuple[User, ...]

    def offsets(self) -> set[int]:
        """Every offset where something starts or ends (the scale's break points)."""
        found = {0, self.file_size}
        for segment in self.usage:
            found |= {segment.start, segment.end}
        for start, end in (*self.reclaim, *(r for u in self.evictable for r in u.ranges)):
            found |= {start, end}
        return found


@dataclass(frozen=True, slots=True)
class Broken:
    """A value offered as an observation that is not one: why, and the value as text."""

    reason: str
    text: str


def parse(value: Any, *, checked: bool = False) -> Observation | Broken:
    """``value`` as an :class:`Observation`, or :class:`Broken` saying what is wrong with it.

    ``checked``: the caller has validated ``value`` against the schema already.
    """
    if not checked:
        try:
            validate_result("state", value)
        except SchemaError as error:
            return Broken(str(error), _text(value))
    for where, (start, end) in _ranges(value):
        if int(start) >= int(end):
            return Broken(f"{where}: the range [{start}, {end}) is empty or reversed", _text(value))
    return Observation(
        file_size=int(value["file_size"]),
        usage=tuple(
            Segment(
                int(s["range"][0]),
                int(s["range"][1]),
                s["kind"],
                int(s["refs"]),
                s["known_committed"],
            )
            for s in value["usage"]
        ),
        reclaim=tuple((int(a), int(b)) for a, b in value["reclaim"]),
        accounting=tuple((kind, int(value["accounting"][kind])) for kind in KINDS),
        usage_expected=int(value["usage_expected"]),
        usage_swapped=int(value["usage_swapped"]),
        evictable=tuple(
            User(u["user"], tuple((int(a), int(b)) for a, b in u["ranges"]), u["evicting"])
            for u in value["evictable"]
        ),
    )


def _ranges(value: dict[str, Any]) -> list[tuple[str, tuple[Any, ...]]]:
    found = [(f"usage[{i}].range", tuple(s["range"])) for i, s in enumerate(value["usage"])]
    found += [(f"reclaim[{i}]", tuple(r)) for i, r in enumerate(value["reclaim"])]
    found += [
        (f"evictable[{i}].ranges[{j}]", tuple(r))
        for i, u in enumerate(value["evictable"])
        for j, r in enumerate(u["ranges"])
    ]
    return found


def _text(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 400 else text[:397] + "..."

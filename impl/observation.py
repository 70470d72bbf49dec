"""``ImplObservation``: the implementation's snapshot, shaped like the spec's ``Observation``.

``impl/`` may not import the specification's state machine, so it cannot
return ``spec.state.Observation`` itself; this frozen dataclass has exactly
the same field names, types and order, so ``dataclasses.astuple`` of the two
compare directly (the models layer does).
"""

from __future__ import annotations

from dataclasses import dataclass

from spec.vocabulary import EvictableRange, FileRange, MemoryKind


@dataclass(frozen=True, slots=True)
class ImplObservation:
    """A consistent snapshot of an ``impl.MemoryFile``, taken under its lock."""

    file_size: int
    usage: tuple[tuple[FileRange, MemoryKind, int, bool], ...]
    """(range, kind, refs, known committed), maximally merged."""
    reclaim: tuple[FileRange, ...]
    accounting: tuple[tuple[MemoryKind, int], ...]
    """What this file contributed to its MemoryAccounting, for every kind in order."""
    usage_expected: int
    usage_swapped: int
    evictable: tuple[tuple[str, tuple[EvictableRange, ...], bool], ...]
    """(user label, evictable ranges, evicting), sorted by label."""

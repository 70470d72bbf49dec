"""What must hold of impl's observation when the file's lock is free, and at quiescence.

At every scheduling point where no thread holds the file's lock, every
critical section is complete, so the spec's invariants that concern one
state must hold of impl's observation (:func:`lock_free_violations`):

* the usage set is sorted, disjoint, page-aligned, inside the file; no
  negative count; pages with no references are System memory;
* the reclaim set lies in the pages with no references, and what else has
  none is at most one range (the one the reclaimer took and is punching);
* ``usage_expected`` is the known-committed total, and the accounting is the
  known-committed bytes by kind, plus the swap booking under System;
* pages known committed are held by the kernel (``mincore``), except those a
  thread punched and has not yet marked (it marks them at its next
  acquisition of the lock). This is what the seed's D1 and D3 break.

At quiescence (every client done, the reclaimer idle):
:func:`reference_violations` — each page's count is the clients' holdings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from spec.vocabulary import PAGE_SIZE, FileRange, MemoryKind, Observation


def pages(ranges: Iterable[FileRange]) -> set[int]:
    return {p for fr in ranges for p in range(fr.start, fr.end, PAGE_SIZE)}


def lock_free_violations(
    obs: Observation, committed: Sequence[FileRange], unmarked: Iterable[FileRange]
) -> list[str]:
    """What is wrong with ``obs``, taken while no thread holds the file's lock."""
    found: list[str] = []
    usage = obs.usage
    previous_end, previous_value = -1, None
    for fr, kind, refs, known in usage:
        if fr.start < previous_end or (
            fr.start == previous_end and previous_value == (kind, refs, known)
        ):
            found.append(f"usage is not sorted, disjoint and merged at {fr}")
        if fr.start % PAGE_SIZE or fr.end % PAGE_SIZE or fr.end > obs.file_size:
            found.append(f"usage segment {fr} is not page-aligned inside the file")
        if refs < 0 or (refs == 0 and kind is not MemoryKind.SYSTEM):
            found.append(f"{fr} has {refs} references and kind {kind.name}")
        previous_end, previous_value = fr.end, (kind, refs, known)
    unreferenced = pages(fr for fr, _, refs, _ in usage if refs == 0)
    reclaim = pages(obs.reclaim)
    if not reclaim <= unreferenced:
        found.append(f"the reclaim set {obs.reclaim} holds pages in use or never allocated")
    taken = sorted(unreferenced - reclaim)
    if taken and taken[-1] - taken[0] != (len(taken) - 1) * PAGE_SIZE:
        found.append("pages with no references are neither awaiting reclaim nor one taken range")
    by_kind = dict.fromkeys(MemoryKind, 0)
    for fr, kind, _, known in usage:
        if known:
            by_kind[kind] += fr.length()
    if obs.usage_expected != sum(by_kind.values()):
        found.append(f"usage_expected {obs.usage_expected} is not the known-committed total")
    by_kind[MemoryKind.SYSTEM] += obs.usage_swapped
    if dict(obs.accounting) != by_kind:
        found.append(f"accounting {dict(obs.accounting)} is not known-committed by kind {by_kind}")
    known_pages = pages(fr for fr, _, _, known in usage if known)
    unsound = known_pages - pages(committed) - pages(unmarked)
    if unsound:
        found.append(
            f"pages known committed that the kernel does not hold: "
            f"{', '.join(f'{p:#x}' for p in sorted(unsound))}"
        )
    return found


def reference_violations(obs: Observation, holdings: Iterable[FileRange]) -> list[str]:
    """Where a page's count differs from the number of holdings covering it."""
    held: dict[int, int] = {}
    for fr in holdings:
        for p in range(fr.start, fr.end, PAGE_SIZE):
            held[p] = held.get(p, 0) + 1
    counted = {
        p: refs for fr, _, refs, _ in obs.usage for p in range(fr.start, fr.end, PAGE_SIZE) if refs
    }
    return [
        f"page {p:#x} has {counted.get(p, 0)} references but {held.get(p, 0)} holdings"
        for p in sorted(held.keys() | counted.keys())
        if counted.get(p, 0) != held.get(p, 0)
    ]

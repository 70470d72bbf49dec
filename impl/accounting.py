"""``MemoryAccounting``: bytes of memory in use, by kind (gVisor's ``usage.MemoryAccounting``).

Allocators report what they commit with ``inc``, what they give back with
``dec``, and reclassification with ``move`` (DecRef moves freed memory to
System until it is reclaimed). Totals are kept per :class:`MemoryKind`;
every method is thread-safe. ``MEMORY_ACCOUNTING`` is the process-wide
default that a ``MemoryFile`` reports to unless it is given its own.
"""

from __future__ import annotations

import threading

from spec.vocabulary import MemoryKind


class MemoryAccounting:
    """Thread-safe per-kind byte totals.

    >>> a = MemoryAccounting()
    >>> a.inc(8192, MemoryKind.ANONYMOUS)
    >>> a.move(4096, MemoryKind.SYSTEM, MemoryKind.ANONYMOUS)
    >>> a.get(MemoryKind.SYSTEM), a.total()
    (4096, 8192)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals = [0] * len(MemoryKind)

    def inc(self, amount: int, kind: MemoryKind) -> None:
        """``amount`` more bytes of ``kind`` are in use."""
        with self._lock:
            self._totals[kind] += amount

    def dec(self, amount: int, kind: MemoryKind) -> None:
        """``amount`` fewer bytes of ``kind`` are in use."""
        with self._lock:
            self._totals[kind] -= amount

    def move(self, amount: int, to: MemoryKind, source: MemoryKind) -> None:
        """Reclassify ``amount`` bytes from ``source`` to ``to``, atomically."""
        with self._lock:
            self._totals[source] -= amount
            self._totals[to] += amount

    def get(self, kind: MemoryKind) -> int:
        with self._lock:
            return self._totals[kind]

    def copy(self) -> dict[MemoryKind, int]:
        """A consistent snapshot of every total."""
        with self._lock:
            return {kind: self._totals[kind] for kind in MemoryKind}

    def total(self) -> int:
        """All kinds together."""
        with self._lock:
            return sum(self._totals)


MEMORY_ACCOUNTING = MemoryAccounting()
"""The process-wide accounting, as gVisor's ``usage.MemoryAccounting`` global."""

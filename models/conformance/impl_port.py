"""The Python implementation as a port: what ``pgalloc driver impl`` serves.

``impl.MemoryFile`` runs with ``background=False`` (the requests drive the
reclaimer and evictions), a fresh ``MemoryAccounting`` per file, and a
clock set from each ``update_usage`` request. Its kernel is the real one,
except that while an ``update_usage`` request names the committed pages,
``fstat`` and ``mincore`` answer from them (:class:`ScriptedHost`); and the
faults of ``create`` and ``set_faults`` are the kernel's ``HostFaults``
(an injected ``mincore`` failure fails a scripted ``mincore`` too).

It declares the ``host`` feature only where the host behaves as the
specification's host model: 4 KiB pages and no transparent huge pages for
shmem (which would commit 2 MiB at a touch).
"""

from __future__ import annotations

import mmap
from pathlib import Path

from impl import Kernel, MemoryAccounting, MemoryFile
from impl.kernel import ChunkMapping, ResidencyVector
from models.conformance.port import Mapping, MemoryFilePort
from models.conformance.protocol import FEATURES
from spec.vocabulary import (
    NO_FAULTS,
    PAGE_SHIFT,
    PAGE_SIZE,
    FileRange,
    HostFaults,
    MemoryFileOpts,
)

Views = list[memoryview]
"""What ``impl.MemoryFile.map_internal`` returns: a writable view per chunk."""

SHMEM_THP = Path("/sys/kernel/mm/transparent_hugepage/shmem_enabled")


def host_matches_model() -> bool:
    """Whether this host commits exactly the 4 KiB pages touched in a memfd."""
    if mmap.PAGESIZE != PAGE_SIZE:
        return False
    try:
        setting = SHMEM_THP.read_text()
    except OSError:
        return True  # no transparent huge pages at all
    return "[never]" in setting or "[deny]" in setting


class ScriptedHost(Kernel):
    """The real kernel, except that ``fstat`` and ``mincore`` may answer from a page set."""

    def __init__(self, faults: HostFaults = NO_FAULTS) -> None:
        super().__init__(faults)
        self.committed: list[FileRange] | None = None
        """While set, the committed pages (sorted, disjoint, page-aligned)."""
        self.chunks: dict[int, tuple[int, int]] = {}
        """Mapping address -> (file offset, length), to turn mincore addresses into offsets."""

    def map_chunk(self, fd: int, offset: int, length: int) -> ChunkMapping:
        mapping = super().map_chunk(fd, offset, length)
        self.chunks[mapping.address] = (offset, length)
        return mapping

    def committed_bytes(self, fd: int) -> int:
        if self.committed is None:
            return super().committed_bytes(fd)
        return sum(fr.length() for fr in self.committed)

    def mincore(self, address: int, length: int, vector: ResidencyVector) -> None:
        if self.committed is None or self.faults.mincore is not None:
            super().mincore(address, length, vector)  # which fails if a fault is injected
            return
        start = self._offset(address)
        end = start + length
        pages = (length + PAGE_SIZE - 1) >> PAGE_SHIFT
        vector.bytes[:pages] = bytes(pages)
        for fr in self.committed:
            lo, hi = max(fr.start, start), min(fr.end, end)
            if lo < hi:
                first, last = (lo - start) >> PAGE_SHIFT, (hi - start) >> PAGE_SHIFT
                vector.bytes[first:last] = b"\x01" * (last - first)

    def _offset(self, address: int) -> int:
        for base, (offset, length) in self.chunks.items():
            if base <= address < base + length:
                return offset + address - base
        raise ValueError(f"mincore of {address:#x}, which no chunk mapping covers")


class ImplPort(MemoryFilePort[Views]):
    name = "pgalloc-impl"

    def __init__(self) -> None:
        super().__init__()
        self.now = 0
        self.kernel = ScriptedHost()

    @property
    def impl(self) -> MemoryFile:
        assert isinstance(self.file, MemoryFile)
        return self.file

    def features(self) -> list[str]:
        return [f for f in FEATURES if f != "host" or host_matches_model()]

    def create_file(self, opts: MemoryFileOpts, faults: HostFaults) -> MemoryFile:
        self.kernel = ScriptedHost(faults)
        return MemoryFile(
            opts,
            accounting=MemoryAccounting(),
            background=False,
            clock=lambda: self.now,
            kernel=self.kernel,
        )

    def set_faults(self, faults: HostFaults) -> None:
        self.kernel.faults = faults

    def update_usage(self, now: int, committed: list[FileRange] | None) -> None:
        self.now = now
        self.kernel.committed = committed
        try:
            self.impl.update_usage()
        finally:
            self.kernel.committed = None

    def blocks(self, blocks: Views, fr: FileRange) -> list[tuple[int, int]]:
        ranges, start = [], fr.start
        for view in blocks:
            ranges.append((start, start + len(view)))
            start += len(view)
        return ranges

    def _pieces(self, mapping: Mapping[Views], fr: FileRange) -> list[tuple[memoryview, int, int]]:
        """The (view, start, end) slices of the mapping's blocks that make up ``fr``."""
        pieces, base = [], mapping.range.start
        for view in mapping.blocks:
            lo, hi = max(fr.start, base), min(fr.end, base + len(view))
            if lo < hi:
                pieces.append((view, lo - base, hi - base))
            base += len(view)
        return pieces

    def write_mapped(self, mapping: Mapping[Views], offset: int, data: bytes) -> None:
        position = 0
        for view, lo, hi in self._pieces(mapping, FileRange(offset, offset + len(data))):
            view[lo:hi] = data[position : position + hi - lo]
            position += hi - lo

    def read_mapped(self, mapping: Mapping[Views], fr: FileRange) -> bytes:
        return b"".join(bytes(view[lo:hi]) for view, lo, hi in self._pieces(mapping, fr))

    def release(self) -> None:
        """Release the views, so that destroy can unmap every chunk."""
        for mapping in self.mappings.values():
            for view in mapping.blocks:
                view.release()
        super().release()

"""``Chunks``: the file's 1 GiB chunk mappings, created on first use and unmapped once.

The seed's ``mappings``: the chunk table only gains entries until the file is
closed, so readers look a chunk up without a lock; creating one takes the
table's own lock (a leaf, taken under the file's lock or without it, never
the other way round), and closing the file takes it too, so no chunk is
mapped from a closed descriptor.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from impl.kernel import ChunkMapping, Kernel
from spec.arguments import read_count
from spec.errors import UseAfterDestroy
from spec.vocabulary import CHUNK_SHIFT, CHUNK_SIZE, FILL_BUFFER, Reader

log = logging.getLogger(__name__)

Slices = list[tuple[ChunkMapping, int, int]]
"""(mapping, offset, end offset) in each chunk a range touches, in order."""


class Chunks:
    """The chunk mappings of the file open on ``fd`` (see the module docstring)."""

    __slots__ = ("_fd", "_kernel", "_lock", "_mappings", "open")

    def __init__(self, kernel: Kernel, fd: int, lock: threading.Lock) -> None:
        self._kernel = kernel
        self._fd = fd
        self._lock = lock
        self._mappings: dict[int, ChunkMapping] = {}
        """Chunk index -> mapping; only gains entries (under ``_lock``) until :meth:`close`."""
        self.open = True
        """The descriptor is open (cleared, under ``_lock``, by :meth:`close`)."""

    def get(self, chunk: int) -> ChunkMapping | None:
        """The mapping of ``chunk`` if it exists (no lock: the table only grows)."""
        return self._mappings.get(chunk)

    def chunk(self, chunk: int) -> ChunkMapping:
        """The mapping of ``chunk``, created on first use (the seed's getChunkMapping)."""
        mapping = self._mappings.get(chunk)
        if mapping is not None:
            return mapping
        with self._lock:
            if not self.open:  # closed since the caller's check: never map a closed fd
                raise UseAfterDestroy("the MemoryFile has been destroyed")
            mapping = self._mappings.get(chunk)
            if mapping is None:
                mapping = self._kernel.map_chunk(self._fd, chunk << CHUNK_SHIFT, CHUNK_SIZE)
                self._mappings[chunk] = mapping
            return mapping

    def mapped(self) -> list[int]:
        """The indices of the chunks mapped, in order."""
        return sorted(self._mappings)

    def all_mapped(self, start: int, end: int) -> bool:
        """Whether every chunk ``[start, end)`` touches is mapped already."""
        last = (end - 1) >> CHUNK_SHIFT
        return all(c in self._mappings for c in range(start >> CHUNK_SHIFT, last + 1))

    def slices(self, start: int, end: int) -> Slices:
        """``[start, end)`` cut at chunk boundaries, mapping chunks on first use.

        The seed's forEachMappingSlice.
        """
        chunk = start >> CHUNK_SHIFT
        if chunk == (end - 1) >> CHUNK_SHIFT:
            base = chunk << CHUNK_SHIFT
            return [(self.chunk(chunk), start - base, end - base)]
        slices = []
        while start < end:
            base = chunk << CHUNK_SHIFT
            stop = min(end, base + CHUNK_SIZE)
            slices.append((self.chunk(chunk), start - base, stop - base))
            start = stop
            chunk += 1
        return slices

    def zero(self, start: int, end: int) -> None:
        """manuallyZero: write zeroes over ``[start, end)`` (which commits the pages)."""
        for mapping, lo, hi in self.slices(start, end):
            self._kernel.zero(mapping.address + lo, hi - lo)

    def close(self) -> None:
        """Close the descriptor and unmap every chunk, once; a chunk with views waits for them."""
        with self._lock:
            if not self.open:
                return
            self.open = False
            self._kernel.close(self._fd)
            for chunk, mapping in self._mappings.items():
                if not self._kernel.unmap_chunk(mapping):
                    log.warning(
                        "chunk %d of the MemoryFile still has views; unmapped when they go", chunk
                    )
            self._mappings = {}


def fill(views: list[memoryview], length: int, reader: Reader) -> tuple[int, BaseException | None]:
    """allocate_and_fill's copy: ``reader`` into ``views`` (``length`` bytes in all), zero-copy.

    At most ``FILL_BUFFER`` bytes are asked for at a time, straight into the
    views; only a window straddling two views goes through a scratch buffer.
    Returns the bytes filled and the error: the reader's, or
    :class:`EOFError` if it ended early, or None.
    """
    done, error = 0, None
    index, offset = 0, 0  # the view holding byte `done`, and the offset in it
    while done < length:
        want = min(FILL_BUFFER, length - done)
        view = views[index]
        # A window straddling two chunks is read into a scratch buffer, then copied.
        scratch = None if offset + want <= len(view) else bytearray(want)
        target = view[offset : offset + want] if scratch is None else memoryview(scratch)
        n, error = _read_once(reader, target, want)
        if error is not None:
            break
        if not n:
            error = EOFError(f"reader ended after {done} of {length} bytes")
            break
        written = 0
        while written < n:  # copy a buffer that straddles chunks; otherwise just advance
            step = min(n - written, len(views[index]) - offset)
            if scratch is not None:
                views[index][offset : offset + step] = scratch[written : written + step]
            written += step
            offset += step
            if offset == len(views[index]) and index + 1 < len(views):
                index, offset = index + 1, 0
        done += n
    return done, error


def _read_once(reader: Reader, target: memoryview, want: int) -> tuple[int, BaseException | None]:
    """One ``readinto`` of at most ``want`` bytes into ``target``: the count, or the error.

    A function of its own so that ``fill``'s loop breaks outside any ``try``
    (mypyc compiles no ``break`` inside ``try``/``finally``).
    """
    # What the reader returns is the caller's, unchecked: typed object, so that compiled
    # code hands it to read_count as it is (a declared int would be converted, or refused
    # with mypyc's TypeError, before read_count could classify it as the spec does).
    readinto: Callable[[memoryview], object] = reader.readinto
    try:
        return read_count(readinto(target), want), None
    except Exception as raised:  # the reader's error is part of the result
        return 0, raised
    finally:
        target.release()  # the error's traceback must not pin the mapping

"""The one seam between pgalloc and the kernel.

Everything ``impl/`` asks of the operating system goes through a
:class:`Kernel`: the memfd and its size (``memfd_create``, ``ftruncate``,
``fstat``), its mappings (``mmap`` of 1 GiB chunks, ``MAP_SHARED``), returning
memory (``fallocate(PUNCH_HOLE | KEEP_SIZE)``), learning what is committed
(``mincore``), zeroing (``memset``), the IMA workaround (a one-page
``PROT_EXEC`` mapping) and eventfds. The standard library lacks ``fallocate``
with flags and ``mincore``, so those go through ``ctypes`` with ``errno``.

Chunk mappings use the :mod:`mmap` module, so the ``memoryview`` s handed out
by ``map_internal`` keep their mapping alive: a mapping with views still
exported cannot be closed (``BufferError``), it is unmapped when the last
view goes, and no view can ever point at unmapped memory. ``mincore`` and
``memset`` need the raw address, taken once per chunk. (Python's ``mmap``
holds a duplicate of the fd per mapping, until the mapping is closed: one
descriptor per chunk touched.)

Fault injection: ``Kernel(HostFaults(punch=errno.EIO))`` makes every punch
fail with that errno, and so for ``ftruncate``, ``mmap`` and ``mincore``
(the same :class:`spec.vocabulary.HostFaults` the specification takes);
``kernel.faults`` may be changed at any time. Tests may also subclass and
override a method.
"""

from __future__ import annotations

import ctypes
import mmap
import os

from spec.vocabulary import NO_FAULTS, PAGE_SHIFT, PAGE_SIZE, HostFaults

_libc = ctypes.CDLL(None, use_errno=True)

_fallocate = _libc.fallocate
_fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
_fallocate.restype = ctypes.c_int

_mincore = _libc.mincore
_mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
_mincore.restype = ctypes.c_int

_mmap = _libc.mmap
_mmap.argtypes = [
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int64,
]
_mmap.restype = ctypes.c_void_p

_munmap = _libc.munmap
_munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_munmap.restype = ctypes.c_int

_memset = ctypes.memset

FALLOC_FL_KEEP_SIZE = 1
FALLOC_FL_PUNCH_HOLE = 2
"""fallocate(2) modes (include/uapi/linux/falloc.h); punching requires KEEP_SIZE."""

_MAP_FAILED = ctypes.c_void_p(-1).value

_RESIDENT = bytes(i & 1 for i in range(256))
"""mincore sets bit 0 of each byte for a resident page; the other bits are reserved."""

_ALL_ONES = memoryview(b"\x01" * (1 << 18))
_ALL_ZEROS = memoryview(bytes(1 << 18))
"""Vectors of a whole chunk (2**18 pages), all resident or all not, to compare with."""


def _raise_errno(what: str) -> None:
    code = ctypes.get_errno()
    raise OSError(code, f"{os.strerror(code)}: {what}")


def committed_runs(vector: bytearray, pages: int | None = None) -> list[tuple[int, int]]:
    """The runs ``[first, end)`` of page indices that ``mincore`` marks resident.

    Reads the first ``pages`` bytes of ``vector`` (all by default). No per-page
    Python loop: a vector all resident or all not is recognised with one
    ``memcmp`` (``startswith``); otherwise one ``translate`` keeps bit 0 only
    (the others are reserved) and ``find`` (``memchr``) jumps from run edge to
    run edge. O(pages) in C plus O(runs) in Python.

    >>> committed_runs(bytearray(b"\x01\x01\x00\x81\x00"))
    [(0, 2), (3, 4)]
    """
    end = len(vector) if pages is None else pages
    if end == 0:
        return []
    if end <= len(_ALL_ONES):
        if vector.startswith(_ALL_ONES[:end]):
            return [(0, end)]
        if vector.startswith(_ALL_ZEROS[:end]):
            return []
    bits = vector[:end].translate(_RESIDENT)
    runs = []
    position = bits.find(1)
    while position >= 0:
        stop = bits.find(0, position)
        if stop < 0:
            runs.append((position, end))
            break
        runs.append((position, stop))
        position = bits.find(1, stop)
    return runs


class ResidencyVector:
    """A reusable ``mincore`` vector of up to ``pages`` bytes, at a fixed address."""

    __slots__ = ("address", "bytes")

    def __init__(self, pages: int) -> None:
        self.bytes = bytearray(pages)
        # Never resized, so the address stays valid; the ctypes export lasts one line.
        self.address: int = ctypes.addressof(ctypes.c_char.from_buffer(self.bytes))


class ChunkMapping:
    """One ``MAP_SHARED`` read/write mapping of a chunk of the file.

    ``view`` is a writable memoryview of the whole chunk (slices of it are
    zero-copy); ``address`` is where it starts in this process.
    """

    __slots__ = ("address", "length", "mm", "view")

    def __init__(self, mm: mmap.mmap) -> None:
        self.mm = mm
        self.length = len(mm)
        # The temporary ctypes object exports the buffer only for this line.
        self.address: int = ctypes.addressof(ctypes.c_char.from_buffer(mm))
        self.view = memoryview(mm)


def _injected(code: int, what: str) -> OSError:
    return OSError(code, f"{os.strerror(code)}: {what} (injected)")


class Kernel:
    """The real kernel, with optional injected failures (``faults``)."""

    def __init__(self, faults: HostFaults = NO_FAULTS) -> None:
        self.faults = faults

    # --- The backing file ----------------------------------------------------------

    def memfd_create(self, name: str) -> int:
        return os.memfd_create(name, os.MFD_CLOEXEC)

    def ftruncate(self, fd: int, size: int) -> None:
        if self.faults.truncate is not None:
            raise _injected(self.faults.truncate, f"ftruncate({size:#x})")
        os.ftruncate(fd, size)

    def committed_bytes(self, fd: int) -> int:
        """``fstat``'s block count in bytes: everything the kernel holds for the file."""
        return os.fstat(fd).st_blocks * 512

    def close(self, fd: int) -> None:
        os.close(fd)

    def punch_hole(self, fd: int, offset: int, length: int) -> None:
        """``fallocate(PUNCH_HOLE | KEEP_SIZE)``: the range reads as zeroes and holds no memory."""
        if self.faults.punch is not None:
            raise _injected(self.faults.punch, "fallocate(PUNCH_HOLE)")
        mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
        if _fallocate(fd, mode, offset, length) != 0:
            _raise_errno(f"fallocate(PUNCH_HOLE, {offset:#x}, {length:#x})")

    # --- Mappings ----------------------------------------------------------------------

    def map_chunk(self, fd: int, offset: int, length: int) -> ChunkMapping:
        """Map ``[offset, offset + length)`` of the file shared, readable and writable."""
        if self.faults.map is not None:
            raise _injected(self.faults.map, f"mmap({offset:#x}, {length:#x})")
        mm = mmap.mmap(
            fd,
            length,
            flags=mmap.MAP_SHARED,
            prot=mmap.PROT_READ | mmap.PROT_WRITE,
            offset=offset,
        )
        return ChunkMapping(mm)

    def unmap_chunk(self, mapping: ChunkMapping) -> bool:
        """Unmap ``mapping``; False if views of it are still held (then it goes with them)."""
        mapping.view.release()
        try:
            mapping.mm.close()
        except BufferError:
            return False
        return True

    def mincore(self, address: int, length: int, vector: ResidencyVector) -> None:
        """Fill ``vector`` with the residency of the page-aligned range at ``address``."""
        if (length + PAGE_SIZE - 1) >> PAGE_SHIFT > len(vector.bytes):
            raise ValueError(f"a vector of {len(vector.bytes)} pages is too short for {length:#x}")
        if self.faults.mincore is not None:
            raise _injected(self.faults.mincore, f"mincore({address:#x}, {length:#x})")
        if _mincore(address, length, vector.address) != 0:
            _raise_errno(f"mincore({address:#x}, {length:#x})")

    def zero(self, address: int, length: int) -> None:
        """``memset`` zeroes over mapped memory (which commits it)."""
        _memset(address, 0, length)

    def premap_exec(self, fd: int) -> None:
        """The IMA workaround: map one page ``PROT_EXEC`` while the file is small, then unmap.

        A raw mmap: the file is empty now, which the :mod:`mmap` module refuses.
        """
        address = _mmap(None, PAGE_SIZE, mmap.PROT_EXEC, mmap.MAP_SHARED, fd, 0)
        if address is None or address == _MAP_FAILED:
            _raise_errno("mmap(PROT_EXEC) of the memory file")
        if _munmap(address, PAGE_SIZE) != 0:
            _raise_errno("munmap of the PROT_EXEC pre-mapping")

    # --- Notifications -----------------------------------------------------------------

    def eventfd(self) -> int:
        return os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)


DEFAULT_KERNEL = Kernel()

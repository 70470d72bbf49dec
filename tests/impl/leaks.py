"""What a ``MemoryFile`` could leave behind, and how the reliability tests look for it.

Secrets (non-zero bytes written for one owner) that a later owner could read,
descriptors and mappings of the backing memfd, and threads. Shared by
``test_zero_on_reuse`` and ``test_lifecycle``, which add what they covered
to ``tests.figures.FIGURES``.
"""

from __future__ import annotations

import os
import threading

from hypothesis import settings

from impl import MemoryFile
from spec.vocabulary import READ, FileRange
from tests.figures import FIGURES

_NONZERO = bytes(range(1, 256))


def secret(length: int, seed: int) -> bytes:
    """``length`` bytes, none of them zero, different for each ``seed`` (mod 255)."""
    shift = seed % len(_NONZERO)
    return (_NONZERO * (length // len(_NONZERO) + 2))[shift : shift + length]


def first_nonzero(f: MemoryFile, fr: FileRange) -> int | None:
    """The offset of the first byte of ``fr`` that does not read zero, or None.

    Reads through ``map_internal`` views, as a new owner would (reading commits).
    """
    position = fr.start
    for view in f.map_internal(fr, READ):
        data = view.tobytes()
        view.release()
        rest = data.lstrip(b"\0")
        if rest:
            return position + len(data) - len(rest)
        position += len(data)
    FIGURES["bytes checked zero"] += fr.length()
    return None


def assert_reads_zero(f: MemoryFile, fr: FileRange) -> None:
    """AssertionError naming the first leaked byte unless all of ``fr`` reads zero."""
    leaked = first_nonzero(f, fr)
    assert leaked is None, f"leak: byte {leaked:#x} of the new allocation {fr} is not zero"


def overlap(fr: FileRange, ranges: list[FileRange]) -> int:
    """How many bytes of ``fr`` lie in ``ranges`` (which do not overlap each other)."""
    return sum(fr.intersect(other).length() for other in ranges)


def examples(divisor: int) -> int:
    """The loaded profile's example count divided by ``divisor`` (for slower properties)."""
    loaded: int = settings().max_examples
    return max(3, loaded // divisor)


# --- Descriptors, mappings, threads ------------------------------------------------------


def identity(fd: int) -> tuple[int, int]:
    """The (device, inode) of the file open on ``fd``: what the checks below look for."""
    status = os.fstat(fd)
    return status.st_dev, status.st_ino


def fds_of(file: tuple[int, int]) -> list[int]:
    """The descriptors of this process open on ``file`` (an :func:`identity`)."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            status = os.stat(f"/proc/self/fd/{name}")
        except OSError:  # closed meanwhile (the listing's own descriptor, for one)
            continue
        if (status.st_dev, status.st_ino) == file:
            found.append(int(name))
    return found


def maps_of(file: tuple[int, int]) -> list[str]:
    """The lines of /proc/self/maps that map ``file`` (an :func:`identity`)."""
    device, inode = file
    wanted = [f"{os.major(device):02x}:{os.minor(device):02x}", str(inode)]
    with open("/proc/self/maps") as maps:
        return [line for line in maps if line.split()[3:5] == wanted]


def pgalloc_threads() -> set[threading.Thread]:
    """The live threads a MemoryFile starts (reclaimer, evictors, pressure watcher)."""
    return {t for t in threading.enumerate() if t.name.startswith("pgalloc-")}

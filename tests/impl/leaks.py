"""What a ``MemoryFile`` could leave behind, and how the reliability tests look for it.

Secrets (non-zero bytes written for one owner) that a later owner could read,
descriptors and mappings of the backing memfd, and threads. Shared by
``test_zero_on_reuse`` and ``test_lifecycle``, which add what they covered
to ``tests.figures.FIGURES``; with the builds they test (:class:`Build`, the
eviction modes of :data:`MODE_OPTS`) and a pressure source that needs no
memory cgroup (:class:`ManualSource`, also used by ``test_pressure``).
"""

from __future__ import annotations

import os
import select
import threading
from dataclasses import dataclass
from typing import Literal

from hypothesis import settings

from impl import Kernel, MemoryAccounting, MemoryFile, PressureSource
from impl.pressure import Registration
from spec.arguments import normalize_opts
from spec.vocabulary import (
    READ,
    DelayedEviction,
    FileRange,
    HostFaults,
    MemoryFileOpts,
)
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


def open_fds() -> set[str]:
    """The descriptors this process has open (their numbers, as /proc/self/fd names them)."""
    return set(os.listdir("/proc/self/fd"))


# --- Builds, modes and pressure ------------------------------------------------------------


class ManualSource(PressureSource):
    """A pressure source that needs no memory cgroup: an eventfd the test fires itself.

    The eventfd is made when a watcher registers the source (a file without
    threads registers none, so it opens nothing), and the watcher's ``stop``
    closes it. The test fires through its own duplicate, which :meth:`close`
    closes: a fire racing with ``stop`` (a worker of a file being destroyed)
    then reaches an eventfd nobody reads, never a closed (perhaps reused)
    descriptor.
    """

    def __init__(self) -> None:
        self.efd: int | None = None

    def register(self, kernel: Kernel) -> list[Registration]:
        efd = kernel.eventfd()
        self.efd = os.dup(efd)

        def consume() -> bool:
            os.eventfd_read(efd)
            return True

        return [Registration(efd, select.POLLIN, consume, (efd,))]

    def fire(self) -> None:
        """Notify pressure (nothing happens before a watcher registered the source)."""
        if self.efd is not None:
            os.eventfd_write(self.efd, 1)

    def close(self) -> None:
        """Close the test's end (after the last fire)."""
        if self.efd is not None:
            os.close(self.efd)
            self.efd = None


Mode = Literal["disabled", "enabled", "enabled-memcg", "manual"]
"""How evictions start: at marking, when the reclaimer runs dry, on memcg pressure, by hand."""

MODE_OPTS: dict[Mode, MemoryFileOpts] = {
    "disabled": MemoryFileOpts(DelayedEviction.DISABLED),
    "enabled": MemoryFileOpts(DelayedEviction.ENABLED),
    "enabled-memcg": MemoryFileOpts(DelayedEviction.ENABLED, use_host_memcg_pressure=True),
    "manual": MemoryFileOpts(DelayedEviction.MANUAL),
}


def wants_pressure(opts: MemoryFileOpts) -> bool:
    """Whether a file with ``opts`` takes a pressure source (ENABLED with memcg pressure)."""
    normal = normalize_opts(opts)
    return normal.delayed_eviction is DelayedEviction.ENABLED and normal.use_host_memcg_pressure


@dataclass(frozen=True)
class Build:
    """The allocator under test: the real one, or one with a part deliberately broken."""

    file: type[MemoryFile] = MemoryFile
    kernel: type[Kernel] = Kernel

    def make(
        self,
        opts: MemoryFileOpts = MemoryFileOpts(),
        *,
        background: bool = True,
        faults: HostFaults = HostFaults(),
        pressure: PressureSource | None = None,
    ) -> MemoryFile:
        """A file of this build, accounting to its own ``MemoryAccounting``.

        With memcg pressure its source is ``pressure``, by default a
        :class:`ManualSource` (never the process's real memory cgroup, which
        may have no pressure notifications to offer).
        """
        if pressure is None and wants_pressure(opts):
            pressure = ManualSource()
        return self.file(
            opts,
            background=background,
            kernel=self.kernel(faults),
            accounting=MemoryAccounting(),
            pressure=pressure,
        )

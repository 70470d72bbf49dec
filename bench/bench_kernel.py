"""How close ``impl.MemoryFile`` comes to the bare kernel work it wraps.

Each figure is measured against a baseline taken in the same run, after a
warm-up pass (first touches of fresh memory here are 2-6x slower than later
ones), as the best of several repeats:

* fill through ``map_internal`` vs a raw ``ctypes.memset`` into a memfd
  mapping, on first touch and on re-write (target >= 0.95x);
* reclaim of 2 MiB ranges vs raw ``fallocate(PUNCH_HOLE)`` of the same ranges
  (target >= 0.9x the bandwidth);
* ``update_usage`` over 1 GiB of committed live memory vs a raw ``mincore``
  of it (target >= 0.5x the pages per second);
* allocate + dec_ref + reclaim of 4 KiB vs a raw punch-hole of a touched page
  (target <= 2x); touching the page is the caller's work and is timed in
  neither.

First touch is the noisiest figure: it is page faults into guest memory, and
an A/A run here (raw memset against itself, same interleaving) spreads over
0.96-1.005x, so a reading a few percent under target is noise, not cost (the
fill path adds one ``map_internal`` call per 256 MiB).
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable
from typing import TypeVar

from bench.harness import Figure, at_least, at_most
from impl import MemoryAccounting, MemoryFile
from impl.kernel import Kernel
from spec.vocabulary import (
    CHUNK_SIZE,
    HUGE_PAGE_SIZE,
    PAGE_SHIFT,
    PAGE_SIZE,
    WRITE,
    FileRange,
    MemoryFileOpts,
    MemoryKind,
)

KERNEL = Kernel()
ANON = MemoryKind.ANONYMOUS
MiB = 1 << 20
T = TypeVar("T")


def address_of(view: memoryview) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(view))


class RawFile:
    """A bare memfd mapped in one piece: the baselines' playground."""

    def __init__(self, size: int) -> None:
        self.fd = KERNEL.memfd_create("pgalloc-bench")
        KERNEL.ftruncate(self.fd, size)
        self.mapping = KERNEL.map_chunk(self.fd, 0, size)

    def close(self) -> None:
        KERNEL.unmap_chunk(self.mapping)
        KERNEL.close(self.fd)


def manual_file(**kwargs: object) -> MemoryFile:
    return MemoryFile(background=False, accounting=MemoryAccounting(), **kwargs)  # type: ignore[arg-type]


def timed(operation: Callable[[], object]) -> float:
    started = time.perf_counter()
    operation()
    return time.perf_counter() - started


# --- Fill ------------------------------------------------------------------------------------


REWRITES = 3
"""Re-writes per file: the best of them is the file's re-write time (memory bandwidth is noisy)."""


def raw_fill(size: int) -> tuple[float, float]:
    """Seconds for a first-touch memset of ``size`` bytes, then for a re-write."""
    raw = RawFile(size)
    try:
        first = timed(lambda: ctypes.memset(raw.mapping.address, 1, size))
        again = min(
            timed(lambda: ctypes.memset(raw.mapping.address, 2, size)) for _ in range(REWRITES)
        )
    finally:
        raw.close()
    return first, again


def fill_through_map_internal(f: MemoryFile, fr: FileRange, byte: int) -> None:
    for view in f.map_internal(fr, WRITE):
        ctypes.memset(address_of(view), byte, len(view))
        view.release()


def impl_fill(size: int) -> tuple[float, float]:
    with manual_file() as f:
        fr = f.allocate(size, ANON)
        first = timed(lambda: fill_through_map_internal(f, fr, 1))
        again = min(timed(lambda: fill_through_map_internal(f, fr, 2)) for _ in range(REWRITES))
    return first, again


def interleaved(
    repeats: int, raw: Callable[[], T], ours: Callable[[], T]
) -> tuple[list[T], list[T]]:
    """A warm-up of each, then ``repeats`` measurements of each, alternating.

    Alternating spreads the machine's load changes over both sides.
    """
    raw(), ours()
    raws, our = [], []
    for _ in range(repeats):
        raws.append(raw())
        our.append(ours())
    return raws, our


def fill_figures(size: int, repeats: int) -> list[Figure]:
    raws, ours = interleaved(repeats, lambda: raw_fill(size), lambda: impl_fill(size))
    gib = size / (1 << 30)
    figures = []
    for index, name in ((0, "first touch"), (1, "re-write")):
        raw_rate = gib / min(r[index] for r in raws)
        our_rate = gib / min(o[index] for o in ours)
        figures.append(
            at_least(
                f"fill {size // MiB} MiB via map_internal, {name}",
                our_rate,
                "GiB/s",
                "raw memset",
                raw_rate,
                0.95,
            )
        )
    return figures


# --- Reclaim -----------------------------------------------------------------------------------


def raw_punch(count: int) -> float:
    """Seconds to punch ``count`` touched 2 MiB ranges, every other one of 2 * count."""
    raw = RawFile(2 * count * HUGE_PAGE_SIZE)
    try:
        ctypes.memset(raw.mapping.address, 1, 2 * count * HUGE_PAGE_SIZE)
        started = time.perf_counter()
        for n in range(0, 2 * count, 2):
            KERNEL.punch_hole(raw.fd, n * HUGE_PAGE_SIZE, HUGE_PAGE_SIZE)
        return time.perf_counter() - started
    finally:
        raw.close()


def impl_reclaim(count: int) -> float:
    """Seconds for reclaim() of ``count`` freed, touched, non-adjacent 2 MiB ranges."""
    with manual_file() as f:
        ranges = [f.allocate(HUGE_PAGE_SIZE, ANON) for _ in range(2 * count)]
        for fr in ranges:
            fill_through_map_internal(f, fr, 1)
        for fr in ranges[::2]:  # every other one: the reclaim set keeps them apart
            f.dec_ref(fr)
        started = time.perf_counter()
        reclaimed = f.reclaim()
        elapsed = time.perf_counter() - started
        assert len(reclaimed) == count and f.total_usage() == count * HUGE_PAGE_SIZE
    return elapsed


def reclaim_figure(count: int, repeats: int) -> Figure:
    raws, ours = interleaved(repeats, lambda: raw_punch(count), lambda: impl_reclaim(count))
    gib = count * HUGE_PAGE_SIZE / (1 << 30)
    raw_rate = gib / min(raws)
    our_rate = gib / min(ours)
    return at_least(
        f"reclaim {count} x 2 MiB ranges", our_rate, "GiB/s", "raw punch-hole", raw_rate, 0.9
    )


# --- update_usage ------------------------------------------------------------------------------


class StepClock:
    """A clock that moves a second per reading, so update_usage never skips for time."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        self.now += 1_000_000_000
        return self.now


def raw_mincore(size: int, repeats: int) -> float:
    """Best seconds of a raw mincore (ctypes, vector ready) over ``size`` resident bytes.

    Like the update_usage rounds it is compared with, each one follows a
    memset of the whole range (caches are as cold for both).
    """
    raw = RawFile(size)
    try:
        ctypes.memset(raw.mapping.address, 1, size)
        vector = (ctypes.c_ubyte * (size >> PAGE_SHIFT))()
        mincore = ctypes.CDLL(None, use_errno=True).mincore
        mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        best = float("inf")
        for _ in range(repeats + 1):  # the first round is a warm-up
            ctypes.memset(raw.mapping.address, 0, size)
            best = min(best, timed(lambda: mincore(raw.mapping.address, size, vector)))
        return best
    finally:
        raw.close()


def impl_update_usage(size: int, repeats: int) -> float:
    """Best seconds of an update_usage that scans ``size`` committed live bytes.

    Manual zeroing keeps decommitted pages committed (zeroed, by a memset), so
    each round can forget what is known (decommit) without paying for first
    touches.
    """
    with manual_file(opts=MemoryFileOpts(manual_zeroing=True), clock=StepClock()) as f:
        fr = f.allocate(size, ANON)  # zeroing commits every page
        best = float("inf")
        for _ in range(repeats + 1):  # the first round is a warm-up
            f.decommit(fr)
            elapsed = timed(f.update_usage)
            assert f.observation().usage_expected == size
            best = min(best, elapsed)
    return best


def usage_figure(size: int, repeats: int) -> Figure:
    pages = size >> PAGE_SHIFT
    raw_rate = pages / raw_mincore(size, repeats)
    our_rate = pages / impl_update_usage(size, repeats)
    return at_least(
        f"update_usage over {size // MiB} MiB committed",
        our_rate / 1e9,
        "Gpages/s",
        "raw mincore",
        raw_rate / 1e9,
        0.5,
    )


# --- A 4 KiB round trip --------------------------------------------------------------------------


def raw_page_punch(count: int) -> float:
    """Seconds per punch of a touched page (the touch is not timed)."""
    raw = RawFile(CHUNK_SIZE)
    try:
        total = 0.0
        offset = CHUNK_SIZE - PAGE_SIZE
        for _ in range(count):
            ctypes.memset(raw.mapping.address + offset, 1, 1)
            started = time.perf_counter()
            KERNEL.punch_hole(raw.fd, offset, PAGE_SIZE)
            total += time.perf_counter() - started
        return total / count
    finally:
        raw.close()


def impl_page_round_trip(count: int) -> float:
    """Seconds per allocate + dec_ref + reclaim of a touched page (the touch is not timed)."""
    with manual_file() as f:
        f.allocate(PAGE_SIZE, ANON)
        (view,) = f.map_internal(FileRange(0, CHUNK_SIZE), WRITE)
        base = address_of(view)
        total = 0.0
        clock = time.perf_counter
        for _ in range(count):
            started = clock()
            fr = f.allocate(PAGE_SIZE, ANON)
            allocated = clock()
            ctypes.memset(base + fr.start, 1, 1)
            touched = clock()
            f.dec_ref(fr)
            f.reclaim()
            total += allocated - started + clock() - touched
        view.release()
        return total / count


def round_trip_figure(count: int, repeats: int) -> Figure:
    raws, our_runs = interleaved(
        repeats, lambda: raw_page_punch(count), lambda: impl_page_round_trip(count)
    )
    raw, ours = min(raws), min(our_runs)
    return at_most(
        "allocate+dec_ref+reclaim of 4 KiB",
        ours * 1e6,
        "us",
        "raw punch of a touched page",
        raw * 1e6,
        2.0,
    )


def run(quick: bool) -> list[Figure]:
    repeats = 3 if quick else 7
    return [
        *fill_figures((64 if quick else 256) * MiB, repeats),
        reclaim_figure(64 if quick else 256, repeats),
        usage_figure((256 if quick else 1024) * MiB, repeats),
        round_trip_figure(2_000 if quick else 20_000, repeats),
    ]


if __name__ == "__main__":
    import sys

    import impl
    from bench.harness import table

    build = "compiled" if impl.compiled() else "pure"
    print(table([(build, f) for f in run(quick="--quick" in sys.argv)]))

"""The child process of the memory-cgroup tests (run as ``python -m tests.impl.memcg_child``).

It waits on stdin until the parent has moved it into a small child memory
cgroup, creates a MemoryFile that registers for that cgroup's pressure (the
registration is for the *current* cgroup, hence a separate process), then
fills memory in evictable 4 MiB pieces and prints what happened as JSON.

Arguments: ``low`` (the seed's pressure level) or ``threshold`` (the usage
early warning at half the limit); how many pieces; optionally a file to read
first, so that the cgroup holds reclaimable page cache.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys

from impl import MemcgUsageThreshold, MemoryFile
from spec.vocabulary import (
    WRITE,
    DelayedEviction,
    EvictableRange,
    FileRange,
    MemoryFileOpts,
    MemoryKind,
)

PIECE = 4 << 20


class CountingFile(MemoryFile):
    """Counts the pressure notifications that started evictions."""

    started = 0

    def memcg_pressure(self) -> bool:
        started = super().memcg_pressure()
        self.started += started
        return started


class Cache:
    """An evictable user: evicting a range of pieces frees them."""

    def __init__(self, f: MemoryFile) -> None:
        self.f = f
        self.held: dict[int, FileRange] = {}
        self.evicted = 0

    def evict(self, er: EvictableRange) -> None:
        for piece in range(er.start, er.end):
            fr = self.held.pop(piece, None)
            if fr is not None:
                self.f.dec_ref(fr)
                self.evicted += 1


def main() -> None:
    mode, pieces = sys.argv[1], int(sys.argv[2])
    sys.stdin.readline()  # the parent moved us into the cgroup
    opts = MemoryFileOpts(DelayedEviction.ENABLED, use_host_memcg_pressure=True)
    pressure = MemcgUsageThreshold(fraction=0.5) if mode == "threshold" else None
    f = CountingFile(opts, pressure=pressure)
    if len(sys.argv) > 3:  # page cache the kernel can reclaim, reporting "low" pressure
        fd = os.open(sys.argv[3], os.O_RDONLY)
        while os.read(fd, 1 << 20):
            pass
        os.close(fd)
    cache = Cache(f)
    for piece in range(pieces):
        fr = f.allocate(PIECE, MemoryKind.ANONYMOUS)
        (view,) = f.map_internal(fr, WRITE)
        ctypes.memset(ctypes.addressof(ctypes.c_char.from_buffer(view)), 1, PIECE)
        view.release()
        cache.held[piece] = fr
        f.mark_evictable(cache, EvictableRange(piece, piece + 1))
    f.wait_for_evictions()
    f.reclaim()
    result = {"evicted": cache.evicted, "started": f.started, "usage": f.total_usage()}
    f.destroy()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

"""The child process of the memory-cgroup tests (run as ``python -m tests.impl.memcg_child``).

It waits on stdin until the parent has moved it into a small child memory
cgroup, and only then imports the allocator (so that the memory the imports
take is charged to that cgroup, the same in every run; only the interpreter's
start-up and a few standard modules come before); it creates a MemoryFile
that registers for that cgroup's pressure (the registration is for the
*current* cgroup, hence a separate process), then fills memory in evictable
4 MiB pieces, each written through, and reports what happened as JSON lines
on stdout, flushed as they happen (so that the parent has the record even if
the OOM killer ends the child):

* ``{"event": "notified", ...}`` — the first pressure notification;
* ``{"event": "evicted", ...}`` — the first range handed to the user's evict;
* ``{"event": "done", ...}`` — every piece written and evictions settled.

Each carries the cgroup's ``usage`` and ``failcnt`` at that moment, how many
``pieces`` were written so far, the file's ``committed`` bytes and the
``seconds`` since the first piece.

Arguments: the ``mode`` — ``threshold`` (the early usage warning at half
the limit), ``low`` (the seed's level), or one of two broken builds with the
threshold registered: ``ignore`` (the file never starts evictions) and
``nopunch`` (the reclaimer skips the punch, so evicted pages stay
committed); how many pieces; optionally a file to read first, so that the
cgroup holds reclaimable page cache.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import threading
import time


def wait_for_the_parent() -> None:
    """Block until the parent, having moved this process into the cgroup, says go.

    Exits if the parent died first (stdin closed without a line).
    """
    if not sys.stdin.readline():
        sys.exit(0)


if __name__ == "__main__":
    wait_for_the_parent()  # before the imports below: their memory is charged to the cgroup

from impl import MemcgPressureLevel, MemcgUsageThreshold, MemoryFile, PressureSource  # noqa: E402
from impl.pressure import current_memcg_v1_dir, memcg_limit  # noqa: E402
from impl.reclaimer import Reclaimer  # noqa: E402
from spec.vocabulary import (  # noqa: E402
    WRITE,
    DelayedEviction,
    EvictableRange,
    FileRange,
    MemoryFileOpts,
    MemoryKind,
)

PIECE = 4 << 20
THRESHOLD_FRACTION = 0.5


class Recorder:
    """Prints one JSON line per kind of event; usage and failcnt are read from the cgroup."""

    def __init__(self, cgroup: str) -> None:
        self.cgroup = cgroup
        self.started = time.monotonic()
        self.pieces = 0
        self.file: MemoryFile | None = None
        self.seen: set[str] = set()
        self.lock = threading.Lock()

    def read(self, name: str) -> int:
        with open(os.path.join(self.cgroup, name)) as f:
            return int(f.read())

    def emit(self, event: str, **extra: int) -> None:
        """Print ``event``'s record, the first time only."""
        with self.lock:
            if event in self.seen:
                return
            self.seen.add(event)
            committed = os.fstat(self.file.fd()).st_blocks * 512 if self.file else 0
            record = {
                "event": event,
                "usage": self.read("memory.usage_in_bytes"),
                "failcnt": self.read("memory.failcnt"),
                "pieces": self.pieces,
                "committed": committed,
                "seconds": round(time.monotonic() - self.started, 4),
                **extra,
            }
            print(json.dumps(record), flush=True)


class RecordingFile(MemoryFile):
    """Records the first pressure notification and counts those that started evictions."""

    def __init__(self, recorder: Recorder, opts: MemoryFileOpts, pressure: PressureSource) -> None:
        self.recorder = recorder  # before the watcher thread can call back
        self.started = 0
        super().__init__(opts, pressure=pressure)

    def memcg_pressure(self) -> bool:
        self.recorder.emit("notified")
        started = super().memcg_pressure()
        self.started += started
        return started


class IgnoringFile(RecordingFile):
    """Broken: pressure is reported, but no eviction starts."""

    def memcg_pressure(self) -> bool:
        self.recorder.emit("notified")
        return False


class NoPunch(Reclaimer):
    def decommit(self, start: int, end: int) -> None:
        pass


class NoPunchFile(RecordingFile):
    """Broken: the reclaimer takes freed pages without punching them (they stay committed)."""

    _reclaimer_class = NoPunch


FILES = {
    "threshold": RecordingFile,
    "low": RecordingFile,
    "ignore": IgnoringFile,
    "nopunch": NoPunchFile,
}


class Cache:
    """An evictable user: evicting a range of pieces frees them (dec_ref; the reclaimer punches)."""

    def __init__(self, f: MemoryFile, recorder: Recorder) -> None:
        self.f = f
        self.recorder = recorder
        self.held: dict[int, FileRange] = {}
        self.evicted = 0

    def evict(self, er: EvictableRange) -> None:
        self.recorder.emit("evicted")
        for piece in range(er.start, er.end):
            fr = self.held.pop(piece, None)
            if fr is not None:
                self.f.dec_ref(fr)
                self.evicted += 1


def pressure_for(mode: str) -> PressureSource:
    if mode == "low":
        return MemcgPressureLevel("low")
    return MemcgUsageThreshold(fraction=THRESHOLD_FRACTION)


def main() -> None:
    mode, pieces = sys.argv[1], int(sys.argv[2])
    file_class = FILES[mode]
    cgroup = current_memcg_v1_dir()
    assert cgroup is not None
    recorder = Recorder(cgroup)
    if len(sys.argv) > 3:  # page cache the kernel can reclaim (and report "low" pressure for)
        fd = os.open(sys.argv[3], os.O_RDONLY)
        while os.read(fd, 1 << 20):
            pass
        os.close(fd)
    opts = MemoryFileOpts(DelayedEviction.ENABLED, use_host_memcg_pressure=True)
    f = file_class(recorder, opts, pressure_for(mode))
    recorder.file = f
    cache = Cache(f, recorder)
    limit = memcg_limit(cgroup) or 0
    recorder.started = time.monotonic()
    peak = 0
    for piece in range(pieces):
        fr = f.allocate(PIECE, MemoryKind.ANONYMOUS)
        (view,) = f.map_internal(fr, WRITE)
        ctypes.memset(ctypes.addressof(ctypes.c_char.from_buffer(view)), 1, PIECE)
        view.release()
        cache.held[piece] = fr
        recorder.pieces = piece + 1
        peak = max(peak, f.total_usage())
        f.mark_evictable(cache, EvictableRange(piece, piece + 1))
    f.wait_for_evictions()
    f.reclaim()
    recorder.emit(
        "done",
        limit=limit,
        threshold=int(limit * THRESHOLD_FRACTION),
        evicted=cache.evicted,
        started=f.started,
        peak_committed=peak,
        max_usage=recorder.read("memory.max_usage_in_bytes"),
    )
    f.destroy()


if __name__ == "__main__":
    main()

"""``MemoryFile``: gVisor's page allocator over a real memfd; every method of the seed.

Memory handed out is real shared memory of one backing file (a memfd unless
the caller passes an fd), grown with ``ftruncate`` exactly where the seed
grows it and mapped in 1 GiB chunks on first use (:mod:`impl.chunks`); freed
memory goes back to the kernel with ``fallocate(PUNCH_HOLE)`` on the
reclaimer thread (:mod:`impl.reclaimer`); usage is read from the kernel
(``fstat``, ``mincore``; :mod:`impl.usage`); evictable ranges are handed back
by eviction threads (:mod:`impl.eviction`). Every method mirrors
``spec.memory_file.SpecMemoryFile`` (both satisfy ``spec.vocabulary.MemoryFileApi``):
same results, same exceptions, and a rejected call changes nothing (each
validates everything first).

The state, its lock and its invariants are :class:`impl.state.FileState`;
the reclaimer's work is :class:`impl.reclaimer.Reclaimer` and the evictors'
:class:`impl.eviction.Evictor`, both over that state (their classes are
``_reclaimer_class`` and ``_evictor_class``: a narrow seam for broken builds
in tests). This module holds the client's methods and the file's lifecycle.

Hot paths: ``allocate``, ``inc_ref`` and ``dec_ref`` check here only that each
argument has exactly the Python type it declares, then run their bodies in
:mod:`impl.operations`, which the compiled build compiles (this module stays
interpreted: compiled, its methods would convert their arguments at the call,
``True`` to 1, before checking them). An argument of any other type is
refused here as the spec refuses it, the file's liveness first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import ClassVar

from impl import eviction, operations, reclaimer, usage
from impl.accounting import MEMORY_ACCOUNTING, MemoryAccounting
from impl.chunks import Slices, fill
from impl.eviction import Evictor
from impl.kernel import DEFAULT_KERNEL, Kernel, ResidencyVector
from impl.pressure import PressureSource, PressureWatcher, current_memcg_pressure
from impl.reclaimer import Reclaimer
from impl.runtime import Runtime, Tracer
from impl.state import FileState
from spec.arguments import (
    check_access,
    check_evictable_range,
    check_file_range,
    check_kind,
    check_length,
    check_page_range,
    check_reader,
    check_user,
    check_write,
    normalize_opts,
)
from spec.errors import (
    InvalidArgument,
    RangeBeyondFile,
    eacces,
)
from spec.vocabulary import (
    CHUNK_SIZE,
    PAGE_SHIFT,
    PAGE_SIZE,
    UINT64_MAX,
    WRITE,
    AccessType,
    DelayedEviction,
    EvictableRange,
    FileRange,
    FillResult,
    MemoryFileOpts,
    MemoryKind,
    Observation,
    Reader,
    SeedDefects,
)

log = logging.getLogger(__name__)

_PAGE_MASK = PAGE_SIZE - 1
_CHUNK_PAGES = CHUNK_SIZE >> PAGE_SHIFT


def _page_range(fr: object) -> FileRange:
    """``check_page_range``, with a fast path that accepts only what it accepts."""
    if type(fr) is FileRange:
        start, end = fr
        if (
            type(start) is int
            and type(end) is int
            and 0 <= start < end <= UINT64_MAX
            and not (start | end) & _PAGE_MASK
        ):
            return fr
    return check_page_range(fr)


def _exactly_a_range(fr: object) -> bool:
    """Whether ``fr`` is a FileRange of two ints, exactly the types the compiled code takes."""
    return type(fr) is FileRange and type(fr[0]) is int and type(fr[1]) is int


class MemoryFile:
    """gVisor's ``pgalloc.MemoryFile`` over a real memfd; see the module docstring.

    ``file``: an fd to take ownership of (default: a new memfd); ``accounting``:
    where to report usage (default: the process-wide one); ``background``:
    start the reclaimer and eviction threads (False: none, drive them with
    :meth:`reclaim` and :meth:`run_evictions`, and no pressure source is
    registered); ``clock``: update_usage's clock in ns; ``kernel``: the
    seam to the OS (tests inject faults there); ``pressure``: where memory
    pressure comes from when the options ask for it (default: the current
    memory cgroup's "low" level, see :mod:`impl.pressure`); ``tracer``: told
    of each step of the background threads (see :mod:`impl.runtime`);
    ``runtime``: the runtime to use instead of Python's threads (a controlled
    scheduler's, in ``models.schedule``); ``defects``: the seed's defects to
    restore (:class:`spec.vocabulary.SeedDefects`; default: none, corrected).
    """

    _reclaimer_class: ClassVar[type[Reclaimer]] = Reclaimer
    _evictor_class: ClassVar[type[Evictor]] = Evictor

    def __init__(
        self,
        opts: MemoryFileOpts = MemoryFileOpts(),
        *,
        file: int | None = None,
        accounting: MemoryAccounting | None = None,
        background: bool = True,
        clock: Callable[[], int] = time.monotonic_ns,
        kernel: Kernel | None = None,
        pressure: PressureSource | None = None,
        tracer: Tracer | None = None,
        runtime: Runtime | None = None,
        defects: SeedDefects = SeedDefects(),
    ) -> None:
        self.opts = normalize_opts(opts)
        if file is not None and (type(file) is not int or file < 0):
            raise InvalidArgument(f"file must be a file descriptor (an int >= 0), not {file!r}")
        wants_pressure = (
            self.opts.delayed_eviction is DelayedEviction.ENABLED
            and self.opts.use_host_memcg_pressure
        )
        if pressure is not None and not wants_pressure:
            raise ValueError("a pressure source needs DelayedEviction.ENABLED with memcg pressure")
        self.clock = clock
        kernel = kernel if kernel is not None else DEFAULT_KERNEL
        runtime = runtime if runtime is not None else Runtime(tracer)
        if defects.empty_unevictable:
            raise ValueError(
                "impl restores the seed's D1 to D3; D4 (empty_unevictable) is the spec's"
            )
        owned = file is None
        fd = kernel.memfd_create("pgalloc") if file is None else file
        try:
            self._state = state = FileState(
                runtime,
                kernel,
                fd,
                accounting if accounting is not None else MEMORY_ACCOUNTING,
                background=background,
                manual_zeroing=self.opts.manual_zeroing,
                evict_when_idle=self.opts.delayed_eviction is DelayedEviction.ENABLED
                and not self.opts.use_host_memcg_pressure,
                defects=defects,
            )
            self._evictor = self._evictor_class(state)
            self._reclaimer = self._reclaimer_class(state, self._evictor)
            self._reclaimer_thread: threading.Thread | None = None
            if background:
                self._reclaimer_thread = runtime.thread(
                    "pgalloc-reclaimer", reclaimer.run_reclaimer, self._reclaimer, runtime
                )
            # Truncate to 0 bytes first to ensure that the file is empty.
            kernel.ftruncate(fd, 0)
            self._watcher: PressureWatcher | None = None
            if background and wants_pressure:
                source = pressure if pressure is not None else current_memcg_pressure("low")
                self._watcher = PressureWatcher(source, self._on_pressure, kernel)
        except BaseException:
            if owned:
                kernel.close(fd)
            raise
        if self._reclaimer_thread is not None:
            self._reclaimer_thread.start()
        # IMA (if enabled) checksums a file the first time it is mapped PROT_EXEC;
        # do it now, while the file is empty, rather than when it is terabytes.
        try:
            kernel.premap_exec(fd)
        except OSError as error:
            log.warning("Failed to pre-map MemoryFile PROT_EXEC: %s", error)

    def _require_live(self) -> None:
        operations.require_live(self._state)

    # --- Allocation ----------------------------------------------------------------------

    def allocate(self, length: int, kind: MemoryKind) -> FileRange:
        """Allocate: ``length`` zeroed bytes with one reference, the highest free fit.

        Grows the file to the next chunk multiple if the range ends past it;
        ENOMEM if nothing fits. O(log n) in the number of usage segments.
        """
        if type(length) is not int or type(kind) is not MemoryKind:
            with self._state.mu:  # refused as the spec refuses it (see "Hot paths")
                self._require_live()
                check_length(length)
                check_kind(kind)
        return operations.allocate(self._state, length, kind)

    def allocate_and_fill(self, length: int, kind: MemoryKind, reader: Reader) -> FillResult:
        """AllocateAndFill: allocate, then fill from ``reader`` until full, EOF or error.

        The reader writes straight into the mapping (zero-copy) at most
        ``FILL_BUFFER`` bytes at a time. Only whole pages filled are kept; the
        rest is released at once. The error is the reader's, or
        :class:`EOFError` if it ended early, or None. The reader is checked first.
        If the mapping fails, the allocation is released and the error raised.
        """
        check_reader(reader)
        fr = self.allocate(length, kind)
        try:
            views = self.map_internal(fr, WRITE)
        except OSError:
            self.dec_ref(fr)
            raise
        done, error = fill(views, length, reader)
        for view in views:
            view.release()
        kept = done - done % PAGE_SIZE
        if kept < length:
            self.dec_ref(FileRange(fr.start + kept, fr.end))
            fr = FileRange(fr.start, fr.start + kept)
        return FillResult(fr, error)

    # --- References ------------------------------------------------------------------------

    def inc_ref(self, fr: FileRange) -> None:
        """IncRef: one more reference on every page of ``fr`` (all must be referenced)."""
        if not _exactly_a_range(fr):
            self._refuse_range(fr)
        operations.inc_ref(self._state, fr)

    def dec_ref(self, fr: FileRange) -> None:
        """DecRef: one reference fewer on every page of ``fr``.

        Pages left with none join the reclaim set, accounted as System until
        reclaimed, and the reclaimer is signalled.
        """
        if not _exactly_a_range(fr):
            self._refuse_range(fr)
        operations.dec_ref(self._state, fr)

    def _refuse_range(self, fr: object) -> None:
        """Raise what the spec raises for ``fr``, not a FileRange of two ints (see "Hot paths")."""
        with self._state.mu:
            self._require_live()
            check_page_range(fr)

    # --- Decommit ----------------------------------------------------------------------------

    def decommit(self, fr: FileRange) -> None:
        """Decommit: release the memory behind the allocated ``fr``; it then reads as zeroes.

        Punches a hole (or zeroes with ``manual_zeroing``) without the lock,
        then clears knownCommitted. A failed punch raises its OSError and
        changes nothing.
        """
        state = self._state
        with state.mu:
            self._require_live()
            _page_range(fr)
            usage.covering(state.usage, fr, "Decommit")
            state.unlocked_users += 1
        try:
            if state.manual_zeroing:
                # PUNCH_HOLE might not zero pages where manual zeroing is in effect.
                state.chunks.zero(fr.start, fr.end)
            else:
                state.kernel.punch_hole(state.fd, fr.start, fr.end - fr.start)
        except BaseException:
            with state.mu:
                state.unlocked_done_locked()
            raise
        with state.mu:
            state.unlocked_done_locked()
            self._mark_decommitted_locked(fr.start, fr.end)

    def _mark_decommitted_locked(self, start: int, end: int) -> None:
        """markDecommitted: the pages of ``[start, end)`` are no longer known committed."""
        state = self._state
        state.books.forget(state.usage, start, end)
        state.decommit_generation += 1

    # --- Mappings ------------------------------------------------------------------------------

    def map_internal(self, fr: FileRange, at: AccessType) -> list[memoryview]:
        """MapInternal: zero-copy writable views of ``fr``, one per chunk it touches.

        Maps each chunk on first use and keeps it until destroy; a view keeps
        its mapping alive even then. Execute access is EACCES.
        """
        self._require_live()
        check_file_range(fr)
        check_access(at)
        if at.execute:
            raise eacces(f"MapInternal({fr}) with execute access")
        size = self._state.file_size
        if fr.end > size:
            raise RangeBeyondFile(f"MapInternal({fr}): the file is {size:#x} bytes")
        return self._views(self._state.chunks.slices(fr.start, fr.end))

    def _views(self, slices: Slices) -> list[memoryview]:
        """Views of ``slices``; UseAfterDestroy if destroy has released their chunks meanwhile."""
        try:
            return [mapping.view[lo:hi] for mapping, lo, hi in slices]
        except ValueError:  # a chunk's view was released: destroy ran after the caller's check
            self._require_live()
            raise

    def _mapped_slices(self, fr: FileRange) -> Slices:
        """The slices of ``fr``, which must lie in chunks already mapped (as the spec's read)."""
        self._require_live()
        check_file_range(fr)
        if not self._state.chunks.all_mapped(fr.start, fr.end):
            self._require_live()  # destroy may have dropped the mappings since the check above
            raise RangeBeyondFile(f"{fr} is not inside a mapping returned by map_internal")
        return self._state.chunks.slices(fr.start, fr.end)

    def read(self, fr: FileRange) -> bytes:
        """Read ``fr`` through the mappings (``map_internal`` it first); commits what it touches."""
        return b"".join(self._views(self._mapped_slices(fr)))

    def write(self, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` through the mappings (``map_internal`` it first)."""
        self._require_live()
        fr, data = check_write(offset, data)
        if not data:
            return
        position = 0
        for view in self._views(self._mapped_slices(fr)):
            view[:] = data[position : position + len(view)]
            position += len(view)

    # --- Usage -------------------------------------------------------------------------------

    def update_usage(self) -> None:
        """UpdateUsage: learn from ``mincore`` which referenced pages are committed.

        Skips as the seed does (:func:`impl.usage.should_skip`); otherwise
        scans (:func:`impl.usage.scan_locked`, which drops the lock around
        ``mincore``), then books what the file holds by then beyond what it
        knows committed as swap (System), even if the scan failed.
        """
        state = self._state
        with state.mu:
            self._require_live()
            now = self.clock()
            if type(now) is not int:
                raise InvalidArgument(f"the clock must return int nanoseconds, not {now!r}")
            books = state.books
            current = state.kernel.committed_bytes(state.fd)
            if usage.should_skip(now, current, books.expected, books.swapped, books.last):
                return
            books.last = now
            vector = state.spare_vector or ResidencyVector(_CHUNK_PAGES)
            state.spare_vector = None
            try:
                self._scan_locked(vector)
            finally:
                state.spare_vector = vector
                self._finish_scan_locked(current)

    def _scan_locked(self, vector: ResidencyVector) -> None:
        """The scan (a step of its own: tests plant one that fails)."""
        usage.scan_locked(self._state, vector)

    def _finish_scan_locked(self, began_with: int) -> None:
        """Book what the file holds beyond ``usage_expected`` as swap, or drop the booking.

        The seed books against the usage read before the scan (``began_with``),
        assuming it only grew since; the lock was dropped meanwhile (pages may
        have been punched), so we read it again, under the lock (unless the
        seed's ``stale_mincore`` defect is restored).
        """
        state = self._state
        stale = state.defects.stale_mincore
        state.books.book_swap(began_with if stale else state.kernel.committed_bytes(state.fd))

    def total_usage(self) -> int:
        """TotalUsage: what the kernel holds for the file (``fstat`` blocks x 512)."""
        state = self._state
        with state.mu:
            self._require_live()
            return state.kernel.committed_bytes(state.fd)

    def total_size(self) -> int:
        """TotalSize: the size of the backing file."""
        with self._state.mu:
            self._require_live()
            return self._state.file_size

    def file(self) -> int:
        """The backing file's descriptor (Python has no ``os.File``)."""
        return self.fd()

    def fd(self) -> int:
        self._require_live()
        return self._state.fd

    def committed_ranges(self) -> list[FileRange]:
        """What ``mincore`` says is committed over the whole file, merged (see impl.usage)."""
        state = self._state
        with state.mu:
            self._require_live()
            return usage.committed_ranges(state.kernel, state.fd, state.file_size, state.chunks)

    # --- Evictable memory ----------------------------------------------------------------

    def mark_evictable(self, user: Hashable, er: EvictableRange) -> None:
        """MarkEvictable: ``user.evict(er)`` may be called in the future.

        DISABLED starts evicting the user at once; ENABLED without memcg
        pressure wakes the reclaimer, which evicts when it runs out of work.
        """
        state = self._state
        with state.mu:
            self._require_live()
            check_user(user)
            check_evictable_range(er)
            info = state.evictable.mark(user, er.start, er.end)
            if not info.evicting:
                if self.opts.delayed_eviction is DelayedEviction.DISABLED:
                    self._evictor.start_evictor_locked(user, info)
                elif state.evict_when_idle:
                    state.signal_reclaimer_locked()

    def mark_unevictable(self, user: Hashable, er: EvictableRange) -> None:
        """MarkUnevictable: ``user`` no longer considers ``er`` evictable.

        An eviction already taken off the set may still be delivered (the seed's race).
        """
        with self._state.mu:
            self._require_live()
            check_user(user)
            check_evictable_range(er)
            self._state.evictable.unmark(user, er.start, er.end)

    def mark_all_unevictable(self, user: Hashable) -> None:
        """MarkAllUnevictable: nothing of ``user`` is evictable any more."""
        with self._state.mu:
            self._require_live()
            check_user(user)
            self._state.evictable.unmark_all(user)

    def should_cache_evictable(self) -> bool:
        """ShouldCacheEvictable: whether evictions are meaningfully delayed."""
        self._require_live()
        opts = self.opts
        return opts.delayed_eviction is DelayedEviction.MANUAL or opts.use_host_memcg_pressure

    def start_evictions(self) -> None:
        """StartEvictions: start evicting every user not already being evicted."""
        with self._state.mu:
            self._require_live()
            self._evictor.start_evictions_locked()

    def memcg_pressure(self) -> bool:
        """Deliver one memory-cgroup pressure notification; whether evictions started.

        What the pressure thread calls. Only a file created ENABLED with memcg
        pressure responds; for any other (or a destroyed one) nothing happens.
        """
        with self._state.mu:
            if self._state.destroyed or not (
                self.opts.delayed_eviction is DelayedEviction.ENABLED
                and self.opts.use_host_memcg_pressure
            ):
                return False
            return self._evictor.start_evictions_locked()

    def _on_pressure(self) -> None:
        if self.memcg_pressure():
            log.debug("pgalloc.MemoryFile performing evictions due to memcg pressure")

    def wait_for_evictions(self) -> None:
        """WaitForEvictions: until no eviction is running (without threads: run them)."""
        if not self._state.background:
            self.run_evictions()
            return
        self._evictor.wait_until_done()

    def run_evictions(self) -> list[tuple[Hashable, EvictableRange]]:
        """Run every pending eviction to its end on this thread, user by user in order.

        Returns what was delivered. With background threads, waits for them
        instead and returns [].
        """
        if self._state.background:
            self.wait_for_evictions()
            return []
        return eviction.evict_all(self._evictor)

    def reclaim(self) -> list[FileRange]:
        """Run the reclaimer until it would wait; the ranges it reclaimed, in order.

        With a background reclaimer thread: wait until it is idle, return [].
        """
        if self._state.background:
            self._reclaimer.wait_until_idle()
            return []
        return reclaimer.reclaim_until_idle(self._reclaimer)

    # --- Lifecycle ------------------------------------------------------------------------

    def destroy(self) -> None:
        """Destroy: end every thread started, close the file, unmap every chunk. Idempotent.

        Eviction threads stop at their next step; a view still held keeps its
        chunk mapped until it is released (a warning says so).
        """
        state = self._state
        with state.mu:
            if not state.destroyed:
                state.destroyed = True
                state.signal_reclaimer_locked()
        me = threading.current_thread()
        if self._reclaimer_thread is not None:
            if self._reclaimer_thread is not me:
                self._reclaimer_thread.join()
            self._evictor.join_threads()
        else:
            eviction.evict_all(self._evictor)
        with state.mu:
            self._reclaimer.exit_locked()  # already done by the reclaimer, unless it died
        if self._watcher is not None:
            self._watcher.stop()

    def __enter__(self) -> MemoryFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def __str__(self) -> str:
        """String: the usage set, one segment per line."""
        with self._state.mu:
            lines = [
                f"{FileRange(s, e)}: kind={u.kind.name} refs={u.refs} "
                f"known_committed={u.known_committed}"
                for s, e, u in self._state.usage
            ]
        return "\n".join(lines) if lines else "(no pages in use)"

    def lock_sequence(self) -> int | None:
        """With a tracer: the number of this thread's latest acquisition of the lock.

        A hint of where its last call took effect, for a checker that verifies
        it (see :mod:`impl.runtime`); None without a tracer.
        """
        return self._state.runtime.lock_sequence()

    def observation(self, label: Callable[[Hashable], str] = str) -> Observation:
        """The observation (the snapshot spec and ports compare), taken under the lock."""
        with self._state.mu:
            return self._state.observation_locked(label)

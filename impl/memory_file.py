"""``MemoryFile``: gVisor's page allocator over a real memfd: its state, its locks, its methods.

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

Locking, as in the seed:

* ``_mu`` protects all state (the usage, reclaim and evictable sets, the
  counters, the flags). The reclaimer, the eviction threads and
  ``update_usage`` drop it around kernel work (punching, ``mincore``) and
  around ``user.evict``;
* the chunk table has its own lock, a leaf (see :mod:`impl.chunks`); a
  ``MemoryAccounting``'s lock is a leaf taken under ``_mu``.

Every lock, condition and thread comes from the file's
:class:`impl.runtime.Runtime`, the one seam for tracing and scheduling. The
background loops drive :class:`Steps`, the file's named steps, never its
members. Unlocked kernel work that uses raw chunk addresses (``mincore``,
manual zeroing) is counted in ``_unlocked_users``; the reclaimer's exit waits
for it to drain before unmapping, so no address is used after ``munmap``.

Hot paths: ``allocate``, ``dec_ref`` and the reclaimer's steps (what an
allocate/free/reclaim round trip runs) cost a few microseconds of interpreter
time each, as much as the kernel work they wrap, so they avoid what costs
there: they take ``_mu`` with ``acquire``/``release`` in ``try``/``finally``
(a ``with`` costs twice as much in 3.11), build ``FileRange`` results with
``tuple.__new__`` (NamedTuple's ``__new__`` is Python code), and handle the
usual single-segment case with one lookup and a fast path whose comment
names the general code it is equivalent to.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable

from impl import eviction, reclaimer, usage
from impl.accounting import MEMORY_ACCOUNTING, MemoryAccounting
from impl.chunks import Chunks, Slices, fill
from impl.eviction import Evictable, Evictables
from impl.kernel import DEFAULT_KERNEL, Kernel, ResidencyVector, committed_runs
from impl.pressure import PressureSource, PressureWatcher, current_memcg_pressure
from impl.reclaimer import EXIT, WAIT, Taken
from impl.runtime import Runtime, Tracer
from impl.segments import GapSet, SegmentSet
from impl.usage import FRESH, SYSTEM, Books, Usage, add_ref, drop_ref
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
    UseAfterDestroy,
    eacces,
    enomem,
)
from spec.vocabulary import (
    CHUNK_MASK,
    CHUNK_SHIFT,
    CHUNK_SIZE,
    HUGE_PAGE_SIZE,
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

_new_tuple = tuple.__new__
"""``_new_tuple(FileRange, (start, end))`` is ``FileRange(start, end)`` built in C,
without NamedTuple's Python-level ``__new__`` (it costs as much as a segment
lookup; a round trip builds two)."""


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
        self._kernel = kernel if kernel is not None else DEFAULT_KERNEL
        self._background = background
        self._evict_when_idle = (
            self.opts.delayed_eviction is DelayedEviction.ENABLED
            and not self.opts.use_host_memcg_pressure
        )

        self._defects = defects
        self._runtime = runtime = runtime if runtime is not None else Runtime(tracer)
        self._mu = runtime.lock()
        self._reclaim_cond = runtime.condition(self._mu)
        """Signalled when the reclaimer becomes runnable (work, an evictable mark, destroy)."""
        self._idle_cond = runtime.condition(self._mu)
        """Notified when unlocked kernel work drains, the reclaimer idles or exits,
        or an eviction thread ends."""

        # State under _mu (names follow the seed).
        self._usage: SegmentSet[Usage] = SegmentSet()
        self._reclaim = GapSet()
        self._reclaimable = False
        self._evictable = Evictables()
        self._file_size = 0
        self._books = Books(accounting if accounting is not None else MEMORY_ACCOUNTING)
        self._decommit_generation = 0
        """Counts markDecommitted; update_usage re-asks mincore if it moved meanwhile."""
        self._destroyed = False
        self._unlocked_users = 0
        self._reclaimer_runnable = True
        """False while the reclaimer waits for a signal (a signal when it is running is lost)."""
        self._reclaimer_failed = False
        """The reclaimer thread died of an exception (a bug, or memory that could not be zeroed)."""
        self._idle_waiters = 0
        self._spare_vector: ResidencyVector | None = None
        """A mincore vector for update_usage to borrow (allocating one per scan is slow)."""
        self._evictors: set[threading.Thread] = set()
        self._evictors_running = 0
        self._steps = Steps(self)
        self._reclaimer_thread: threading.Thread | None = None
        if background:
            self._reclaimer_thread = runtime.thread(
                "pgalloc-reclaimer", reclaimer.run_reclaimer, self._steps, runtime
            )

        owned = file is None
        self._fd = self._kernel.memfd_create("pgalloc") if file is None else file
        self._chunks = Chunks(self._kernel, self._fd, runtime.inner_lock())
        try:
            # Truncate to 0 bytes first to ensure that the file is empty.
            self._kernel.ftruncate(self._fd, 0)
            self._watcher: PressureWatcher | None = None
            if background and wants_pressure:
                source = pressure if pressure is not None else current_memcg_pressure("low")
                self._watcher = PressureWatcher(source, self._on_pressure, self._kernel)
        except BaseException:
            if owned:
                self._kernel.close(self._fd)
            raise
        if self._reclaimer_thread is not None:
            self._reclaimer_thread.start()
        # IMA (if enabled) checksums a file the first time it is mapped PROT_EXEC;
        # do it now, while the file is empty, rather than when it is terabytes.
        try:
            self._kernel.premap_exec(self._fd)
        except OSError as error:
            log.warning("Failed to pre-map MemoryFile PROT_EXEC: %s", error)

    # --- Helpers under _mu -------------------------------------------------------------

    def _require_live(self) -> None:
        if self._destroyed:
            raise UseAfterDestroy("the MemoryFile has been destroyed")

    def _signal_reclaimer_locked(self) -> None:
        """``reclaimCond.Signal()``: wakes a waiting reclaimer; lost if it is running."""
        if not self._reclaimer_runnable:
            self._reclaimer_runnable = True
            if self._reclaimer_thread is not None:
                self._reclaim_cond.notify()

    def _notify_idle_locked(self) -> None:
        if self._idle_waiters:
            self._idle_cond.notify_all()

    def _wait_idle_locked(self) -> None:
        self._idle_waiters += 1
        try:
            self._idle_cond.wait()
        finally:
            self._idle_waiters -= 1

    def _wait_for_signal_locked(self) -> None:
        while not self._reclaimer_runnable:
            self._reclaim_cond.wait()

    def _unlocked_done_locked(self) -> None:
        self._unlocked_users -= 1
        if self._unlocked_users == 0:
            self._notify_idle_locked()

    def _zero(self, start: int, end: int) -> None:
        """manuallyZero ``[start, end)`` (see ``Chunks.zero``)."""
        self._chunks.zero(start, end)

    # --- Allocation ----------------------------------------------------------------------

    def allocate(self, length: int, kind: MemoryKind) -> FileRange:
        """Allocate: ``length`` zeroed bytes with one reference, the highest free fit.

        Grows the file to the next chunk multiple if the range ends past it;
        ENOMEM if nothing fits. O(log n) in the number of usage segments.
        """
        mu = self._mu
        mu.acquire()  # (not `with`: see "Hot paths" in the module docstring)
        try:
            if self._destroyed:
                self._require_live()  # raises
            if not (type(length) is int and 0 < length <= UINT64_MAX and not length & _PAGE_MASK):
                check_length(length)  # raises
            if type(kind) is not MemoryKind:
                check_kind(kind)
            # Hugepage-and-larger allocations are hugepage-aligned, to suit hugetmpfs.
            alignment = HUGE_PAGE_SIZE if length >= HUGE_PAGE_SIZE else PAGE_SIZE
            found = self._usage.find_available_range(self._file_size, length, alignment)
            if found is None:
                raise enomem(f"no range of {length:#x} bytes fits in {self._file_size:#x}")
            start, end = found
            if end > self._file_size:
                new_size = (end + CHUNK_MASK) & ~CHUNK_MASK
                self._kernel.ftruncate(self._fd, new_size)
                self._file_size = new_size
            if self.opts.manual_zeroing:
                self._zero(start, end)
            self._usage.insert(start, end, FRESH[kind])
            return _new_tuple(FileRange, found)
        finally:
            mu.release()

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
        with self._mu:
            self._require_live()
            _page_range(fr)
            usage.referenced(self._usage, fr, "IncRef")
            self._usage.update(fr.start, fr.end, add_ref)

    def dec_ref(self, fr: FileRange) -> None:
        """DecRef: one reference fewer on every page of ``fr``.

        Pages left with none join the reclaim set, accounted as System until
        reclaimed, and the reclaimer is signalled.
        """
        mu = self._mu
        mu.acquire()  # (not `with`: see "Hot paths" in the module docstring)
        try:
            if self._destroyed:
                self._require_live()  # raises
            start, end = _page_range(fr)
            segment = self._usage.lower_bound(start)
            if segment is not None and segment[0] <= start < end <= segment[1] and segment[2].refs:
                # The usual case, a whole allocation in one segment: what the
                # general path below does when that segment is the only part.
                u = segment[2]
                if u.refs == 1:
                    self._free_locked(start, end, u)
            else:
                for s, e, u in usage.referenced(self._usage, fr, "DecRef"):
                    if u.refs == 1:
                        self._free_locked(s, e, u)
            self._usage.update(start, end, drop_ref)
        finally:
            mu.release()

    def _free_locked(self, start: int, end: int, u: Usage) -> None:
        """``[start, end)`` of ``u`` lost its last reference: reclaim it, as System memory."""
        self._reclaim.add(start, end)
        if u.known_committed and u.kind is not SYSTEM:
            self._books.freed(u.kind, end - start)
        self._reclaimable = True
        self._signal_reclaimer_locked()

    # --- Decommit ----------------------------------------------------------------------------

    def decommit(self, fr: FileRange) -> None:
        """Decommit: release the memory behind the allocated ``fr``; it then reads as zeroes.

        Punches a hole (or zeroes with ``manual_zeroing``) without the lock,
        then clears knownCommitted. A failed punch raises its OSError and
        changes nothing.
        """
        with self._mu:
            self._require_live()
            _page_range(fr)
            usage.covering(self._usage, fr, "Decommit")
            self._unlocked_users += 1
        try:
            if self.opts.manual_zeroing:
                # PUNCH_HOLE might not zero pages where manual zeroing is in effect.
                self._zero(fr.start, fr.end)
            else:
                self._kernel.punch_hole(self._fd, fr.start, fr.end - fr.start)
        except BaseException:
            with self._mu:
                self._unlocked_done_locked()
            raise
        with self._mu:
            self._unlocked_done_locked()
            self._mark_decommitted_locked(fr.start, fr.end)

    def _mark_decommitted_locked(self, start: int, end: int) -> None:
        """markDecommitted: the pages of ``[start, end)`` are no longer known committed."""
        self._books.forget(self._usage, start, end)
        self._decommit_generation += 1

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
        if fr.end > self._file_size:
            raise RangeBeyondFile(f"MapInternal({fr}): the file is {self._file_size:#x} bytes")
        return self._views(self._chunks.slices(fr.start, fr.end))

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
        if not self._chunks.all_mapped(fr.start, fr.end):
            self._require_live()  # destroy may have dropped the mappings since the check above
            raise RangeBeyondFile(f"{fr} is not inside a mapping returned by map_internal")
        return self._chunks.slices(fr.start, fr.end)

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

        Skips as the seed does (:func:`impl.usage.should_skip`). Otherwise, for
        each committable segment, chunk slice by slice, drops the lock around
        ``mincore`` and marks the committed pages, accounting them to their
        kind; an answer taken while pages were decommitted is asked again.
        Then books what the file holds by then beyond that as swap (System).
        The vector is decoded with bytes operations, not a per-page loop.
        """
        with self._mu:
            self._require_live()
            now = self.clock()
            if type(now) is not int:
                raise InvalidArgument(f"the clock must return int nanoseconds, not {now!r}")
            current = self._kernel.committed_bytes(self._fd)
            if self._books.should_skip(now, current):
                return
            self._books.last = now
            vector = self._spare_vector or ResidencyVector(_CHUNK_PAGES)
            self._spare_vector = None
            try:
                self._scan_locked(vector)
            finally:
                self._spare_vector = vector
                self._finish_scan_locked(current)

    def _scan_locked(self, vector: ResidencyVector) -> None:
        position = 0
        while not self._destroyed and (segment := usage.next_committable(self._usage, position)):
            start, end = segment
            while start < end and not self._destroyed:
                stop = min(end, (start & ~CHUNK_MASK) + CHUNK_SIZE)
                self._query_and_mark_locked(start, stop, vector)
                start = stop
            position = end

    def _query_and_mark_locked(self, start: int, end: int, vector: ResidencyVector) -> None:
        """mincore the slice ``[start, end)`` without the lock, then mark what it found."""
        address = self._chunks.chunk(start >> CHUNK_SHIFT).address + (start & CHUNK_MASK)
        while True:
            generation = self._decommit_generation
            self._unlocked_users += 1
            self._mu.release()
            try:
                self._kernel.mincore(address, end - start, vector)
            finally:
                self._mu.acquire()
                self._unlocked_done_locked()
            if generation == self._decommit_generation or self._defects.stale_mincore:
                break
            # Pages were decommitted (maybe reallocated) meanwhile: the answer may be stale.
        adjacent = self._defects.adjacent_segment
        for first, stop in committed_runs(vector.bytes, (end - start) >> PAGE_SHIFT):
            run_start = start + (first << PAGE_SHIFT)
            if adjacent and run_start > start:
                self._learn_adjacent_locked(run_start)
            self._books.learn(self._usage, run_start, start + (stop << PAGE_SHIFT))

    def _learn_adjacent_locked(self, run_start: int) -> None:
        """The seed's defect D3: a committable segment ending at ``run_start``, marked whole."""
        segment = self._usage.lower_bound(run_start - PAGE_SIZE)
        if segment is not None and segment[1] == run_start:
            s, e, u = segment
            if not u.known_committed and u.refs:
                self._books.learn(self._usage, s, e)

    def _finish_scan_locked(self, began_with: int) -> None:
        """Book what the file holds beyond ``usage_expected`` as swap, or drop the booking.

        The seed books against the usage read before the scan (``began_with``),
        assuming it only grew since; the lock was dropped meanwhile (pages may
        have been punched), so we read it again, under the lock (unless the
        seed's ``stale_mincore`` defect is restored).
        """
        stale = self._defects.stale_mincore
        self._books.book_swap(began_with if stale else self._kernel.committed_bytes(self._fd))

    def total_usage(self) -> int:
        """TotalUsage: what the kernel holds for the file (``fstat`` blocks x 512)."""
        with self._mu:
            self._require_live()
            return self._kernel.committed_bytes(self._fd)

    def total_size(self) -> int:
        """TotalSize: the size of the backing file."""
        with self._mu:
            self._require_live()
            return self._file_size

    def file(self) -> int:
        """The backing file's descriptor (Python has no ``os.File``)."""
        return self.fd()

    def fd(self) -> int:
        self._require_live()
        return self._fd

    def committed_ranges(self) -> list[FileRange]:
        """What ``mincore`` says is committed over the whole file, merged (see impl.usage)."""
        with self._mu:
            self._require_live()
            return usage.committed_ranges(self._kernel, self._fd, self._file_size, self._chunks)

    # --- Evictable memory ----------------------------------------------------------------

    def mark_evictable(self, user: Hashable, er: EvictableRange) -> None:
        """MarkEvictable: ``user.evict(er)`` may be called in the future.

        DISABLED starts evicting the user at once; ENABLED without memcg
        pressure wakes the reclaimer, which evicts when it runs out of work.
        """
        with self._mu:
            self._require_live()
            check_user(user)
            check_evictable_range(er)
            info = self._evictable.mark(user, er.start, er.end)
            if not info.evicting:
                if self.opts.delayed_eviction is DelayedEviction.DISABLED:
                    self._start_evictor_locked(user, info)
                elif self._evict_when_idle:
                    self._signal_reclaimer_locked()

    def mark_unevictable(self, user: Hashable, er: EvictableRange) -> None:
        """MarkUnevictable: ``user`` no longer considers ``er`` evictable.

        An eviction already taken off the set may still be delivered (the seed's race).
        """
        with self._mu:
            self._require_live()
            check_user(user)
            check_evictable_range(er)
            self._evictable.unmark(user, er.start, er.end)

    def mark_all_unevictable(self, user: Hashable) -> None:
        """MarkAllUnevictable: nothing of ``user`` is evictable any more."""
        with self._mu:
            self._require_live()
            check_user(user)
            self._evictable.unmark_all(user)

    def should_cache_evictable(self) -> bool:
        """ShouldCacheEvictable: whether evictions are meaningfully delayed."""
        self._require_live()
        opts = self.opts
        return opts.delayed_eviction is DelayedEviction.MANUAL or opts.use_host_memcg_pressure

    def start_evictions(self) -> None:
        """StartEvictions: start evicting every user not already being evicted."""
        with self._mu:
            self._require_live()
            self._start_evictions_locked()

    def memcg_pressure(self) -> bool:
        """Deliver one memory-cgroup pressure notification; whether evictions started.

        What the pressure thread calls. Only a file created ENABLED with memcg
        pressure responds; for any other (or a destroyed one) nothing happens.
        """
        with self._mu:
            if self._destroyed or not (
                self.opts.delayed_eviction is DelayedEviction.ENABLED
                and self.opts.use_host_memcg_pressure
            ):
                return False
            return self._start_evictions_locked()

    def _on_pressure(self) -> None:
        if self.memcg_pressure():
            log.debug("pgalloc.MemoryFile performing evictions due to memcg pressure")

    def _start_evictions_locked(self) -> bool:
        idle = self._evictable.idle()
        for user, info in idle:  # one eviction thread per user
            self._start_evictor_locked(user, info)
        return bool(idle)

    def _start_evictor_locked(self, user: Hashable, info: Evictable) -> None:
        info.evicting = True
        self._runtime.event("evictor_start", (user,))  # an effect no result of the call shows
        if self._background:
            thread = self._runtime.thread(
                "pgalloc-evict", eviction.run_evictor, self._steps, self._runtime, user
            )
            self._evictors.add(thread)
            self._evictors_running += 1
            thread.start()

    def _deliver(self, user: Hashable, er: EvictableRange) -> None:
        """Call ``user.evict(er)``, without the lock (users that are mere labels get nothing)."""
        eviction.deliver(user, er)

    def wait_for_evictions(self) -> None:
        """WaitForEvictions: until no eviction is running (without threads: run them)."""
        if not self._background:
            self.run_evictions()
            return
        with self._mu:
            while self._evictors_running:
                self._wait_idle_locked()

    def run_evictions(self) -> list[tuple[Hashable, EvictableRange]]:
        """Run every pending eviction to its end on this thread, user by user in order.

        Returns what was delivered. With background threads, waits for them
        instead and returns [].
        """
        if self._background:
            self.wait_for_evictions()
            return []
        return eviction.evict_all(self._steps)

    # --- The reclaimer's work under the lock (its loop is impl.reclaimer's) -------------

    def _find_reclaimable_locked(self) -> Taken:
        """findReclaimable: take the last reclaimable range, or go idle, or exit.

        Out of work, ENABLED without memcg pressure starts evictions first.
        """
        while True:
            if self._destroyed:
                return EXIT
            if not self._reclaimable:
                if self._evict_when_idle and self._evictable:  # (no user: nothing to start)
                    self._start_evictions_locked()
                self._reclaimer_runnable = False
                self._notify_idle_locked()
                return WAIT
            # Allocate works from the end of the file inwards; so does reclaim.
            last = self._reclaim.pop_last()
            if last is not None:
                self._unlocked_users += 1
                return last
            self._reclaimable = False

    def _decommit_reclaimed(self, start: int, end: int) -> None:
        """Punch the taken range, without the lock; if that fails, zero it and warn.

        With manual zeroing nothing is done: pages are zeroed when allocated.
        """
        if self.opts.manual_zeroing:
            return
        try:
            self._kernel.punch_hole(self._fd, start, end - start)
        except OSError as error:
            log.warning("Reclaim failed to decommit %s: %s", FileRange(start, end), error)
            # Zeroing frees nothing, but the pages will read as zeroes when reused.
            self._zero(start, end)

    def _mark_reclaimed_locked(self, start: int, end: int) -> None:
        """markDecommitted then markReclaimed of the taken range, in one critical section.

        (Two consecutive locked steps of the same thread: running them as one
        only removes interleavings.) Every page must be unreferenced System
        memory; it leaves the usage set.
        """
        self._unlocked_done_locked()
        self._books.reclaimed(self._usage, start, end)
        self._decommit_generation += 1
        self._usage.remove(start, end)

    def _exit_locked(self) -> None:
        """The end of runReclaim: close the file and unmap every chunk (once)."""
        while self._unlocked_users:
            self._wait_idle_locked()
        self._chunks.close()  # so that no chunk is mapped any more
        self._notify_idle_locked()

    def reclaim(self) -> list[FileRange]:
        """Run the reclaimer until it would wait; the ranges it reclaimed, in order.

        With a background reclaimer thread: wait until it is idle, return [].
        """
        if self._background:
            with self._mu:
                while self._reclaimer_runnable and self._chunks.open and not self._reclaimer_failed:
                    self._wait_idle_locked()
                if self._reclaimer_failed:
                    raise RuntimeError("the reclaimer thread failed; see the log")
            return []
        return reclaimer.reclaim_until_idle(self._steps)

    # --- Lifecycle ------------------------------------------------------------------------

    def destroy(self) -> None:
        """Destroy: end every thread started, close the file, unmap every chunk. Idempotent.

        Eviction threads stop at their next step; a view still held keeps its
        chunk mapped until it is released (a warning says so).
        """
        with self._mu:
            if not self._destroyed:
                self._destroyed = True
                self._signal_reclaimer_locked()
        me = threading.current_thread()
        if self._reclaimer_thread is not None:
            if self._reclaimer_thread is not me:
                self._reclaimer_thread.join()
            with self._mu:
                evictors = list(self._evictors)
            for thread in evictors:
                if thread is not me:
                    thread.join()
        else:
            eviction.evict_all(self._steps)
        with self._mu:
            self._exit_locked()  # already done by the reclaimer, unless it died
        if self._watcher is not None:
            self._watcher.stop()

    def __enter__(self) -> MemoryFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def __str__(self) -> str:
        """String: the usage set, one segment per line."""
        with self._mu:
            lines = [
                f"{FileRange(s, e)}: kind={u.kind.name} refs={u.refs} "
                f"known_committed={u.known_committed}"
                for s, e, u in self._usage
            ]
        return "\n".join(lines) if lines else "(no pages in use)"

    def lock_sequence(self) -> int | None:
        """With a tracer: the number of this thread's latest acquisition of the lock.

        A hint of where its last call took effect, for a checker that verifies
        it (see :mod:`impl.runtime`); None without a tracer.
        """
        return self._runtime.lock_sequence()

    def observation(self, label: Callable[[Hashable], str] = str) -> Observation:
        """The observation (the snapshot spec and ports compare), taken under the lock."""
        with self._mu:
            return Observation(
                file_size=self._file_size,
                usage=tuple(
                    (FileRange(s, e), u.kind, u.refs, u.known_committed) for s, e, u in self._usage
                ),
                reclaim=tuple(FileRange(s, e) for s, e in self._reclaim),
                accounting=self._books.accounting_observation(),
                usage_expected=self._books.expected,
                usage_swapped=self._books.swapped,
                evictable=self._evictable.observation(label),
            )


class Steps:
    """A file's background work as the named steps its loops drive.

    :func:`impl.reclaimer.run_reclaimer` and :func:`impl.eviction.run_evictor`
    (threads), :func:`impl.reclaimer.reclaim_until_idle` and
    :func:`impl.eviction.evict_all` (on the caller's thread) see a file only
    through these (:class:`impl.reclaimer.ReclaimerSteps`,
    :class:`impl.eviction.EvictorSteps`); each takes the lock itself.
    """

    __slots__ = ("_f",)

    def __init__(self, f: MemoryFile) -> None:
        self._f = f

    def reclaim_find(self, manual: bool) -> Taken:
        f = self._f
        f._mu.acquire()  # (not `with`: see "Hot paths" in the module docstring)
        try:
            if manual and (not f._reclaimer_runnable or f._destroyed or f._reclaimer_failed):
                return WAIT
            return f._find_reclaimable_locked()
        finally:
            f._mu.release()

    def reclaim_punch(self, taken: tuple[int, int]) -> None:
        f = self._f
        try:
            f._decommit_reclaimed(*taken)
        except BaseException:
            # Neither punched nor zeroed: the range must never be handed out again,
            # so it stays in usage, unreferenced, and the reclaimer stops (the seed
            # panics here; the spec's FAILED step).
            with f._mu:
                f._reclaimer_failed = True
                f._unlocked_done_locked()
            raise

    def reclaim_mark(self, taken: tuple[int, int]) -> Taken:
        f = self._f
        f._mu.acquire()
        try:
            f._mark_reclaimed_locked(*taken)
            return f._find_reclaimable_locked()
        finally:
            f._mu.release()

    def reclaim_wait(self) -> None:
        with self._f._mu:
            self._f._wait_for_signal_locked()

    def reclaim_failed(self) -> None:
        with self._f._mu:
            self._f._reclaimer_failed = True
            self._f._notify_idle_locked()

    def reclaim_exit(self) -> None:
        with self._f._mu:
            self._f._exit_locked()

    def evict_take(self, user: Hashable) -> EvictableRange | None:
        f = self._f
        with f._mu:
            return f._evictable.take(user, f._destroyed)

    def evict_next(self) -> tuple[Hashable, EvictableRange | None] | None:
        f = self._f
        with f._mu:
            user = f._evictable.first_evicting()
            return None if user is None else (user, f._evictable.take(user, f._destroyed))

    def evict_deliver(self, user: Hashable, er: EvictableRange) -> None:
        self._f._deliver(user, er)

    def evictor_done(self) -> None:
        f = self._f
        with f._mu:
            f._evictors.discard(threading.current_thread())
            f._evictors_running -= 1
            f._notify_idle_locked()

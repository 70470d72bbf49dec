"""``FileState``: what one ``MemoryFile`` knows, under its lock; the record impl's modules share.

As ``spec.state.State`` is the specification's: the client methods
(:mod:`impl.memory_file`), the reclaimer (:mod:`impl.reclaimer`) and the
evictors (:mod:`impl.eviction`) operate on one ``FileState``, and none reaches
into another's private members. Each field's comment states its invariant.

Locking, as in the seed:

* ``mu`` protects every field below it. The reclaimer, the eviction threads
  and ``update_usage`` drop it around kernel work (punching, ``mincore``) and
  around ``user.evict``;
* the chunk table has its own lock, a leaf (see :mod:`impl.chunks`); a
  ``MemoryAccounting``'s lock is a leaf taken under ``mu``.

Every lock and condition comes from the file's :class:`impl.runtime.Runtime`.
Unlocked kernel work that uses raw chunk addresses (``mincore``, manual
zeroing) is counted in ``unlocked_users``; the reclaimer's exit waits for it
to drain before unmapping, so no address is used after ``munmap``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable

from impl.accounting import MemoryAccounting
from impl.books import Books, Usage
from impl.chunks import Chunks
from impl.evictables import Evictables
from impl.gaps import GapSet
from impl.kernel import Kernel, ResidencyVector
from impl.runtime import Runtime
from impl.segments import SegmentSet
from spec.vocabulary import FileRange, Observation, SeedDefects


class FileState:
    """One file's state and its lock (see the module docstring); the helpers need ``mu`` held."""

    __slots__ = (
        "background",
        "books",
        "chunks",
        "decommit_generation",
        "defects",
        "destroyed",
        "evict_when_idle",
        "evictable",
        "evictors",
        "evictors_running",
        "fd",
        "file_size",
        "idle_cond",
        "idle_waiters",
        "kernel",
        "manual_zeroing",
        "mu",
        "mu_acquire",
        "mu_release",
        "reclaim",
        "reclaim_cond",
        "reclaimable",
        "reclaimer_failed",
        "reclaimer_runnable",
        "runtime",
        "spare_vector",
        "unlocked_users",
        "usage",
    )

    def __init__(
        self,
        runtime: Runtime,
        kernel: Kernel,
        fd: int,
        accounting: MemoryAccounting,
        *,
        background: bool,
        manual_zeroing: bool,
        evict_when_idle: bool,
        defects: SeedDefects,
    ) -> None:
        # Fixed at creation.
        self.runtime = runtime
        self.kernel = kernel
        self.fd = fd
        """The backing file, owned: closed (once) with the chunks."""
        self.chunks = Chunks(kernel, fd, runtime.inner_lock())
        self.background = background
        """The reclaimer and evictors are threads (else the caller runs their steps)."""
        self.manual_zeroing = manual_zeroing
        self.evict_when_idle = evict_when_idle
        """DelayedEviction.ENABLED without memcg pressure: the idle reclaimer starts evictions."""
        self.defects = defects
        """The seed's defects restored (D1 to D3; none by default)."""

        self.mu = runtime.lock()
        self.mu_acquire: Callable[[], object] = self.mu.acquire
        self.mu_release: Callable[[], object] = self.mu.release
        """``mu``'s acquire and release, bound once (the hot paths' lock: compiled, a call
        through a bound method skips looking the method up by name)."""
        self.reclaim_cond = runtime.condition(self.mu)
        """Signalled when the reclaimer becomes runnable (work, an evictable mark, destroy)."""
        self.idle_cond = runtime.condition(self.mu)
        """Notified when unlocked kernel work drains, the reclaimer idles or exits,
        or an eviction thread ends."""

        # Under mu (names follow the seed).
        self.usage: SegmentSet[Usage] = SegmentSet()
        """Every allocated page, maximally merged; a page leaves only once reclaimed."""
        self.reclaim = GapSet()
        """Unreferenced pages not yet reclaimed: each lies in ``usage`` as free System memory."""
        self.reclaimable = False
        """Possibly some ``reclaim``; False only when ``reclaim`` is empty."""
        self.evictable = Evictables()
        self.file_size = 0
        """The backing file's size: a multiple of the chunk size; only grows."""
        self.books = Books(accounting)
        self.decommit_generation = 0
        """Counts markDecommitted; update_usage re-asks mincore if it moved meanwhile."""
        self.destroyed = False
        """Set once by destroy; every client method then raises UseAfterDestroy."""
        self.unlocked_users = 0
        """Unlocked kernel work using chunk addresses now; the chunks stay mapped while > 0."""
        self.reclaimer_runnable = True
        """False while the reclaimer waits for a signal (a signal when it is running is lost)."""
        self.reclaimer_failed = False
        """The reclaimer thread died of an exception (a bug, or memory that could not be zeroed)."""
        self.idle_waiters = 0
        """Threads waiting on ``idle_cond`` (notified only when there are some)."""
        self.spare_vector: ResidencyVector | None = None
        """A mincore vector for update_usage to borrow (allocating one per scan is slow)."""
        self.evictors: set[threading.Thread] = set()
        """The eviction threads alive; destroy joins them."""
        self.evictors_running = 0
        """Eviction threads not yet done (wait_for_evictions waits for 0)."""

    def observation_locked(self, label: Callable[[Hashable], str]) -> Observation:
        """The observation spec and ports compare (``observe`` in ``spec.state``)."""
        return Observation(
            file_size=self.file_size,
            usage=tuple(
                (FileRange(s, e), u.kind, u.refs, u.known_committed) for s, e, u in self.usage
            ),
            reclaim=tuple(FileRange(s, e) for s, e in self.reclaim),
            accounting=self.books.accounting_observation(),
            usage_expected=self.books.expected,
            usage_swapped=self.books.swapped,
            evictable=self.evictable.observation(label),
        )

    def signal_reclaimer_locked(self) -> None:
        """``reclaimCond.Signal()``: wakes a waiting reclaimer; lost if it is running."""
        if not self.reclaimer_runnable:
            self.reclaimer_runnable = True
            if self.background:
                self.reclaim_cond.notify()

    def notify_idle_locked(self) -> None:
        if self.idle_waiters:
            self.idle_cond.notify_all()

    def wait_idle_locked(self) -> None:
        self.idle_waiters += 1
        try:
            self.idle_cond.wait()
        finally:
            self.idle_waiters -= 1

    def unlocked_done_locked(self) -> None:
        """One unlocked user of chunk addresses is done."""
        self.unlocked_users -= 1
        if self.unlocked_users == 0:
            self.notify_idle_locked()

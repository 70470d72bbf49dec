"""The one seam between a ``MemoryFile`` and Python's threads: its lock, conditions, threads, steps.

A file asks its :class:`Runtime` for everything concurrent it uses: its lock
(``mu``), the conditions over it, the threads it starts (the reclaimer, one
evictor per user), and the steps those threads take (:meth:`Runtime.step`).
Every point where the seed lets another goroutine run is one of these: a lock
acquisition or release (the seed drops its lock around ``mincore`` in
``update_usage``, around the punch in the reclaimer, around ``Evict``, and
in ``decommit``), a condition wait or signal, a thread start, a step
boundary. A controlled scheduler replaces this one class.

With a tracer (the linearizability checker's recorder, in
``models.linearizability``) the runtime reports, on the thread concerned:

* each background step — the reclaimer's find, punch and mark, an evictor's
  take — with its arguments, result and start and end times (:meth:`step`);
* each eviction thread started, as ``("evictor_start", (user,), None, 0, 0)``,
  before the call (or step) that starts it returns: an effect no return
  value shows (:meth:`event`);

and numbers the acquisitions of the lock (:class:`SequencedLock`), so that
the checker can try first the order in which calls really took effect. That
is only a hint: the checker verifies any order against the specification
and real time. Without a tracer none of this exists and nothing is slower.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

Tracer = Callable[[str, tuple[object, ...], object, int, int], None]
"""Told of each step: (step, arguments, result, start ns, end ns), ``perf_counter_ns``."""

R = TypeVar("R")


class Runtime:
    """Python's threading for one file, optionally traced (see the module docstring)."""

    __slots__ = ("_sequenced", "tracer")

    def __init__(self, tracer: Tracer | None = None) -> None:
        self.tracer = tracer
        self._sequenced = SequencedLock() if tracer is not None else None

    def lock(self) -> threading.Lock:
        """The file's lock (one per runtime: its acquisitions are the ones numbered)."""
        if self._sequenced is None:
            return threading.Lock()
        return cast("threading.Lock", self._sequenced)

    def inner_lock(self) -> threading.Lock:
        """The chunk table's lock (a leaf: nothing is acquired while it is held)."""
        return threading.Lock()

    def condition(self, lock: threading.Lock) -> threading.Condition:
        return threading.Condition(lock)

    def thread(self, name: str, target: Callable[..., None], *args: object) -> threading.Thread:
        """A daemon thread running ``target(*args)``, not started yet."""
        return threading.Thread(target=target, args=args, name=name, daemon=True)

    def step(self, name: str, step: Callable[..., R]) -> Callable[..., R]:
        """``step``, reporting each call to the tracer (``step`` itself without one)."""
        tracer = self.tracer
        if tracer is None:
            return step

        def run(*args: object) -> R:
            start = time.perf_counter_ns()
            result = step(*args)
            tracer(name, args, result, start, time.perf_counter_ns())
            return result

        return run

    def event(self, name: str, args: tuple[object, ...]) -> None:
        """Tell the tracer of an effect of the running call that no result shows."""
        if self.tracer is not None:
            self.tracer(name, args, None, 0, 0)

    def lock_sequence(self) -> int | None:
        """The number of this thread's latest acquisition of the lock (None untraced)."""
        return None if self._sequenced is None else self._sequenced.latest()


class SequencedLock:
    """A lock that numbers its acquisitions; each thread can ask for its latest number.

    Behaves as ``threading.Lock`` for the file and its conditions (which use
    only ``acquire`` and ``release``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._numbers = itertools.count()
        self._latest = threading.local()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._lock.acquire(blocking, timeout):
            self._latest.number = next(self._numbers)
            return True
        return False

    def release(self) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def latest(self) -> int | None:
        """The number of the calling thread's latest acquisition (None if it has none)."""
        number: int | None = getattr(self._latest, "number", None)
        return number

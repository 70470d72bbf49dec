"""The tracer seam: what a ``MemoryFile`` tells a checker about its threads.

A file made with ``tracer=...`` (the linearizability checker's recorder, in
``models.linearizability``) reports, on the thread concerned:

* each step of its background threads — the reclaimer's find, punch and
  mark, an evictor's take — with its arguments, result and start and end
  times (:func:`traced`);
* each eviction thread started, as ``("evictor_start", (user,), None, 0, 0)``,
  before the call (or step) that starts it returns: an effect no return
  value shows;

and numbers the acquisitions of its lock (:class:`SequencedLock`), so that
the checker can try first the order in which calls really took effect. That
is only a hint: the checker verifies any order against the specification
and real time. Without a tracer none of this exists and nothing is slower.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from impl.memory_file import MemoryFile

Tracer = Callable[[str, tuple[object, ...], object, int, int], None]
"""Told of each step: (step, arguments, result, start ns, end ns), ``perf_counter_ns``."""

R = TypeVar("R")


def traced(f: MemoryFile, name: str, step: Callable[..., R]) -> Callable[..., R]:
    """``step``, reporting each call to the file's tracer (``step`` itself, if it has none)."""
    tracer = f._tracer
    if tracer is None:
        return step

    def run(f: MemoryFile, *args: object) -> R:
        start = time.perf_counter_ns()
        result = step(f, *args)
        tracer(name, args, result, start, time.perf_counter_ns())
        return result

    return run


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

"""A concurrent history: each operation with its thread, result and real-time interval.

Operations are recorded by the thread that runs them (:class:`Recorder` is
safe to share: ``list.append`` is atomic), client calls through
:meth:`Recorder.call` and the background threads' steps through
:meth:`Recorder.trace`, which is an ``impl.MemoryFile`` tracer. Times are
``perf_counter_ns``: an operation took effect somewhere in ``[start, end]``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Raised:
    """An operation's outcome when it raised: the exception's type name and errno."""

    error: str
    errno: int | None = None


def raised(error: BaseException) -> Raised:
    return Raised(type(error).__name__, getattr(error, "errno", None))


@dataclass(frozen=True, slots=True)
class Operation:
    """One call (or background step), as the history records it."""

    thread: int
    """The thread that ran it (``threading.get_ident``: one thread's operations never overlap)."""
    name: str
    """A method of the allocator, or a background step (``reclaim_find``, ``evict_take``...)."""
    args: tuple[object, ...]
    result: object
    """What it returned, or :class:`Raised`."""
    start: int
    end: int
    started: tuple[object, ...] = ()
    """The users whose eviction threads it started: an effect no return value shows,
    recorded so that the search learns at once where such a call can go."""
    hint: int | None = None
    """The number of its last acquisition of the file's lock (None if it took none):
    where it most likely took effect. The search tries lower numbers first, no more."""

    def __str__(self) -> str:
        args = ", ".join(map(repr, self.args))
        return f"{self.name}({args}) -> {self.result!r}  [{self.start}, {self.end}]"


class Recorder:
    """Collects the operations of every thread of one run."""

    def __init__(self) -> None:
        self.operations: list[Operation] = []
        self.lock_sequence: Callable[[], int | None] = lambda: None
        """The file's ``lock_sequence`` (set once the file exists), for the hints."""
        self._thread = threading.local()
        """Per thread: eviction threads started by the operation it is running (``started``),
        and the lock acquisition its previous operation was hinted at (``hint``)."""

    def call(self, name: str, method: Callable[..., T], *args: object) -> T:
        """Call ``method(*args)``, recording it as ``name``; re-raises what it raises."""
        start = time.perf_counter_ns()
        try:
            result = method(*args)
        except Exception as error:
            self._add(name, args, raised(error), start)
            raise
        self._add(name, args, result, start)
        return result

    def trace(
        self, name: str, args: tuple[object, ...], result: object, start: int, end: int
    ) -> None:
        """An ``impl.MemoryFile`` tracer: records a background step, or an eviction thread
        started by the operation this thread is running."""
        if name == "evictor_start":
            self._thread.started = (*getattr(self._thread, "started", ()), *args)
            return
        self._append(name, args, result, start, end)

    def _add(self, name: str, args: tuple[object, ...], result: object, start: int) -> None:
        self._append(name, args, result, start, time.perf_counter_ns())

    def _append(
        self, name: str, args: tuple[object, ...], result: object, start: int, end: int
    ) -> None:
        here = self._thread
        started, here.started = getattr(here, "started", ()), ()
        number = self.lock_sequence()
        hint = None if number == getattr(here, "hint", None) else number  # None: took no lock
        here.hint = number
        self.operations.append(
            Operation(threading.get_ident(), name, args, result, start, end, started, hint)
        )

"""The controlled scheduler: real threads, but only the one it picks runs, until its next point.

Every managed thread (a :class:`ControlledThread`) parks on its own event and
runs only when the scheduler hands it the turn. At each *scheduling point*
(a lock acquisition or release, a condition wait, a thread start or join, a
thread's end; and, in ``fine`` mode, every line of ``impl`` a thread runs
holding no lock) the running thread asks the :class:`Strategy` which runnable
thread goes next, records the choice, and hands over. So a run is a
sequence of choices (its *schedule*): replaying the same choices reproduces
the run exactly, since nothing else decides who runs.

A thread blocks (a held lock, a condition, a join) by leaving the runnable
set; the thread that unblocks it puts it back. When no thread is runnable
and not all have ended, that is a deadlock: every blocked thread is reported
with the point it waits at, and every thread is woken with :class:`Aborted`
so the run unwinds instead of hanging.

Cost: a switch is an event handoff between OS threads (tens of µs); a
choice is O(threads). Only one managed thread runs at any moment, so the
scheduler's own fields need no lock.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import impl


class Strategy(Protocol):
    """Picks who runs at each scheduling point."""

    def choose(self, runnable: Sequence[int], current: int | None) -> int:
        """One of ``runnable`` (thread indices, ascending); ``current`` if it may continue."""


class Aborted(BaseException):
    """Raised in every managed thread when a run is abandoned (a deadlock, a hang)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """One scheduling point: who could run, who was running, who was chosen, where."""

    runnable: tuple[int, ...]
    current: int | None
    """The thread that reached the point, if it may go on (None: it blocked or ended)."""
    chosen: int
    point: str
    """Where the thread that reached it stands (``acquire mu``, ``memory_file.py:512``...)."""
    at: int | None = None
    """The thread that reached it (None: the run's start)."""

    @property
    def preemptive(self) -> bool:
        return self.current is not None and self.chosen != self.current


@dataclass(eq=False)
class Managed:
    """A managed thread, as the scheduler sees it."""

    index: int
    name: str
    go: threading.Event = field(default_factory=threading.Event)
    runnable: bool = True
    done: bool = False
    waits_for: object = None
    """What it is blocked on (a lock, a condition, a thread), None when runnable."""
    point: str = "start"
    """The scheduling point it last reached (what a deadlock report shows)."""
    doing: str = ""
    """The call or step it is in, if it said (what a trace shows)."""


Check = Callable[[], list[str]]
"""A property checked at scheduling points where the file's lock is free: what is wrong."""


class FineModeNeedsPure(RuntimeError):
    """Fine mode was asked for while impl runs compiled (it would find no line to preempt at)."""


class Scheduler:
    """Runs managed threads one at a time, as ``strategy`` picks (see the module docstring)."""

    def __init__(self, strategy: Strategy, *, fine: bool = False) -> None:
        if fine and impl.compiled():
            raise FineModeNeedsPure(
                "fine mode preempts at the lines of impl's Python source, which the compiled "
                f"build runs as machine code ({impl.build()}): run it with PGALLOC_PURE=1"
            )
        self.strategy = strategy
        self.fine = fine
        """Also a point at every ``impl`` line a thread runs holding no controlled lock."""
        self.threads: list[Managed] = []
        self.decisions: list[Decision] = []
        self.problems: list[str] = []
        self.aborted = False
        self.quiet = 0
        """> 0 while a check observes the file: controlled operations do not schedule."""
        self.locks: list[ControlledLock] = []
        """Every controlled lock of the run (the file's first)."""
        self.check: Check | None = None
        self.on_point: Callable[[Decision], None] | None = None
        self.finished = threading.Event()
        self.created = 0
        """Threads created so far (their hash: creation order, the same in every replay)."""
        self._local = threading.local()

    # --- Threads ------------------------------------------------------------------------

    def me(self) -> Managed | None:
        """The calling thread, if managed by this scheduler."""
        managed: Managed | None = getattr(self._local, "managed", None)
        return managed

    def doing(self, what: str) -> None:
        """The calling thread enters ``what`` (a call, a step): points are labelled with it."""
        me = self.me()
        if me is not None:
            me.doing = what

    def register(self, name: str) -> Managed:
        managed = Managed(len(self.threads), name)
        self.threads.append(managed)
        return managed

    def enter(self, managed: Managed) -> None:
        """The first thing a managed thread does: wait for its first turn."""
        self._local.managed = managed
        managed.go.wait()
        if self.aborted:
            raise Aborted
        if self.fine:
            sys.settrace(self._trace_call)

    def exit(self, managed: Managed) -> None:
        """A managed thread ends: wake its joiners, hand the turn on (or finish the run)."""
        sys.settrace(None)
        managed.done = True
        managed.runnable = False
        for other in self.threads:
            if other.waits_for is managed:
                other.waits_for, other.runnable = None, True
        if self.aborted:
            return
        if all(t.done for t in self.threads):
            self.finished.set()
            return
        with contextlib.suppress(Aborted):  # it ended while the others wait: reported
            self._switch(managed, "end")

    def begin(self) -> None:
        """Give the first turn (called by the unmanaged thread that started the run)."""
        self._switch(None, "begin")

    # --- Points -------------------------------------------------------------------------

    def point(self, label: str) -> None:
        """A scheduling point reached by the running thread, which may go on."""
        if self.aborted:
            raise Aborted
        me = self.me()
        if self.quiet or me is None:
            return
        self._check()
        self._switch(me, label)

    def block(self, me: Managed, on: object, label: str) -> None:
        """``me`` cannot go on until another thread unblocks it (``wake``)."""
        me.runnable, me.waits_for = False, on
        self._switch(me, label)

    def wake(self, on: object, count: int | None = None) -> list[Managed]:
        """Make runnable the threads blocked on ``on`` (at most ``count``, first blocked first)."""
        woken = [t for t in self.threads if t.waits_for is on][:count]
        for t in woken:
            t.waits_for, t.runnable = None, True
        return woken

    def _check(self) -> None:
        if self.check is None or (self.locks and self.locks[0].owner is not None):
            return
        self.quiet += 1
        try:
            found = self.check()
        except Exception as error:  # the state is torn: changed by a thread without the lock
            found = [f"observing the file while its lock is free raised {error!r}"]
        finally:
            self.quiet -= 1
        if found:
            self.problems.extend(found)
            self.check = None  # report the first violation, not its consequences

    def _switch(self, me: Managed | None, label: str) -> None:
        if me is not None:
            me.point = f"{label} in {me.doing}" if me.doing else label
            label = me.point
        runnable = tuple(t.index for t in self.threads if t.runnable)
        if not runnable:
            self._deadlock()
            raise Aborted
        current = me.index if me is not None and me.runnable else None
        chosen = self.strategy.choose(runnable, current)
        decision = Decision(runnable, current, chosen, label, me.index if me else None)
        self.decisions.append(decision)
        if self.on_point is not None:
            self.on_point(decision)
        if chosen == current:
            return
        if me is not None:
            me.go.clear()
        self.threads[chosen].go.set()
        if me is None or me.done:
            return
        me.go.wait()
        if self.aborted:
            raise Aborted

    def _deadlock(self) -> None:
        blocked = [t for t in self.threads if not t.done]
        self.problems.append(
            "deadlock: no thread can run; "
            + "; ".join(f"{t.name} waits at {t.point!r}" for t in blocked)
        )
        self.abort()

    def abort(self) -> None:
        """Abandon the run: every parked thread wakes with :class:`Aborted`."""
        self.aborted = True
        for t in self.threads:
            t.go.set()
        self.finished.set()

    def failed_thread(self, name: str) -> None:
        """A managed thread ended with an exception (a bug: the reclaimer died, a client raised)."""
        self.problems.append(f"{name} raised:\n{traceback.format_exc()}")

    # --- Fine-grained points: every line of impl run holding no lock -------------------

    def _trace_call(self, frame: FrameType, event: str, arg: object) -> Any:
        if frame.f_code.co_filename in _FINE_FILES:
            return self._trace_line
        return None

    def _trace_line(self, frame: FrameType, event: str, arg: object) -> Any:
        if self.aborted:  # ends a thread looping in impl (on a torn state) once the run is over
            raise Aborted
        if event == "line" and not self.quiet:
            me = self.me()
            if me is not None and not any(lock.owner is me for lock in self.locks):
                name = Path(frame.f_code.co_filename).name
                self.point(f"{name}:{frame.f_lineno} {frame.f_code.co_name}")
        return self._trace_line


_IMPL = Path(impl.__file__).resolve().parent
_FINE_FILES = frozenset(
    str(path)
    for path in _IMPL.glob("*.py")
    if path.name not in {"runtime.py", "kernel.py", "accounting.py", "pressure.py"}
)
"""The files whose lines are points in fine mode: impl's state and logic, not its seams."""


class ControlledThread(threading.Thread):
    """A real thread that runs only when the scheduler says (see the module docstring)."""

    def __init__(
        self, scheduler: Scheduler, name: str, target: Callable[..., None], *args: object
    ) -> None:
        scheduler.created += 1
        self._order = scheduler.created
        super().__init__(name=name, daemon=True)
        self._scheduler = scheduler
        self._target_call = (target, args)
        self.managed: Managed | None = None

    def __hash__(self) -> int:  # by creation order: sets of threads iterate alike in replays
        return self._order

    def __eq__(self, other: object) -> bool:
        return self is other

    def start(self) -> None:
        scheduler = self._scheduler
        if scheduler.aborted:
            raise Aborted
        self.managed = scheduler.register(self.name)
        super().start()
        scheduler.point(f"start {self.name}")

    def run(self) -> None:
        scheduler, managed = self._scheduler, self.managed
        assert managed is not None
        target, args = self._target_call
        try:
            scheduler.enter(managed)
            target(*args)
        except Aborted:
            pass
        except BaseException:
            scheduler.failed_thread(self.name)
        finally:
            scheduler.exit(managed)

    def join(self, timeout: float | None = None) -> None:
        scheduler, managed = self._scheduler, self.managed
        me = scheduler.me()
        if me is not None and managed is not None and not scheduler.quiet:
            scheduler.point(f"join {self.name}")
            while not managed.done:
                scheduler.block(me, managed, f"join {self.name}")
        if not scheduler.aborted or me is None:
            super().join(timeout)


class ControlledLock:
    """``threading.Lock`` for managed threads: acquiring and releasing are scheduling points."""

    def __init__(self, scheduler: Scheduler, name: str, *, points: bool = True) -> None:
        self._scheduler = scheduler
        self.name = name
        self._points = points
        """Whether acquiring and releasing are scheduling points (not for a leaf lock: no
        thread can be stopped holding it, so none can ever wait for it)."""
        self.owner: Managed | None = None
        self.acquired: Callable[[Managed], None] | None = None
        """Told of each acquisition (the run tracks which punches are still unmarked)."""
        scheduler.locks.append(self)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        scheduler = self._scheduler
        me = scheduler.me()
        if scheduler.aborted:
            raise Aborted
        if scheduler.quiet or me is None:
            if self.owner is not None:  # an observer must never find the lock held
                raise RuntimeError(f"{self.name} observed while {self.owner.name} holds it")
            return True
        if self._points:
            scheduler.point(f"acquire {self.name}")
        while self.owner is not None:
            if not blocking:
                return False
            scheduler.block(me, self, f"acquire {self.name} (held by {self.owner.name})")
        self.owner = me
        if self.acquired is not None:
            self.acquired(me)
        return True

    def release(self) -> None:
        scheduler = self._scheduler
        if scheduler.quiet or scheduler.me() is None:
            return
        if scheduler.aborted:
            raise Aborted
        self.owner = None
        scheduler.wake(self)
        if self._points:
            scheduler.point(f"release {self.name}")

    def locked(self) -> bool:
        return self.owner is not None

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class ControlledCondition:
    """``threading.Condition`` over a :class:`ControlledLock` (untimed waits, never spurious)."""

    def __init__(self, scheduler: Scheduler, lock: ControlledLock, name: str) -> None:
        self._scheduler = scheduler
        self._lock = lock
        self.name = name

    def wait(self, timeout: float | None = None) -> bool:
        scheduler, lock = self._scheduler, self._lock
        me = scheduler.me()
        if scheduler.aborted:
            raise Aborted
        if me is None or lock.owner is not me:
            raise RuntimeError(f"wait on {self.name} without holding {lock.name}")
        lock.owner = None
        scheduler.wake(lock)
        scheduler.block(me, self, f"wait {self.name}")
        while lock.locked():
            scheduler.block(me, lock, f"acquire {lock.name} after {self.name}")
        lock.owner = me
        if lock.acquired is not None:
            lock.acquired(me)
        return True

    def notify(self, n: int = 1) -> None:
        if not self._scheduler.quiet:
            self._scheduler.wake(self, n)

    def notify_all(self) -> None:
        if not self._scheduler.quiet:
            self._scheduler.wake(self)

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

"""``ControlledRuntime``: impl's runtime seam, with every lock, condition and thread controlled.

A drop-in :class:`impl.runtime.Runtime` for ``MemoryFile(runtime=...)``: its
locks, conditions and threads are the :mod:`models.schedule.scheduler`'s, so
every point where the seed lets another goroutine run (the lock taken or
dropped around ``mincore``, the punch, ``Evict``, ``decommit``; a wait; a
thread start or join) is a scheduling point. Steps and events still reach
the tracer (the linearizability recorder), as in production.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar, cast

from impl.runtime import Runtime, Tracer
from models.schedule.scheduler import (
    ControlledCondition,
    ControlledLock,
    ControlledThread,
    Managed,
    Scheduler,
)

R = TypeVar("R")

CONDITIONS = ("reclaim_cond", "idle_cond")
"""The file's conditions, in the order it makes them (names for the trace)."""


class ControlledRuntime(Runtime):
    """Python's threading replaced by ``scheduler``'s (see the module docstring)."""

    __slots__ = ("_conditions", "acquired", "scheduler")

    def __init__(self, scheduler: Scheduler, tracer: Tracer | None = None) -> None:
        super().__init__(tracer)
        self.scheduler = scheduler
        self._conditions = 0
        self.acquired: Callable[[Managed], None] | None = None
        """Told of each acquisition of the file's lock by a managed thread."""

    def lock(self) -> threading.Lock:
        lock = ControlledLock(self.scheduler, "mu")
        lock.acquired = self._acquired
        self.scheduler.locks.remove(lock)
        self.scheduler.locks.insert(0, lock)  # the file's lock is the scheduler's first
        return cast("threading.Lock", lock)

    def inner_lock(self) -> threading.Lock:
        # A leaf, with no scheduling point inside: no thread is ever stopped holding it.
        return cast("threading.Lock", ControlledLock(self.scheduler, "chunks", points=False))

    def condition(self, lock: threading.Lock) -> threading.Condition:
        index, self._conditions = self._conditions, self._conditions + 1
        name = CONDITIONS[index] if index < len(CONDITIONS) else f"cond{index}"
        condition = ControlledCondition(self.scheduler, cast("ControlledLock", lock), name)
        return cast("threading.Condition", condition)

    def thread(self, name: str, target: Callable[..., None], *args: object) -> threading.Thread:
        return ControlledThread(self.scheduler, name, target, *args)

    def step(self, name: str, step: Callable[..., R]) -> Callable[..., R]:
        """The step, traced as in production, and named in the scheduler's trace."""
        traced = super().step(name, step)
        doing = self.scheduler.doing

        def run(*args: object) -> R:
            doing(name)
            return traced(*args)

        return run

    def lock_sequence(self) -> int | None:
        return None  # the linearizability search needs no hint for histories this short

    def _acquired(self, managed: Managed) -> None:
        if self.acquired is not None:
            self.acquired(managed)

"""Test doubles shared by the fault tests (and by the child process of the file size limit).

``FailingUser`` is an evictable user whose first ``evict`` raises
(``tests/spec/test_faults.py``, ``tests/impl/test_faults.py``);
``SwallowingKernel`` is a broken kernel that takes a failing ``ftruncate``
for a success (``tests/impl/test_faults.py``, ``tests/impl/fsize_child.py``).
"""

from __future__ import annotations

import contextlib

from impl import Kernel
from spec.vocabulary import EvictableRange


class FailingUser:
    """Evicts by recording what it is given; the first ``evict`` raises RuntimeError.

    Its ``str`` is the same for every instance, so a spec and an impl that
    each have their own label them alike in their observations.
    """

    def __init__(self) -> None:
        self.delivered: list[EvictableRange] = []

    def evict(self, er: EvictableRange) -> None:
        self.delivered.append(er)
        if len(self.delivered) == 1:
            raise RuntimeError("evict failed")

    def __str__(self) -> str:
        return "failing-user"


class SwallowingKernel(Kernel):
    """A broken kernel: takes a failing ``ftruncate`` for a success."""

    def ftruncate(self, fd: int, size: int) -> None:
        with contextlib.suppress(OSError):
            super().ftruncate(fd, size)

"""A child process for tests/impl/test_faults.py: allocation under a real RLIMIT_FSIZE of 1 GiB.

Ignores SIGXFSZ (so ``ftruncate`` past the limit fails with EFBIG instead of
killing the process), makes one allocation that fits in the first chunk and
one that needs a second, runs the specification alongside (told that
``ftruncate`` fails with EFBIG for the growth), and prints JSON: the errno,
the file size, whether the observations agree, and whether a later
allocation that fits still works alike. ``--broken`` uses a kernel that takes
the failing ``ftruncate`` for a success (``tests.impl.helpers.SwallowingKernel``),
to show the parent's check fails.
"""

from __future__ import annotations

import contextlib
import errno
import json
import resource
import signal
import sys

from impl import Kernel, MemoryAccounting, MemoryFile
from spec.memory_file import SpecMemoryFile
from spec.vocabulary import CHUNK_SIZE, NO_FAULTS, PAGE_SIZE, HostFaults, MemoryKind
from tests.impl.helpers import SwallowingKernel


def main(broken: bool) -> dict[str, object]:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (CHUNK_SIZE, CHUNK_SIZE))
    kernel = SwallowingKernel() if broken else Kernel()
    real = MemoryFile(background=False, accounting=MemoryAccounting(), kernel=kernel)
    spec = SpecMemoryFile()
    kind = MemoryKind.ANONYMOUS
    assert real.allocate(PAGE_SIZE, kind) == spec.allocate(PAGE_SIZE, kind)
    code = None
    try:
        real.allocate(CHUNK_SIZE, kind)
    except OSError as error:
        code = error.errno
    spec.faults = HostFaults(truncate=errno.EFBIG)
    with contextlib.suppress(OSError):
        spec.allocate(CHUNK_SIZE, kind)
    spec.faults = NO_FAULTS
    agree = real.observation() == spec.observation()
    later = real.allocate(PAGE_SIZE, kind) == spec.allocate(PAGE_SIZE, kind)
    report: dict[str, object] = {
        "errno": code,
        "size": real.total_size(),
        "agree": agree,
        "later": later,
    }
    real.destroy()
    return report


if __name__ == "__main__":
    print(json.dumps(main("--broken" in sys.argv[1:])))

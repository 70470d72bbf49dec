"""The scheduling seam costs nothing in production: this tree against the tree before it.

``impl.MemoryFile`` takes its lock, conditions and threads from its runtime
(``impl/runtime.py``), and restores the seed's defects on request; a
controlled scheduler (``models/schedule``) plugs in there. Uncontrolled, the
runtime hands out a bare ``threading.Lock`` and the steps themselves, so the
hot paths should run exactly as fast as in the tree before the scheduler
(:data:`BEFORE`, extracted with ``git archive``). Each tree is measured in
its own interpreter, in interleaved rounds (best of each), in the same run:

* an ``allocate`` + ``dec_ref`` + ``reclaim`` round trip (manual reclaim);
* 64 pages decommitted, written again and found by ``update_usage`` (the
  scan checks the defect switches).
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

from bench.harness import Figure, at_most

ROOT = Path(__file__).resolve().parent.parent
BUILDS = ("pure",)
"""The tree before is measured as pure Python: so is this one, to compare like with like."""
BEFORE = "6e4a281"
"""main when the controlled scheduler's work began (issue 13)."""

MEASURE = r"""
import sys, time
from impl import MemoryAccounting, MemoryFile
from spec.vocabulary import PAGE_SIZE, SECOND, WRITE, MemoryKind
count, rounds = int(sys.argv[1]), int(sys.argv[2])
ticks = iter(range(1, 10**9))
f = MemoryFile(background=False, accounting=MemoryAccounting(), clock=lambda: next(ticks) * SECOND)
kind = MemoryKind.ANONYMOUS
def round_trip():
    started = time.perf_counter()
    for _ in range(count):
        fr = f.allocate(PAGE_SIZE, kind)
        f.dec_ref(fr)
        f.reclaim()
    return (time.perf_counter() - started) / count * 1e6
held = [f.allocate(PAGE_SIZE, kind) for _ in range(128)]
views = [f.map_internal(fr, WRITE) for fr in held[::2]]
def scan():
    started = time.perf_counter()
    for _ in range(count // 10):
        for fr in held[::2]:  # forget what the last scan learnt, so this one scans again
            f.decommit(fr)
        for vs in views:  # commit the pages again
            vs[0][:1] = b"x"
        f.update_usage()
    return (time.perf_counter() - started) / (count // 10) * 1e6
for _ in range(rounds):
    print(round_trip(), scan(), flush=True)
"""


def _extract(commit: str, into: Path) -> str | None:
    """``spec`` and ``impl`` as of ``commit`` under ``into``; None, or why it failed."""
    try:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", commit, "spec", "impl"],
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        return f"git archive {commit} failed ({error}); run from a clone with history"
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return None


def _measure(tree: Path, count: int) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(count), "1"],
        cwd=tree,
        # Both trees pure: the tree before has no compiled build to compare with.
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin", "PGALLOC_PURE": "1"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return float(out[0]), float(out[1])


def run(quick: bool) -> list[Figure]:
    rounds, count = (5, 2000) if quick else (15, 4000)
    with tempfile.TemporaryDirectory() as scratch:
        before = Path(scratch)
        failure = _extract(BEFORE, before)
        if failure is not None:
            print(f"bench_seam: {failure}", file=sys.stderr)
            return [Figure("seam: round trip vs before", 0, "us", failure, 0, 0, "<= 1.1x", False)]
        best = {"before": [float("inf")] * 2, "after": [float("inf")] * 2}
        for _ in range(rounds):  # interleaved: a noisy moment hits both trees
            for name, tree in (("before", before), ("after", ROOT)):
                measured = _measure(tree, count)
                best[name] = [min(a, b) for a, b in zip(best[name], measured, strict=True)]
    label = f"same before the scheduler seam ({BEFORE})"
    return [
        at_most(
            "seam: allocate+dec_ref+reclaim, uncontrolled",
            best["after"][0],
            "us",
            label,
            best["before"][0],
            1.1,
        ),
        at_most(
            "seam: 64 x decommit, rewrite, then update_usage",
            best["after"][1],
            "us",
            label,
            best["before"][1],
            1.1,
        ),
    ]

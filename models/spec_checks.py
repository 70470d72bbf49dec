"""The specification's own checks for ``pgalloc check``.

* ``spec-workload`` — seeded random workloads through the specification,
  invariants checked after every step (:mod:`models.workload`);
* ``spec-self-check`` — the declarative ``find_available_range`` against the
  seed's loop transcribed (:mod:`models.seed_loop`) on random 64-bit inputs
  biased to the edges, and ``RangeMap`` against a per-offset model.
"""

from __future__ import annotations

import itertools
import random
import time

from models.check import WHOLE, Check, CheckResult, Progress, Shard
from models.seed_loop import seed_find_available_range
from models.workload import WorkloadFailure, run_workload
from spec.rangemap import RangeMap
from spec.ranges import find_available_range
from spec.vocabulary import (
    CHUNK_SIZE,
    HUGE_PAGE_SIZE,
    INT64_MAX,
    MAX_PAGE,
    PAGE_SIZE,
    FileRange,
)

WORKLOAD_STEPS = 200
MIN_WORKLOADS = 10
MIN_SAMPLES = 20_000


def run_spec_workload(budget: float, progress: Progress, shard: Shard = WHOLE) -> CheckResult:
    """Workloads of seeds 0, 1, 2... (a shard: its own seeds), at least MIN_WORKLOADS in all."""
    started = time.monotonic()
    steps = 0
    for done, seed in enumerate(shard.seeds()):
        if done >= shard.least(MIN_WORKLOADS) and time.monotonic() - started >= budget:
            break
        if done and done % 10 == 0:
            progress(f"spec-workload: {done} workloads, {steps} steps")
        try:
            steps += run_workload(seed, WORKLOAD_STEPS).steps
        except WorkloadFailure as failure:
            return CheckResult(
                "spec-workload", False, steps, "steps", time.monotonic() - started, str(failure)
            )
    return CheckResult("spec-workload", True, steps, "steps", time.monotonic() - started)


def random_search_input(rnd: random.Random) -> tuple[list[FileRange], int, int, int]:
    """An input of findAvailableRange meeting its preconditions, biased to the edges."""
    scale = rnd.choice([PAGE_SIZE, HUGE_PAGE_SIZE, CHUNK_SIZE, 1 << 40, 1 << 60])
    file_size = min(
        INT64_MAX,
        rnd.choice(
            [
                0,
                CHUNK_SIZE,
                rnd.randint(0, 64) * PAGE_SIZE,
                rnd.randint(0, 16) * scale,
                1 << 62,
                (1 << 62) + PAGE_SIZE,
                INT64_MAX,
                INT64_MAX & ~(PAGE_SIZE - 1),
            ]
        ),
    )
    points = sorted(
        rnd.randint(0, file_size // PAGE_SIZE) * PAGE_SIZE for _ in range(2 * rnd.randint(0, 5))
    )
    allocated = [FileRange(a, b) for a, b in zip(points[::2], points[1::2], strict=True) if a < b]
    length = rnd.choice(
        [
            PAGE_SIZE,
            HUGE_PAGE_SIZE,
            3 * HUGE_PAGE_SIZE + PAGE_SIZE,
            rnd.randint(1, 64) * PAGE_SIZE,
            rnd.randint(1, 1 << 40) * PAGE_SIZE,
            rnd.randint(1, MAX_PAGE // PAGE_SIZE) * PAGE_SIZE,
            1 << 62,
            1 << 63,
            MAX_PAGE,
        ]
    )
    alignment = 1 << rnd.choice([0, 3, 12, 12, 21, 21, 30, 40, 62, 63])
    return allocated, file_size, length, alignment


def _rangemap_agrees(rnd: random.Random) -> str | None:
    """Random RangeMap operations against a dict of offsets; a message if they differ."""
    model: dict[int, int] = {}
    rm: RangeMap[int] = RangeMap()
    for _ in range(8):
        a, b = sorted(rnd.sample(range(24), 2))
        fr, value = FileRange(a, b), rnd.randint(0, 2)
        operation = rnd.choice(["assign", "remove", "update"])
        if operation == "assign":
            rm = rm.assign(fr, value)
            model.update(dict.fromkeys(range(a, b), value))
        elif operation == "remove":
            rm = rm.remove(fr)
            for offset in range(a, b):
                model.pop(offset, None)
        else:
            rm = rm.update(fr, lambda v: (v + 1) % 3)
            model.update({o: (model[o] + 1) % 3 for o in range(a, b) if o in model})
        entries = rm.entries
        if any(s >= e for s, e, _ in entries) or any(
            x[1] > y[0] or (x[1] == y[0] and x[2] == y[2]) for x, y in itertools.pairwise(entries)
        ):
            return f"RangeMap not canonical after {operation}: {entries}"
        if {o: v for s, e, v in entries for o in range(s, e)} != model:
            return f"RangeMap differs from the per-offset model after {operation}: {entries}"
    return None


def run_spec_self_check(budget: float, progress: Progress, shard: Shard = WHOLE) -> CheckResult:
    """Samples drawn from ``random.Random(shard.index)``, at least MIN_SAMPLES in all."""
    started = time.monotonic()
    rnd = random.Random(shard.index)
    samples = 0
    while samples < shard.least(MIN_SAMPLES) or time.monotonic() - started < budget:
        allocated, file_size, length, alignment = random_search_input(rnd)
        declared = find_available_range(allocated, file_size, length, alignment)
        looped = seed_find_available_range(allocated, file_size, length, alignment)
        if declared != looped:
            detail = (
                f"(random.Random({shard.index})) find_available_range({allocated}, "
                f"{file_size:#x}, {length:#x}, {alignment:#x}) "
                f"is {declared} but the seed's loop gives {looped}"
            )
            return CheckResult(
                "spec-self-check", False, samples, "samples", time.monotonic() - started, detail
            )
        if problem := _rangemap_agrees(rnd):
            detail = f"(random.Random({shard.index}), sample {samples}) {problem}"
            return CheckResult(
                "spec-self-check", False, samples, "samples", time.monotonic() - started, detail
            )
        samples += 1
        if samples % 20_000 == 0:
            progress(f"spec-self-check: {samples} samples")
    return CheckResult("spec-self-check", True, samples, "samples", time.monotonic() - started)


CHECKS = [
    Check(
        "spec-self-check",
        "find_available_range equals the seed's loop; RangeMap equals a per-offset model",
        run_spec_self_check,
        run_spec_self_check,
    ),
    Check(
        "spec-workload",
        "random workloads through the spec keep every invariant; bad input changes nothing",
        run_spec_workload,
        run_spec_workload,
    ),
]

"""Checks registered only by tests/models/test_check_jobs.py, run in pgalloc check's workers.

``seeds`` fails on purpose in the shard that draws :data:`BAD_SEED` (with 2
shards, the second one), naming the seeds its shard drew and what hypothesis
drew there, so the test can see that shards draw apart. ``crashes`` kills
its worker process. ``large`` fuzzes for an integer of at least
:data:`LARGE` and says at which example it found one (the first, when the
example database replays it).
"""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from models.check import WHOLE, Check, CheckResult, Progress, Shard
from models.profiles import fuzzing_settings

BAD_SEED = 5
LARGE = 1000


def _hypothesis_draw() -> str:
    """The 10 integers hypothesis draws, in order (one value alone is often a boundary,
    such as 2**62 - 1, which two fresh streams may both hit)."""
    drawn: list[int] = []

    @settings(fuzzing_settings(max_examples=10))
    @given(st.integers(0, 2**62))
    def draw(value: int) -> None:
        drawn.append(value)

    draw()
    return ",".join(map(str, drawn))


def run_seeds(budget: float, progress: Progress, shard: Shard = WHOLE) -> CheckResult:
    seeds = [seed for seed, _ in zip(shard.seeds(), range(4), strict=False)]
    progress(f"seeds: drew {seeds}; hypothesis drew {_hypothesis_draw()}")
    detail = f"seeds {seeds} (reproduce with {BAD_SEED})"
    return CheckResult("seeds", BAD_SEED not in seeds, len(seeds), "seeds", 0.0, detail)


def run_crashes(budget: float, progress: Progress) -> CheckResult:
    os._exit(3)


def run_large(budget: float, progress: Progress) -> CheckResult:
    examples: list[int] = []

    @settings(fuzzing_settings(max_examples=1000))
    @given(st.integers(0, 2**20))
    def small(value: int) -> None:
        examples.append(value)
        assert value < LARGE

    try:
        small()
    except AssertionError:
        first = next(i for i, value in enumerate(examples, 1) if value >= LARGE)
        return CheckResult("large", False, len(examples), "examples", 0.0, f"example {first}")
    return CheckResult("large", True, len(examples), "examples", 0.0)


CHECKS = [
    Check("seeds", "fails in the shard that draws seed 5", run_seeds, run_seeds),
    Check("crashes", "its process dies", run_crashes),
    Check("large", "fails on an integer of at least LARGE", run_large),
]

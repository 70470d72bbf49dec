"""The benchmark harness: measure, compare with a baseline from the same run, print a table.

Benchmarks never assert speed. Each figure is quoted as a ratio against a
baseline measured in the same process moments before (a raw memset, a raw
punch-hole, a raw mincore...), so that machine noise cancels as far as it can,
and against the target the issues set.

A benchmark module ``bench/bench_*.py`` exposes ``run(quick: bool) -> list[Figure]``;
``python -m bench`` runs them all, under each build of impl, and prints one table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure and how it compares."""

    name: str
    value: float
    unit: str
    baseline_name: str
    baseline_value: float
    ratio: float
    """How the figure compares with the baseline, in the sense the target states."""
    target: str
    """The target, e.g. 'ratio <= 1.5' or 'ratio >= 0.95'."""
    met: bool


def best_of(repeats: int, measure: Callable[[], float]) -> float:
    """The smallest of ``repeats`` measurements (the least disturbed by noise)."""
    return min(measure() for _ in range(repeats))


def per_op(operation: Callable[[], object], count: int) -> float:
    """Seconds per call of ``operation``, over ``count`` calls."""
    started = time.perf_counter()
    for _ in range(count):
        operation()
    return (time.perf_counter() - started) / count


def at_most(
    name: str, value: float, unit: str, baseline_name: str, baseline: float, limit: float
) -> Figure:
    """A figure that should cost at most ``limit`` times its baseline."""
    ratio = value / baseline
    return Figure(
        name, value, unit, baseline_name, baseline, ratio, f"<= {limit:g}x", ratio <= limit
    )


def at_least(
    name: str, value: float, unit: str, baseline_name: str, baseline: float, limit: float
) -> Figure:
    """A figure (a rate) that should reach at least ``limit`` times its baseline."""
    ratio = value / baseline
    return Figure(
        name, value, unit, baseline_name, baseline, ratio, f">= {limit:g}x", ratio >= limit
    )


def table(rows: list[tuple[str, Figure]]) -> str:
    """The figures as a text table, each with the build of impl it was measured on."""
    cells = [("figure", "impl", "value", "baseline", "ratio", "target", "")]
    for build, f in rows:
        cells.append(
            (
                f.name,
                "-" if build == "any" else build,
                f"{f.value:.4g} {f.unit}",
                f"{f.baseline_name} = {f.baseline_value:.4g} {f.unit}",
                f"{f.ratio:.2f}x",
                f.target,
                "met" if f.met else "MISSED",
            )
        )
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)

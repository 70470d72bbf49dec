"""``pgalloc conform --jobs``: seeded workers that draw apart, stopped by the first divergence."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from models.conformance.checks import driver_command
from models.conformance.conform import ConformResult, run_conform
from models.conformance.process import InProcessDriver
from models.conformance.spec_port import SpecPort


def _after(batches: int) -> Callable[[], bool]:
    """A stop condition true from the (batches + 1)-th look on: that many batches run."""
    looks = iter(range(batches + 1))
    return lambda: next(looks, None) is None


def _one_batch(seed: int) -> ConformResult:
    result = run_conform(InProcessDriver(SpecPort()), 60.0, lambda line: None, seed=seed,
                         stop=_after(1))  # fmt: skip
    assert result.divergence is None and result.examples > 0
    return result


def test_a_seed_draws_the_same_sequences_and_another_seed_others() -> None:
    first, again, other = _one_batch(7), _one_batch(7), _one_batch(8)
    assert (first.steps, first.sent) == (again.steps, again.sent)
    assert (first.steps, first.sent) != (other.steps, other.sent)


def test_stop_ends_generation_before_the_budget() -> None:
    started = time.monotonic()
    result = run_conform(InProcessDriver(SpecPort()), 60.0, lambda line: None, stop=lambda: True)
    assert result.examples == 0 and time.monotonic() - started < 30


def test_conform_jobs_stops_all_at_a_mutants_first_divergence_and_shrinks_it(
    tmp_path: Path,
) -> None:
    saved = tmp_path / "divergence.json"
    budget = 240
    started = time.monotonic()
    finished = subprocess.run(
        [sys.executable, "-m", "models.cli", "conform", "--jobs", "2", "--budget", str(budget),
         "--driver", " ".join(driver_command("spec", "huge-4k")), "--save", str(saved)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert finished.returncode == 1, finished.stderr
    assert "conform: 2 driver(s), seed " in finished.stderr
    assert "[driver 1/2] conform:" in finished.stderr or "[driver 2/2] conform:" in finished.stderr
    # Stopped at the divergence (found in seconds), not at the end of the budget.
    assert elapsed < budget / 2, finished.stderr
    printed = json.loads(finished.stdout)
    assert printed == json.loads(saved.read_text())
    requests = [step["request"] for step in printed["steps"]]  # shrunk as by one driver:
    assert requests[-1]["op"] == "allocate" and int(requests[-1]["length"]) >= 2 << 20
    assert len([r for r in requests if r["op"] != "state"]) <= 4, requests
    assert "replaying the trace alone did not fail again" not in finished.stderr

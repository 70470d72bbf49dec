"""``python -m bench`` refuses a run that would measure nothing."""

from __future__ import annotations

import subprocess
import sys

from tests.source_copy import ROOT


def test_a_run_that_measures_nothing_fails_with_its_reason() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "nosuch"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout.strip() == (
        "python -m bench: no benchmark measured (no bench_NAME for --only nosuch)"
    )

"""``pgalloc check --jobs``: shards draw apart, and any shard's failure fails the run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from models import check, check_run
from models.check import Shard
from models.profiles import EXAMPLES_VARIABLE
from tests.models.test_cli import ROOT

TEST_CHECKS = "tests.models.sharded_checks"


def test_shards_take_disjoint_seeds_and_share_a_minimum() -> None:
    shards = [Shard(index, 3) for index in range(3)]
    drawn = [{s for s, _ in zip(shard.seeds(), range(100), strict=False)} for shard in shards]
    assert set.union(*drawn) == set(range(300)) and sum(map(len, drawn)) == 300
    assert [shard.least(10) for shard in shards] == [4, 3, 3]
    assert check.WHOLE.least(10) == 10


def test_the_randomized_checks_are_sharded() -> None:
    sharded = {entry.name for entry in check.REGISTRY if check.find(entry.name).shard}
    assert {"spec-self-check", "spec-workload", "stateful", "linearizability"} <= sharded


def _register(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    entries = tuple(check.Entry(name, TEST_CHECKS, 1.0) for name in names)
    monkeypatch.setattr(check, "REGISTRY", check.REGISTRY + entries)


def test_a_broken_shard_fails_the_run_with_its_detail(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _register(monkeypatch, "seeds")
    assert check_run.run_checks(1.0, ["seeds"], jobs=2) == 1
    captured = capsys.readouterr()
    assert re.search(r"seeds +FAILED +8 seeds", captured.out)  # one row, both shards counted
    assert "shard 2/2:\nseeds [1, 3, 5, 7] (reproduce with 5)" in captured.out
    assert "shard 1/2" not in captured.out  # the passing shard is not blamed
    # Progress lines name their check and shard.
    assert "[seeds shard 1/2] seeds: drew [0, 2, 4, 6];" in captured.err
    assert "[seeds shard 2/2] seeds: drew [1, 3, 5, 7];" in captured.err


def test_the_teeth_are_the_shards() -> None:
    """The failure above is shard 2/2's own: shard 1/2 of the same check passes."""
    result = check_run.run_shard(lambda line: None, "seeds", TEST_CHECKS, 1.0, Shard(0, 2))
    assert result.passed and result.count == 4


def test_shards_draw_apart_under_hypothesis(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each shard's worker is a fresh process: its hypothesis draws differ from the others'."""
    _register(monkeypatch, "seeds")
    assert check_run.run_checks(1.0, ["seeds"], jobs=3) == 1  # shard 3/3 draws seed 5
    err = capsys.readouterr().err
    assert "[seeds shard 3/3] seeds: drew [2, 5, 8, 11]" in err
    drawn = re.findall(r"\[seeds shard (\d)/3\] .*hypothesis drew ([\d,]+)", err)
    assert sorted(shard for shard, _ in drawn) == ["1", "2", "3"]
    assert len({value for _, value in drawn}) == 3


def test_a_dead_worker_is_a_failed_check(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _register(monkeypatch, "crashes", "seeds")
    assert check_run.run_checks(1.0, ["crashes"], jobs=2) == 1
    out = capsys.readouterr().out
    assert re.search(r"crashes +FAILED", out) and "its process failed" in out


def test_machines_of_a_campaign_take_disjoint_shards(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _register(monkeypatch, "seeds")
    assert check_run.run_checks(1.0, ["seeds"], jobs=1, part=(0, 2)) == 0
    assert check_run.run_checks(1.0, ["seeds"], jobs=1, part=(1, 2)) == 1  # draws seed 5
    assert check_run.run_checks(1.0, ["seeds"], jobs=2, part=(1, 2)) == 0
    err = capsys.readouterr().err
    assert "[seeds shard 3/4] seeds: drew [2, 6, 10, 14];" in err
    assert "[seeds shard 4/4] seeds: drew [3, 7, 11, 15];" in err


def test_the_example_database_replays_a_failure_first(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def first_failure() -> str:
        result = check_run.run_shard(lambda line: None, "large", TEST_CHECKS, 1.0, check.WHOLE)
        assert not result.passed
        return result.detail

    monkeypatch.delenv(EXAMPLES_VARIABLE, raising=False)
    assert first_failure() != "example 1"  # hypothesis's first example is 0
    monkeypatch.setenv(EXAMPLES_VARIABLE, str(tmp_path / "examples"))
    assert first_failure() != "example 1"
    assert any((tmp_path / "examples").rglob("*"))  # saved, for every later run
    assert first_failure() == "example 1"


def test_check_jobs_from_the_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "models.cli", "check", "--jobs", "2", "--budget", "2",
         "--only", "spec-workload", "--only", "spec-self-check"],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 jobs" in done.stderr and "2 of 2 checks passed" in done.stdout
    assert re.search(r"spec-workload +passed +2,000 steps", done.stdout)  # MIN_WORKLOADS in all

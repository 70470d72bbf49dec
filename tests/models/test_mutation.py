"""The mutation command: replay alone kills every non-equivalent mutant of the spec, and
the command fails when the corpus lacks a killing vector."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from models.conformance.generate import DEFAULT_DIRECTORY
from models.conformance.mutation import CHEAP, run_mutation
from models.conformance.replay import load_vectors
from models.conformance.spec_mutants import (
    CATALOGUE,
    MutantDoesNotApply,
    applied,
    mutated_function,
)
from spec import ranges
from spec.vocabulary import PAGE_SIZE

BY_NAME = {mutant.name: mutant for mutant in CATALOGUE}


def test_catalogue_names_a_rule_for_each_mutant_and_argues_each_equivalent_one() -> None:
    assert len(CATALOGUE) >= 30
    assert len(BY_NAME) == len(CATALOGUE)
    for mutant in CATALOGUE:
        assert mutant.rule and mutant.old != mutant.new
        mutated_function(mutant)  # raises if the edit no longer applies
    equivalent = [m for m in CATALOGUE if m.equivalent]
    assert all(len(m.equivalent) > 40 for m in equivalent)
    assert len(equivalent) <= 3


def test_replay_alone_kills_every_non_equivalent_mutant_with_and_without_cheap_features() -> None:
    lines: list[str] = []
    report = run_mutation(load_vectors(DEFAULT_DIRECTORY), report=lines.append)
    assert report.vectors > 500
    assert report.passed, "\n".join(lines)
    killed, total = report.score("cheap")
    assert killed == total == len(CATALOGUE) - sum(1 for m in CATALOGUE if m.equivalent)
    assert report.score("all") == (killed, total)
    results = {r.mutant.name: r for r in report.results}
    for name in ("no-skip-1s", "enospc", "skip-1s-inclusive", "skip-10ms-inclusive"):
        assert results[name].killed("cheap"), name


def test_a_killing_vector_of_a_cheap_driver_needs_no_expensive_feature() -> None:
    report = run_mutation(
        load_vectors(DEFAULT_DIRECTORY), [BY_NAME["enospc"]], report=lambda line: None
    )
    (result,) = report.results
    killer = result.killers["cheap"]
    assert killer is not None
    (vector,) = [v for v in load_vectors(DEFAULT_DIRECTORY) if v.name == killer]
    assert set(vector.features) <= CHEAP


def test_the_command_fails_when_the_corpus_lacks_the_killing_vector(tmp_path: Path) -> None:
    corpus = tmp_path / "vectors"
    shutil.copytree(DEFAULT_DIRECTORY, corpus)

    def mutation() -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "models.cli", "vectors", "mutation", "no-skip-1s"]
        return subprocess.run(
            [*command, "--vectors", str(corpus)],
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
        )

    passed = mutation()
    assert passed.returncode == 0, passed.stdout
    assert "cheap: usage/rescan-boundaries" in passed.stdout
    (corpus / "usage" / "rescan-boundaries.json").unlink()
    failed = mutation()
    assert failed.returncode == 1, failed.stdout
    assert "FAILED: no-skip-1s" in failed.stdout and "SURVIVED (all, cheap)" in failed.stdout


def test_an_empty_corpus_fails(tmp_path: Path) -> None:
    report = run_mutation([], [BY_NAME["enospc"]], report=lambda line: None)
    assert not report.passed


def test_an_equivalent_mutant_that_gets_killed_fails_the_run() -> None:
    wrongly_argued = replace(BY_NAME["enospc"], equivalent="claimed, but not so")
    report = run_mutation(
        load_vectors(DEFAULT_DIRECTORY), [wrongly_argued], report=lambda line: None
    )
    assert not report.passed
    assert report.results[0].verdict == "EQUIVALENT BUT KILLED"


def test_a_mutant_is_in_place_only_inside_its_with() -> None:
    huge = 2 << 20
    with applied(BY_NAME["no-huge-alignment"]):
        assert ranges.allocation_alignment(huge) == PAGE_SIZE
    assert ranges.allocation_alignment(huge) == huge
    with applied(BY_NAME["no-align-down"]):
        assert ranges.align_down(PAGE_SIZE + 1, PAGE_SIZE) == PAGE_SIZE + 1
    assert ranges.align_down(PAGE_SIZE + 1, PAGE_SIZE) == PAGE_SIZE


def test_a_mutant_whose_text_is_gone_is_refused() -> None:
    stale = replace(BY_NAME["enospc"], old="raise enospc_never_written(")
    with pytest.raises(MutantDoesNotApply, match="occurs 0 times"):
        mutated_function(stale)

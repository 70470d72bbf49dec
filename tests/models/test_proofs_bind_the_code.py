"""The proofs are about the code that runs: breaking ``spec/ranges.py`` breaks them.

Each case copies the source tree, edits ``spec/ranges.py`` in the copy (the
text, not a function object), and runs ``pgalloc check --only proofs`` there
in a subprocess whose ``PYTHONPATH`` puts the copy first: the check must fail,
refuting the lemma that concerns the edit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

MUTATIONS = {
    "alignment mask": (
        "    return value & ~(alignment - 1)\n\n\ndef align_up",
        "    return value\n\n\ndef align_up",
        "gap-step-agrees: refuted",
    ),
    "fit comparison": (
        "if start >= gap.start else None",
        "if start > gap.start else None",
        "gap-step-agrees: refuted",
    ),
    "growth guard": (
        "if size > INT64_MAX:",
        "if size > 2 * INT64_MAX:",
        "growth-doubling-agrees: refuted",
    ),
    "huge-page threshold": (
        "if length >= HUGE_PAGE_SIZE else",
        "if length > HUGE_PAGE_SIZE else",
        "alignment-rule-agrees: refuted",
    ),
}


def _mutated_copy(tmp_path: Path, old: str, new: str) -> Path:
    copy = tmp_path / "src"
    for package in ("spec", "models"):
        shutil.copytree(
            ROOT / package,
            copy / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.so", "_compiled.json"),
        )
    source = copy / "spec" / "ranges.py"
    text = source.read_text()
    assert text.count(old) == 1, f"the mutation no longer applies: {old!r}"
    source.write_text(text.replace(old, new))
    return copy


def _run(copy: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(copy)}
    return subprocess.Popen(
        [sys.executable, *args], cwd=copy, env=env, stdout=subprocess.PIPE, text=True
    )


def test_each_mutation_of_the_range_search_fails_the_proofs(tmp_path: Path) -> None:
    copies = {
        name: _mutated_copy(tmp_path / name.replace(" ", "-"), old, new)
        for name, (old, new, _) in MUTATIONS.items()
    }
    where = _run(copies["fit comparison"], "-c", "import spec.ranges; print(spec.ranges.__file__)")
    out, _ = where.communicate(timeout=60)
    assert out.strip() == str(copies["fit comparison"] / "spec" / "ranges.py")
    names = list(MUTATIONS)
    for pair in (names[:2], names[2:]):  # two at a time: the machine has two cores
        runs = {
            name: _run(copies[name], "-m", "models.cli", "check", "--only", "proofs")
            for name in pair
        }
        for name, run in runs.items():
            out, _ = run.communicate(timeout=900)
            assert run.returncode == 1, f"{name}: the proofs passed on a broken spec\n{out}"
            assert MUTATIONS[name][2] in out, f"{name}:\n{out}"

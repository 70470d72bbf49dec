"""How much of the specification the corpus exercises: line and branch coverage of ``spec/``.

The corpus is replayed through the checked specification port (the one the
generator records with: invariants checked after every step) under
``coverage`` with branch measurement, in a fresh interpreter so that the
specification's module-level lines count too. ``pgalloc vectors coverage``
prints the totals and every line and branch left unexercised.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class FileCoverage:
    path: str
    statements: int
    missing_lines: tuple[int, ...]
    branches: int
    missing_branches: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class CoverageResult:
    files: tuple[FileCoverage, ...]
    vectors: int

    @property
    def statements(self) -> int:
        return sum(f.statements for f in self.files)

    @property
    def lines_covered(self) -> int:
        return self.statements - sum(len(f.missing_lines) for f in self.files)

    @property
    def branches(self) -> int:
        return sum(f.branches for f in self.files)

    @property
    def branches_covered(self) -> int:
        return self.branches - sum(len(f.missing_branches) for f in self.files)

    def report(self) -> str:
        def percent(part: int, whole: int) -> str:
            return f"{100 * part / whole:.1f}%" if whole else "n/a"

        lines = [
            f"spec/ coverage replaying {self.vectors} vectors: "
            f"lines {self.lines_covered}/{self.statements} "
            f"({percent(self.lines_covered, self.statements)}), "
            f"branches {self.branches_covered}/{self.branches} "
            f"({percent(self.branches_covered, self.branches)})"
        ]
        for f in self.files:
            if f.missing_lines or f.missing_branches:
                missing = ", ".join(str(n) for n in f.missing_lines) or "-"
                arcs = ", ".join(f"{a}->{b}" for a, b in f.missing_branches) or "-"
                lines.append(f"  {f.path}: lines not run: {missing}; branches not taken: {arcs}")
        return "\n".join(lines)


def measure(location: Path) -> CoverageResult:
    """Replay the vectors at ``location`` under coverage in a fresh interpreter.

    The vectors are loaded here first, so that a bad location is a
    :class:`~models.conformance.replay.VectorError`, not the child's traceback.
    """
    from models.conformance.replay import load_vectors

    load_vectors(location)
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "coverage.json"
        subprocess.run(
            [sys.executable, "-m", "models.conformance.coverage_run", str(location), str(out)],
            check=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        report: dict[str, Any] = json.loads(out.read_text())
    files = tuple(
        FileCoverage(
            path=path,
            statements=data["summary"]["num_statements"],
            missing_lines=tuple(data["missing_lines"]),
            branches=data["summary"]["num_branches"],
            missing_branches=tuple(tuple(arc) for arc in data["missing_branches"]),
        )
        for path, data in sorted(report["files"].items())
    )
    return CoverageResult(files, report["vectors"])


def _main(location: str, out: str) -> None:
    """In the fresh interpreter: start coverage before anything imports ``spec``."""
    import coverage

    measurement = coverage.Coverage(branch=True, source=["spec"], data_file=None)
    measurement.start()
    from models.conformance.process import InProcessDriver
    from models.conformance.replay import Outcome, load_vectors, replay
    from models.conformance.spec_port import SpecPort

    vectors = load_vectors(Path(location))
    with InProcessDriver(SpecPort(checked=True)) as driver:
        failed = [r.line() for r in replay(vectors, driver) if r.outcome is not Outcome.PASSED]
    measurement.stop()
    if failed:
        raise SystemExit("the specification fails its own vectors:\n" + "\n".join(failed))
    measurement.json_report(outfile=out, pretty_print=False)
    report = json.loads(Path(out).read_text())
    report["vectors"] = len(vectors)
    Path(out).write_text(json.dumps(report))


if __name__ == "__main__":
    _main(*sys.argv[1:3])

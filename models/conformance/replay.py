"""``pgalloc vectors replay``: run vectors through a driver and report each one.

Each vector is replayed in the driver's session: its steps are sent in
order and each response compared with the expected one
(:mod:`models.conformance.compare`). A vector passes, fails at its first
differing step, is skipped (it needs a feature the driver lacks), or is
unsupported (the driver answered ``not-supported``). A driver failure
(crash, hang, garbage) fails the vector at that step with the driver's
report — unless the step expected a contract error, where aborting is
allowed — and the next vector gets a fresh driver process.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from models.conformance.compare import Verdict, compare
from models.conformance.process import Driver, DriverFailure
from models.conformance.vector import Vector


class Outcome(enum.Enum):
    PASSED = "pass"
    FAILED = "FAIL"
    SKIPPED = "skip"
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True, slots=True)
class VectorResult:
    name: str
    outcome: Outcome
    detail: str = ""
    """Why it failed (the first differing step), or why it was skipped."""
    step: int | None = None
    """The index of the step that decided the outcome, if one did."""
    actual: dict[str, object] | None = None
    """A failure's response from the driver, if it gave one (for the picture)."""
    after: dict[str, object] | None = None
    """The driver's ``state`` after a failing step the vector observes next (for the picture)."""

    def line(self) -> str:
        where = f" at step {self.step}" if self.step is not None else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.outcome.value:<11} {self.name}{where}{detail}"


def vector_paths(location: Path) -> list[Path]:
    """The vector files at ``location``: the file itself, or every .json under the folder."""
    if location.is_file():
        return [location]
    return sorted(p for p in location.rglob("*.json") if p.name != "manifest.json")


def load_vectors(location: Path) -> list[Vector]:
    """The vectors at ``location``, each validated against the schema.

    Files whose digest matches the manifest beside them (a committed,
    generated corpus) skip validation: generation validates them, and the
    regeneration test keeps the corpus what the generator makes.
    """
    digests: dict[str, str] = {}
    manifest = location / "manifest.json"
    if location.is_dir() and manifest.exists():
        entries = json.loads(manifest.read_text()).get("vectors", [])
        digests = {entry["path"]: entry["sha256"] for entry in entries}
    vectors = []
    for path in vector_paths(location):
        text = path.read_text()
        relative = path.relative_to(location).as_posix() if location.is_dir() else ""
        trusted = digests.get(relative) == hashlib.sha256(text.encode()).hexdigest()
        vectors.append(Vector.from_json(json.loads(text), trusted=trusted))
    return vectors


def replay_vector(vector: Vector, driver: Driver) -> VectorResult:
    """Replay one vector through ``driver`` (see the module docstring)."""
    missing = sorted(set(vector.features) - driver.features)
    if missing:
        return VectorResult(vector.name, Outcome.SKIPPED, f"needs {', '.join(missing)}")
    for index, step in enumerate(vector.steps):
        expected = step.response
        try:
            actual = driver.request(step.request)
        except DriverFailure as failure:
            if failure.kind == "crashed" and _expects_contract(expected):
                return VectorResult(vector.name, Outcome.PASSED, "aborted (allowed)", index)
            return VectorResult(
                vector.name, Outcome.FAILED, f"{_show(step.request)}: {failure}", index
            )
        comparison = compare(step.request, expected, actual)
        if comparison.verdict is Verdict.ABORTED:
            return VectorResult(vector.name, Outcome.PASSED, "aborted (allowed)", index)
        if comparison.verdict is Verdict.UNSUPPORTED:
            return VectorResult(vector.name, Outcome.UNSUPPORTED, comparison.detail, index)
        if comparison.verdict is Verdict.MISMATCH:
            return VectorResult(
                vector.name,
                Outcome.FAILED,
                f"{_show(step.request)}: {comparison.detail}",
                index,
                actual,
                _state_after(vector, index, driver),
            )
    return VectorResult(vector.name, Outcome.PASSED)


def _state_after(vector: Vector, index: int, driver: Driver) -> dict[str, object] | None:
    """The port's state after the failing step ``index``, if the vector's next step asks it."""
    following = [step.request.get("op") for step in vector.steps[index : index + 2]]
    if following[-1:] != ["state"] or following[0] == "state":
        return None
    try:
        return dict(driver.request({"op": "state"}))
    except DriverFailure:
        return None


def _expects_contract(response: dict[str, object]) -> bool:
    return response.get("ok") is False and response.get("error") == "contract"


def _show(request: dict[str, object]) -> str:
    text = json.dumps(request)
    return text if len(text) <= 200 else text[:197] + "..."


def replay(vectors: Iterable[Vector], driver: Driver) -> Iterator[VectorResult]:
    for vector in vectors:
        yield replay_vector(vector, driver)


@dataclass(frozen=True, slots=True)
class Summary:
    counts: dict[Outcome, int]

    @property
    def failed(self) -> int:
        return self.counts.get(Outcome.FAILED, 0)

    def line(self) -> str:
        return ", ".join(f"{self.counts.get(o, 0)} {o.name.lower()}" for o in Outcome)


def run_replay(
    vectors: Iterable[Vector],
    driver: Driver,
    report: Callable[[str], None] = print,
    *,
    quiet: bool = False,
    on_failure: Callable[[Vector, VectorResult], str] | None = None,
) -> Summary:
    """Replay ``vectors``, reporting one line per vector (only failures if ``quiet``).

    ``on_failure`` is called with each failed vector; what it returns is reported too.
    """
    counts: dict[Outcome, int] = {}
    for vector in vectors:
        result = replay_vector(vector, driver)
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
        if not quiet or result.outcome is Outcome.FAILED:
            report(result.line())
        if on_failure is not None and result.outcome is Outcome.FAILED:
            report(f"  {on_failure(vector, result)}")
    summary = Summary(counts)
    report(f"{driver.name}: {summary.line()}")
    return summary

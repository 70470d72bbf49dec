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
from models.conformance.schema import SchemaError
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

    def line(self) -> str:
        where = f" at step {self.step}" if self.step is not None else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.outcome.value:<11} {self.name}{where}{detail}"


class VectorError(ValueError):
    """No vectors where vectors were asked for, or a file that is not a valid vector.

    The message is one line naming the path (and, for a schema violation, the
    step and field), so a command can print it and exit non-zero.
    """


def vector_paths(location: Path) -> list[Path]:
    """The vector files at ``location``: the file itself, or every .json under the folder."""
    if location.is_file():
        return [location]
    return sorted(p for p in location.rglob("*.json") if p.name != "manifest.json")


def _manifest_digests(location: Path) -> dict[str, str]:
    """path -> sha256 from the manifest beside a generated corpus (empty if there is none)."""
    manifest = location / "manifest.json"
    if not (location.is_dir() and manifest.exists()):
        return {}
    try:
        entries = json.loads(manifest.read_text()).get("vectors", [])
        return {str(entry["path"]): str(entry["sha256"]) for entry in entries}
    except (OSError, ValueError, AttributeError, KeyError, TypeError) as error:
        raise VectorError(f"{manifest}: not a vector manifest ({error!r})") from None


def load_vector_file(path: Path, *, trusted_digest: str | None = None) -> Vector:
    """The vector in ``path``, validated unless its text has ``trusted_digest`` (VectorError)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise VectorError(f"{path}: cannot read it: {error}") from None
    try:
        document = json.loads(text)
    except ValueError as error:
        raise VectorError(f"{path}: not JSON: {error}") from None
    trusted = trusted_digest == hashlib.sha256(text.encode()).hexdigest()
    try:
        return Vector.from_json(document, trusted=trusted)
    except SchemaError as error:
        raise VectorError(f"{path}: {error}") from None


def load_vectors(location: Path) -> list[Vector]:
    """The vectors at ``location``, each validated against the schema.

    Raises :class:`VectorError` if ``location`` does not exist, holds no
    vector file, or holds a file that is not a valid vector: a run that
    would check nothing is an error, never an empty success.

    Files whose digest matches the manifest beside them (a committed,
    generated corpus) skip validation: generation validates them, and the
    regeneration test keeps the corpus what the generator makes.
    """
    if not location.exists():
        raise VectorError(f"{location}: no such file or folder")
    paths = vector_paths(location)
    if not paths:
        raise VectorError(f"{location}: no vector files in it (*.json besides manifest.json)")
    digests = _manifest_digests(location)
    return [
        load_vector_file(
            path,
            trusted_digest=digests.get(path.relative_to(location).as_posix())
            if location.is_dir()
            else None,
        )
        for path in paths
    ]


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
            )
    return VectorResult(vector.name, Outcome.PASSED)


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

    @property
    def checked(self) -> int:
        """Vectors that decided something: passed or failed (not skipped, not unsupported)."""
        return self.counts.get(Outcome.PASSED, 0) + self.failed

    def line(self) -> str:
        return ", ".join(f"{self.counts.get(o, 0)} {o.name.lower()}" for o in Outcome)


def run_replay(
    vectors: Iterable[Vector],
    driver: Driver,
    report: Callable[[str], None] = print,
    *,
    quiet: bool = False,
) -> Summary:
    """Replay ``vectors``, reporting one line per vector (only failures if ``quiet``)."""
    counts: dict[Outcome, int] = {}
    for result in replay(vectors, driver):
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
        if not quiet or result.outcome is Outcome.FAILED:
            report(result.line())
    summary = Summary(counts)
    report(f"{driver.name}: {summary.line()}")
    return summary

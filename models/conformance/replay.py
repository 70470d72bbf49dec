"""``pgalloc vectors replay``: run vectors through a driver and report each one.

Each vector is replayed in the driver's session: its steps are sent in
order and each response compared with the expected one
(:mod:`models.conformance.compare`). A vector passes, fails at its first
differing step, is skipped (it needs a feature the driver lacks), or is
unsupported (the driver answered ``not-supported``). A driver failure
(crash, hang, garbage) fails the vector at that step with the driver's
report — unless the step expected a contract error, where aborting is
allowed — and the next vector gets a fresh driver process; after a few
vectors in a row lost that way the run stops (a dead or hung driver).

Vectors come from a file or folder (:func:`load_vectors`; by default the
corpus installed with this package, :func:`default_corpus`); no vectors, or
a file that is not one, is a :class:`VectorError`. The summary counts the
outcomes and names the features and ops the skipped vectors left unchecked.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from models.conformance.compare import Verdict, compare
from models.conformance.process import Driver, DriverFailure
from models.conformance.protocol import OPS
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
    driver_failure: str = ""
    """``crashed`` or ``timeout`` if the driver failed that way at ``step`` (not an allowed
    abort)."""
    actual: dict[str, object] | None = None
    """A failure's response from the driver, if it gave one (for the picture)."""
    after: dict[str, object] | None = None
    """The driver's ``state`` after a failing step the vector observes next (for the picture)."""

    def line(self) -> str:
        where = f" at step {self.step}" if self.step is not None else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.outcome.value:<11} {self.name}{where}{detail}"


PACKAGED_CORPUS = Path(__file__).parent / "vectors"
"""Where a wheel carries the corpus (``vectors/`` of the repository, as package data)."""

SOURCE_CORPUS = Path(__file__).resolve().parents[2] / "vectors"
"""The corpus in a source checkout (``generate.DEFAULT_DIRECTORY``, without importing it)."""


def default_corpus() -> Path:
    """The corpus this installation carries: the wheel's copy, else the source checkout's."""
    return PACKAGED_CORPUS if PACKAGED_CORPUS.is_dir() else SOURCE_CORPUS


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
                vector.name,
                Outcome.FAILED,
                f"{_show(step.request)}: {failure}",
                index,
                failure.kind if failure.kind in ("crashed", "timeout") else "",
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
                actual=actual,
                after=_state_after(vector, index, driver),
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


class DriverGaveUp(Exception):
    """The driver crashed or timed out on several vectors in a row: the run stops there."""


def replay(
    vectors: Iterable[Vector], driver: Driver, *, max_failures: int | None = None
) -> Iterator[VectorResult]:
    """Each vector's result, in order.

    With ``max_failures``, after that many consecutive replayed vectors
    failed by a driver crash or timeout (skipped vectors do not count, any
    other result resets the count), :class:`DriverGaveUp` is raised
    instead of replaying the next vector: a dead or hung driver costs a few
    timeouts, not one per vector.
    """
    streak: list[str] = []
    for done, vector in enumerate(vectors):
        if max_failures is not None and len(streak) >= max_failures:
            kinds = " or ".join(sorted({"timeout": "timed out"}.get(k, k) for k in set(streak)))
            raise DriverGaveUp(
                f"stopped after {len(streak)} vectors in a row where the driver {kinds} "
                f"({done} vectors replayed): is it dead or hung? (--max-failures sets the limit)"
            )
        result = replay_vector(vector, driver)
        yield result
        if result.outcome is not Outcome.SKIPPED:
            streak = [*streak, result.driver_failure] if result.driver_failure else []


@dataclass(frozen=True, slots=True)
class Summary:
    counts: dict[Outcome, int]
    skipped_features: dict[str, int] = field(default_factory=dict)
    """Each feature the driver lacks -> how many skipped vectors needed it."""
    skipped_ops: tuple[str, ...] = ()
    """Ops of the vectors that were never sent: every vector using them was skipped."""
    stopped: str = ""
    """Why the run stopped before the last vector (a dead or hung driver), if it did."""

    @property
    def failed(self) -> int:
        return self.counts.get(Outcome.FAILED, 0)

    @property
    def checked(self) -> int:
        """Vectors that decided something: passed or failed (not skipped, not unsupported)."""
        return self.counts.get(Outcome.PASSED, 0) + self.failed

    def line(self) -> str:
        return ", ".join(f"{self.counts.get(o, 0)} {o.name.lower()}" for o in Outcome)

    def skipped_lines(self) -> list[str]:
        """What the skipped vectors left unchecked: the features, then the ops."""
        lines = []
        if self.skipped_features:
            needs = ", ".join(f"{f} ({n})" for f, n in sorted(self.skipped_features.items()))
            lines.append(f"skipped vectors needing features the driver lacks: {needs}")
        if self.skipped_ops:
            lines.append(
                f"ops never sent (only skipped vectors use them): {', '.join(self.skipped_ops)}"
            )
        return lines


def run_replay(
    vectors: Sequence[Vector],
    driver: Driver,
    report: Callable[[str], None] = print,
    *,
    quiet: bool = False,
    max_failures: int | None = None,
    on_failure: Callable[[Vector, VectorResult], str] | None = None,
) -> Summary:
    """Replay ``vectors``, reporting one line per vector (only failures if ``quiet``).

    ``on_failure`` is called with each failed vector; what it returns is reported too.

    The summary line ends the report, followed by what skipped vectors left
    unchecked and, if the driver gave up (see :func:`replay`), why the run stopped.
    """
    counts: dict[Outcome, int] = {}
    missing: Counter[str] = Counter()
    sent: set[str] = set()
    stopped = ""
    try:
        for index, result in enumerate(replay(vectors, driver, max_failures=max_failures)):
            vector = vectors[index]
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
            if result.outcome is Outcome.SKIPPED:
                missing.update(set(vector.features) - driver.features)
            else:
                sent.update(str(step.request["op"]) for step in vector.steps)
            if not quiet or result.outcome is Outcome.FAILED:
                report(result.line())
            if on_failure is not None and result.outcome is Outcome.FAILED:
                report(f"  {on_failure(vector, result)}")
    except DriverGaveUp as gave_up:
        stopped = str(gave_up)
    used = {str(step.request["op"]) for vector in vectors for step in vector.steps}
    summary = Summary(counts, dict(missing), tuple(op for op in OPS if op in used - sent), stopped)
    report(f"{driver.name}: {summary.line()}")
    for line in [*summary.skipped_lines(), *([stopped] if stopped else [])]:
        report(line)
    return summary

"""``pgalloc conform``: random operation sequences through a port and the spec side by side.

Hypothesis draws a sequence of actions (:mod:`models.conformance.actions`);
each request goes to the checked specification, which gives the expected
response, and at once to the port's driver, whose response is compared
(allowances applied). At the first difference — or crash, hang, malformed
answer — the example fails, and hypothesis shrinks it to a minimal trace,
which is printed as a vector the porter can keep and replay. Generation is
randomized (never derandomized), in batches until the time budget is
spent (a batch is a few seconds, so the budget may be overrun by that);
shrinking gets a budget of its own, after which the smallest trace found
so far is reported, as it is after a few timed-out requests (a hung driver).

Only requests of the features the driver declares are drawn (see
``protocol.OP_FEATURES``), and every step is checked for that before it is
sent: a driver is never asked what it did not offer to answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from hypothesis import Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from models.conformance.actions import RandomAction, action_table, random_options, random_step
from models.conformance.compare import Verdict, compare
from models.conformance.process import Driver, DriverFailure
from models.conformance.protocol import CORE, FEATURES, OP_FEATURES
from models.conformance.recorder import Recorder
from models.conformance.replay import Outcome, VectorResult, replay_vector
from models.conformance.vector import Step, Vector, derive_features
from models.profiles import fuzzing_settings

MAX_STEPS = 40
MEAN_STEPS = 20
"""Sequences stop after each step with chance 1/MEAN_STEPS, and at MAX_STEPS."""
BATCH = 20
"""Examples per hypothesis run; the budget is checked between runs."""


class Divergence(Exception):
    """The port answered ``step`` differently from the specification."""

    def __init__(self, step: Step, detail: str) -> None:
        self.step = step
        self.detail = detail
        super().__init__(detail)


class Ended(Exception):
    """The port aborted where that is allowed, or does not support a request: the trace ends."""


@dataclass
class ConformResult:
    examples: int = 0
    steps: int = 0
    seconds: float = 0.0
    divergence: Vector | None = None
    """The minimal failing trace, as a vector, if the port diverged."""
    detail: str = ""
    confirmed: bool = False
    """The minimal trace, replayed alone through a fresh session, fails again."""
    ended: dict[str, int] = field(default_factory=dict)
    """How many examples ended early, and why (aborted / unsupported)."""
    stopped: str = ""
    """Why the run stopped early (a hung driver), if it did."""
    sent: dict[str, int] = field(default_factory=dict)
    """How many requests of each op were drawn (and sent, unless the trace ended first)."""

    @property
    def exercised(self) -> bool:
        """Whether anything beyond the core (create, state) was sent."""
        return any(OP_FEATURES[op] != CORE for op in self.sent)

    replayed: VectorResult | None = None
    """The minimal trace replayed alone (its failing step and response, for the picture)."""


@dataclass
class _Timeouts:
    """Requests the driver did not answer in time.

    Not reset by answers: the first timeout is a divergence already, and
    each shrinking attempt that reaches it again costs a whole timeout.
    """

    limit: int | None
    count: int = 0

    @property
    def exceeded(self) -> bool:
        return self.limit is not None and self.count >= self.limit


def _send(driver: Driver, step: Step, timeouts: _Timeouts) -> None:
    """The observer of a recording: send the step to the port and compare (raises)."""
    try:
        actual = driver.request(step.request)
    except DriverFailure as failure:
        timeouts.count += failure.kind == "timeout"
        expected = step.response
        if failure.kind == "crashed" and expected.get("error") == "contract":
            raise Ended("aborted") from None
        raise Divergence(step, str(failure)) from None
    comparison = compare(step.request, step.response, actual)
    if comparison.verdict is Verdict.ABORTED:
        raise Ended("aborted")
    if comparison.verdict is Verdict.UNSUPPORTED:
        raise Ended("unsupported")
    if comparison.verdict is Verdict.MISMATCH:
        raise Divergence(step, comparison.detail)


class NothingToDraw(ValueError):
    """The driver's features leave conform nothing to send but create and state."""


class OutsideFeatures(AssertionError):
    """conform drew a request of a feature the driver did not declare (a bug of conform)."""


def _declared(
    sent: list[Step], step: Step, supported: frozenset[str], counts: dict[str, int]
) -> Step:
    """``step``, appended to ``sent`` once the sequence is seen to need only ``supported``.

    Features are derived from the whole sequence (an ENOMEM is growth-overflow only if
    no fault injected it), as for a vector: O(len(sent)).
    """
    sent.append(step)
    op = str(step.request["op"])
    counts[op] = counts.get(op, 0) + 1
    outside = set(derive_features(tuple(sent))) - supported
    if outside:
        raise OutsideFeatures(f"conform drew {step.request} needing {sorted(outside)}")
    return step


@st.composite
def _step(
    draw: st.DrawFn, recorder: Recorder, table: list[RandomAction], supported: Collection[str]
) -> bool:
    """One random step, then whether another follows (chance 1 - 1/MEAN_STEPS).

    A step's draws form one strategy, and the sequence's length is decided
    step by step rather than drawn up front: so dropping a step is dropping
    one unit of the choice sequence, which the shrinker does well.
    """
    random_step(recorder, draw, table, supported)
    return draw(st.integers(0, MEAN_STEPS - 1)) != 0


def run_conform(
    driver: Driver,
    budget: float,
    report: Callable[[str], None] = print,
    *,
    features: Collection[str] | None = None,
    max_steps: int = MAX_STEPS,
    shrink_budget: float | None = None,
    max_failures: int | None = None,
    seed: int | None = None,
    stop: Callable[[], bool] = lambda: False,
    on_divergence: Callable[[], None] = lambda: None,
) -> ConformResult:
    """Run randomized sequences through ``driver`` for about ``budget`` seconds.

    ``features`` (default: what the driver declares) limits what is drawn;
    ``shrink_budget`` (default: the larger of the budget and 30 s) bounds
    the time spent minimizing a divergence; after ``max_failures``
    requests timed out (a hung driver) nothing more is sent and the
    smallest divergence so far is reported.

    ``seed`` (default: hypothesis's own randomness) fixes the sequences drawn:
    batch k runs with hypothesis seed ``seed`` + k * 2**32, so parallel runs
    given distinct seeds below 2**32 never draw alike. Generation also ends
    once ``stop()`` is true (checked between batches); ``on_divergence`` is
    called when the first divergence is found, before it is shrunk.
    """
    supported = frozenset(features if features is not None else driver.features)
    supported &= frozenset(FEATURES)
    table = action_table(supported)
    if not table:
        raise NothingToDraw(
            f"{driver.name} declares {sorted(supported) or 'no features'}: no action of "
            "conform needs only those (alloc is the usual start; see docs/conformance.md)"
        )
    result = ConformResult()
    started = time.monotonic()
    deadline = started + budget
    shrink_deadline: float | None = None
    best: tuple[list[Step], str] | None = None
    timeouts = _Timeouts(max_failures)

    def example(data: st.DataObject) -> None:
        nonlocal shrink_deadline, best
        if timeouts.exceeded or (
            shrink_deadline is not None and time.monotonic() > shrink_deadline
        ):
            # Out of shrinking time: pass, so hypothesis stops (it may call that flaky;
            # the smallest trace so far is kept). Generation is never cut short this
            # way, which hypothesis would take for inconsistent data generation.
            return
        result.examples += 1
        opts, faults = random_options(data.draw, supported)
        sent: list[Step] = []
        recorder = Recorder(
            "conform/divergence",
            "",
            opts,
            faults=faults,
            observer=lambda step: _send(
                driver, _declared(sent, step, supported, result.sent), timeouts
            ),
        )
        try:
            for _ in range(max_steps):
                if not data.draw(_step(recorder, table, supported)):
                    break
            if "destroy" in supported and data.draw(st.integers(0, 9)) == 0:
                recorder.simple("destroy")
        except Ended as ended:
            result.ended[str(ended)] = result.ended.get(str(ended), 0) + 1
        except Divergence as divergence:
            if shrink_deadline is None:
                on_divergence()
                shrink_deadline = time.monotonic() + (
                    shrink_budget if shrink_budget is not None else max(budget, 30.0)
                )
            if best is None or len(recorder.steps) <= len(best[0]):
                best = (list(recorder.steps), divergence.detail)
            raise
        finally:
            result.steps += len(recorder.steps)

    quiet = settings(parent=fuzzing_settings(max_examples=BATCH), verbosity=Verbosity.quiet)
    test = quiet(given(st.data())(example))
    batch = 0
    while best is None and not timeouts.exceeded and time.monotonic() < deadline and not stop():
        run = test if seed is None else hypothesis_seed(seed + batch * 2**32)(test)
        batch += 1
        try:
            run()
        except Exception:  # hypothesis re-raises the divergence, or Flaky if it shrank past
            if best is None:  # the shrink budget; either way the best trace is kept
                raise
        report(
            f"conform: {result.examples} sequences, {result.steps} steps, "
            f"{time.monotonic() - started:.0f}s"
        )
    result.seconds = time.monotonic() - started
    if timeouts.exceeded:
        result.stopped = (
            f"stopped after {timeouts.count} requests timed out: is the driver hung? "
            "(--max-failures sets the limit)"
        )
    if best is not None:
        steps, detail = best
        result.detail = detail
        result.divergence = Vector(
            "conform/divergence",
            f"A minimal trace on which {driver.name} departs from the specification "
            f"(found by pgalloc conform): at step {len(steps) - 1}, {detail}",
            tuple(steps),
        )
        if not timeouts.exceeded:  # a hung driver would only time out once more
            result.replayed = replay_vector(result.divergence, driver)
            result.confirmed = result.replayed.outcome is Outcome.FAILED
    return result

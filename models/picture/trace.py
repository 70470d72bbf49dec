"""What a picture shows: a trace of frames, each a step and the observation after it.

A vector, a divergence and a counterexample all become a :class:`Trace`, and
the writers (:mod:`models.picture.page`, :mod:`models.picture.text`) draw
only traces. Here, vectors and divergences: a frame is one request that may
change the state together with the ``state`` steps after it (the vectors
follow each such request with one), so each frame shows the request, its
response and the observation after it. A divergence is the vector up to the
step where the port departed, that frame carrying the port's response (and
observation) too, with every differing field listed.

Every response is checked against the protocol's schema; one that breaks it
is shown as a problem and its observation, if any, as :class:`Broken`.
Nothing here trusts a string: the writers escape everything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from models.conformance.codec import same_errno
from models.conformance.compare import canonical_result
from models.conformance.schema import SchemaError, validate_request, validate_response
from models.picture import diff
from models.picture.observation import Broken, Observation, parse
from models.picture.scale import size_label

View = Observation | Broken


class BadInput(ValueError):
    """The file is not a vector at all (its outline is wrong): nothing to draw."""


@dataclass(frozen=True, slots=True)
class Frame:
    steps: tuple[int, ...]
    """The indices of the steps shown (a request and the ``state`` steps after it)."""
    lane: str
    """The thread that ran it; "" when the trace has one thread."""
    request: str
    """The request, one line."""
    response: str
    """The (expected) response, one line; "" for a state step, whose observation is drawn."""
    ok: bool
    """The (expected) response succeeded."""
    observation: View | None
    """The state after the step: given by this frame, or carried from the last one that did."""
    given: bool
    """``observation`` was observed at this frame (not carried)."""
    actual_response: str | None = None
    """A divergence: what the port answered (or how its driver failed), one line."""
    actual: View | None = None
    """A divergence: the port's observation at this frame (its answer to the ``state``
    step that failed, or to the one the runner asked after the request that failed)."""
    fields: tuple[diff.Field, ...] = ()
    """A divergence: every field where the port's response differs from the expected one."""
    problems: tuple[str, ...] = ()
    """What is wrong here: a broken schema, a property violated, a failed driver."""
    span: tuple[int, int] | None = None
    """When the call ran, start and end, in any clock's units (for a recorded history)."""


@dataclass(frozen=True, slots=True)
class Trace:
    kind: str
    """``vector``, ``divergence`` or ``counterexample``."""
    name: str
    description: str
    frames: tuple[Frame, ...]
    lanes: tuple[str, ...] = ()
    """The threads, in the order their lanes are drawn (empty: one thread)."""
    notes: tuple[str, ...] = ()
    """Lines about the whole trace (what was not run, what was violated)."""

    def observations(self) -> list[Observation]:
        """Every well-formed observation drawn, expected and actual."""
        found = []
        for frame in self.frames:
            for view in (frame.observation, frame.actual):
                if isinstance(view, Observation):
                    found.append(view)
        return found


def _is_u64(value: Any) -> bool:
    return isinstance(value, str) and value.isdigit() and len(value) <= 20


def brief(value: Any, key: str = "") -> str:
    """A request's or result's value as a porter reads it: ranges ``[0x.., 0x..)`` in hex,
    a ``length`` in KiB/MiB, payloads by size, objects as ``k=v``; any other text as is."""
    if isinstance(value, list) and len(value) == 2 and all(map(_is_u64, value)):
        return f"[{hex(int(value[0]))}, {hex(int(value[1]))})"
    if isinstance(value, list):
        return "[" + ", ".join(brief(item, key) for item in value) + "]"
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in ("hex", "base64", "pattern"):
            kind, payload = next(iter(value.items()))
            size = {"hex": len(str(payload)) // 2, "base64": len(str(payload)) * 3 // 4}
            return f"{kind} {size.get(kind, payload)} bytes"
        return "{" + ", ".join(f"{k}={brief(v, k)}" for k, v in value.items()) + "}"
    if key == "length" and _is_u64(value):
        return size_label(int(value))
    if key == "offset" and _is_u64(value):
        return hex(int(value))
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def describe_request(request: dict[str, Any]) -> str:
    """``op key=value, ...``: a request in one short line."""
    fields = [f"{k}={brief(v, k)}" for k, v in request.items() if k not in ("op", "id")]
    return one_line(f"{request.get('op')} {', '.join(fields)}".strip())


def describe_response(response: dict[str, Any]) -> str:
    """A response in one short line: its result, or its error, violation and message."""
    if response.get("ok") is True:
        return one_line("ok" if response.get("result") is None else brief(response["result"]))
    parts = [str(response.get("error"))]
    parts += [str(response["violation"])] if "violation" in response else []
    parts += ["(aborted)"] if response.get("aborted") is True else []
    message = f": {response['message']}" if "message" in response else ""
    return one_line(" ".join(parts) + message)


def one_line(value: Any, limit: int = 240) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _steps(document: Any) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    if not isinstance(document, dict) or not isinstance(document.get("steps"), list):
        raise BadInput("not a vector: expected a JSON object with a list of steps")
    steps = []
    for index, step in enumerate(document["steps"]):
        if not (
            isinstance(step, dict)
            and isinstance(step.get("request"), dict)
            and isinstance(step.get("response"), dict)
        ):
            raise BadInput(f"step {index} is not an object with a request and a response")
        steps.append((step["request"], step["response"]))
    if not steps:
        raise BadInput("the vector has no steps: nothing to draw")
    return steps


def _schema_problems(request: dict[str, Any], response: dict[str, Any], whose: str) -> list[str]:
    try:
        validate_request(request)
    except SchemaError as error:
        return [f"the request breaks the schema: {error}"]
    try:
        validate_response(str(request["op"]), response)
    except SchemaError as error:
        return [f"{whose} breaks the schema: {error}"]
    return []


def _response_text(response: dict[str, Any]) -> str:
    if not isinstance(response.get("ok"), bool):  # not even a response: show what it is
        return one_line({k: v for k, v in response.items() if k != "id"})
    return describe_response(response)


def _state_view(response: dict[str, Any], problems: list[str]) -> View:
    """The observation a state response carries (``problems``: its schema problems)."""
    if problems:
        return Broken(problems[-1], one_line(response, 400))
    if response.get("ok") is not True:
        return Broken("the state request failed", one_line(response, 400))
    return parse(response.get("result"), checked=True)


def from_vector(document: Any, *, until: int | None = None) -> Trace:
    """The trace of a vector (its JSON), up to step ``until`` inclusive if given."""
    steps = _steps(document)
    frames: list[Frame] = []
    last: View | None = None
    for index, (request, response) in enumerate(steps[: None if until is None else until + 1]):
        problems = _schema_problems(request, response, "the expected response")
        if request.get("op") == "state":
            last = _state_view(response, problems)
            if frames and not frames[-1].given:  # the state after the frame's request
                previous = frames[-1]
                frames[-1] = replace(
                    previous,
                    steps=(*previous.steps, index),
                    observation=last,
                    given=True,
                    problems=(*previous.problems, *problems),
                )
                continue
            frames.append(
                Frame((index,), "", "state", "", True, last, True, problems=tuple(problems))
            )
            continue
        frames.append(
            Frame(
                (index,),
                "",
                describe_request(request),
                _response_text(response),
                response.get("ok") is True,
                last,
                False,
                problems=tuple(problems),
            )
        )
    return Trace(
        "vector",
        str(document.get("name", "")),
        str(document.get("description", "")),
        tuple(frames),
    )


def from_divergence(
    document: Any,
    step: int,
    actual: dict[str, Any] | None,
    failure: str = "",
    after: dict[str, Any] | None = None,
) -> Trace:
    """A divergence: the vector up to ``step``, where the port answered ``actual``.

    ``actual`` is None when there was no response to draw (the driver
    crashed, hung or printed garbage); ``failure`` then says what happened.
    ``after`` is the port's ``state`` response after ``step``, when the
    vector's next step observes the state: it is drawn under the expected one.
    """
    steps = _steps(document)
    if not 0 <= step < len(steps):
        raise BadInput(f"the failing step {step} is not in the vector ({len(steps)} steps)")
    request, expected = steps[step]
    observed = (
        after is not None and step + 1 < len(steps) and steps[step + 1][0].get("op") == "state"
    )
    last_step = step + 1 if observed else step
    trace = from_vector(document, until=last_step)
    *before, last = trace.frames
    problems = list(last.problems)
    view: View | None = None
    found: list[diff.Field] = []
    if actual is None:
        text = failure or "no response"
        problems.append(f"the port's driver failed: {text}")
    else:
        is_state = request.get("op") == "state" and actual.get("ok") is True
        text = "" if is_state else _response_text(actual)
        broken = _schema_problems(request, actual, "the port's response")
        problems += broken
        found += diff.fields(*_comparable(str(request.get("op")), expected, actual))
        if is_state:
            view = _state_view(actual, broken)
    if observed and after is not None:
        state_request, state_expected = steps[step + 1]
        broken = _schema_problems(state_request, after, "the port's state")
        problems += broken
        view = _state_view(after, broken)
        found += [
            diff.Field(f"(state after) {f.path}", f.expected, f.actual)
            for f in diff.fields(*_comparable("state", state_expected, after))
        ]
    frame = replace(
        last, actual_response=text, actual=view, fields=tuple(found), problems=tuple(problems)
    )
    notes = [f"The port departed from the specification at step {step}."]
    if last_step + 1 < len(steps):
        notes.append(
            f"The replay stopped there: {len(steps) - last_step - 1} later steps were not run."
        )
    return Trace("divergence", trace.name, trace.description, (*before, frame), notes=tuple(notes))


def _comparable(
    op: str, expected: dict[str, Any], actual: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both responses as the runner compares them: without ``id`` and ``message``, events
    grouped by user, errno aliases and a violation the port does not give left alike."""
    pair = []
    for response in (expected, actual):
        shown = {k: v for k, v in response.items() if k not in ("id", "message")}
        if "result" in shown:
            shown["result"] = canonical_result(op, shown["result"])
        pair.append(shown)
    mine, theirs = pair
    if "violation" not in theirs:
        mine.pop("violation", None)
    error, their_error = mine.get("error"), theirs.get("error")
    if isinstance(error, str) and isinstance(their_error, str) and same_errno(error, their_error):
        theirs["error"] = error
    return mine, theirs

"""Comparing a driver's response with the expected one, under the format's allowances.

The allowances are defined once, in :data:`models.conformance.protocol.ALLOWANCES`;
this module is their only implementation, used by ``vectors replay`` and
``conform`` alike. A mismatch comes with a description that points at the
first difference (for a state, the field and the entry).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

from models.conformance.codec import Json, same_errno
from models.conformance.schema import SchemaError, validate_response


class Verdict(enum.Enum):
    MATCH = "match"
    ABORTED = "aborted"
    """A contract error was expected and the port aborted (allowed: the trace ends)."""
    UNSUPPORTED = "unsupported"
    """The port answered not-supported (allowed: the vector is skipped)."""
    MISMATCH = "mismatch"


@dataclass(frozen=True, slots=True)
class Comparison:
    verdict: Verdict
    detail: str = ""


MATCH = Comparison(Verdict.MATCH)


def canonical_result(op: str, result: Json) -> Json:
    """The result as compared: run_evictions events grouped by user, each user's in order."""
    if op == "run_evictions" and isinstance(result, list):
        return sorted(result, key=lambda event: str(event.get("user")))
    return result


def compare(request: dict[str, Json], expected: Json, actual: Json) -> Comparison:
    """Whether ``actual`` answers ``request`` as ``expected`` does, allowances applied.

    A response that is not what was expected is first checked against the
    schema, so a malformed one is reported as such rather than as a difference.
    """
    comparison = _compare(request, expected, actual)
    if comparison.verdict is not Verdict.MATCH:
        try:
            validate_response(str(request.get("op")), actual)
        except SchemaError as failure:
            return Comparison(Verdict.MISMATCH, f"malformed response: {failure}")
    return comparison


def _compare(request: dict[str, Json], expected: Json, actual: Json) -> Comparison:
    op = str(request.get("op"))
    if not actual.get("ok") and actual.get("error") == "not-supported":
        return Comparison(Verdict.UNSUPPORTED, f"{op} is not supported")
    if expected["ok"] != actual["ok"]:
        return Comparison(
            Verdict.MISMATCH, f"expected {_outcome(expected)}, got {_outcome(actual)}"
        )
    if not expected["ok"]:
        if not same_errno(expected["error"], actual["error"]):
            return Comparison(
                Verdict.MISMATCH, f"expected {_outcome(expected)}, got {_outcome(actual)}"
            )
        given = actual.get("violation")
        if given is not None and expected.get("violation") not in (None, given):
            return Comparison(
                Verdict.MISMATCH,
                f"expected contract violation {expected.get('violation')}, got {given}",
            )
        if expected["error"] == "contract" and actual.get("aborted") is True:
            return Comparison(Verdict.ABORTED, "the port aborted on an out-of-contract call")
        return MATCH
    want = canonical_result(op, expected["result"])
    got = canonical_result(op, actual["result"])
    if want == got:
        return MATCH
    return Comparison(Verdict.MISMATCH, describe_difference(want, got))


def _outcome(response: Json) -> str:
    if response.get("ok"):
        return f"success with {_short(response.get('result'))}"
    violation = f" ({response['violation']})" if response.get("violation") else ""
    return f"error {response.get('error')}{violation}"


def _short(value: Json, limit: int = 300) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_difference(want: Json, got: Json, path: str = "result") -> str:
    """Where ``got`` first differs from ``want``: the path and both values.

    For example ``result.usage[2].refs: expected "1", got "2"``. Objects are
    compared key by key, lists entry by entry, depth first.
    """
    if isinstance(want, dict) and isinstance(got, dict):
        for key in list(want) + [k for k in got if k not in want]:
            if want.get(key, _MISSING) != got.get(key, _MISSING):
                if key not in got:
                    return f"{path}.{key}: missing (expected {_short(want[key])})"
                if key not in want:
                    return f"{path}.{key}: unexpected (got {_short(got[key])})"
                return describe_difference(want[key], got[key], f"{path}.{key}")
    if isinstance(want, list) and isinstance(got, list):
        for index, (w, g) in enumerate(zip(want, got, strict=False)):
            if w != g:
                return describe_difference(w, g, f"{path}[{index}]")
        if len(want) != len(got):
            extra = got[len(want)] if len(got) > len(want) else want[len(got)]
            which = "unexpected" if len(got) > len(want) else "missing"
            return f"{path}: {len(got)} entries, expected {len(want)} ({which}: {_short(extra)})"
    return f"{path}: expected {_short(want)}, got {_short(got)}"


_MISSING = object()

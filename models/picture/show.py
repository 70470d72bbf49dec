"""``pgalloc show``, and the pictures the runner and the checkers write when something fails.

:func:`show` draws a vector file (or a model checker scenario's
counterexample) as a page or as text. :func:`write_divergence` is what
``pgalloc vectors replay`` and ``pgalloc conform --save`` call where a port
departs: it writes the page beside the vector, ``NAME.divergence.html``.
:func:`draw_counterexample` is what the model checker's and the
linearizability checker's ``pgalloc check`` entries call on a failure.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from models.picture import page, text
from models.picture.trace import BadInput, Trace, from_divergence, from_vector


def show(
    vector: Path | None, output: Path | None, as_text: bool, counterexample: str | None
) -> int:
    """Draw ``vector`` (or the named scenario's counterexample); 0 if drawn, 2 if not."""
    try:
        if counterexample is not None:
            trace = _counterexample(counterexample)
            default = Path(f"{counterexample}.html")
        else:
            assert vector is not None
            trace = from_vector(_read(vector))
            default = vector.with_suffix(".html")
    except (OSError, BadInput, ValueError) as error:
        print(f"pgalloc show: {error}", file=sys.stderr)
        return 2
    if as_text:
        sys.stdout.write(text.render(trace))
        return 0
    target = output or default
    if vector is not None and target.exists() and target.samefile(vector):
        print(f"pgalloc show: {target} is the vector itself: give another -o", file=sys.stderr)
        return 2
    try:
        target.write_text(page.render(trace), encoding="utf-8")
    except OSError as error:
        print(f"pgalloc show: cannot write {target}: {error.strerror}", file=sys.stderr)
        return 2
    print(f"{target}: {len(trace.frames)} frames; open it in a browser (arrow keys step)")
    return 0


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise BadInput(f"{path} is not JSON: {error}") from None
    except OSError as error:
        raise BadInput(f"cannot read {path}: {error.strerror}") from None


def _counterexample(name: str) -> Trace:
    from models.explore import DEFAULT_SCENARIOS, SEED_DEFECT_SCENARIOS, explore
    from models.picture.counterexamples import from_violation

    scenarios = {s.name: s for s in (*SEED_DEFECT_SCENARIOS, *DEFAULT_SCENARIOS)}
    if name not in scenarios:
        raise ValueError(f"no scenario named {name} (there are: {', '.join(scenarios)})")
    violation = explore(scenarios[name]).violation
    if violation is None:
        raise ValueError(f"scenario {name} has no counterexample: every property holds")
    return from_violation(scenarios[name], violation)


def draw_counterexample(make: Callable[[], Trace], stem: str) -> str:
    """Draw a checker's counterexample to ``STEM.html`` in the current directory.

    A line saying where, or why it could not be drawn: a picture is a help,
    never a reason for the check itself to fail differently.
    """
    target = Path(f"{stem}.html")
    try:
        target.write_text(page.render(make()), encoding="utf-8")
    except Exception as error:  # a picture must never change how the check fails
        return f"picture: not drawn ({type(error).__name__}: {error})"
    return f"picture: {target.resolve()}"


def divergence_path(vector_file: Path) -> Path:
    """Where the picture of a divergence of ``vector_file`` goes: beside it."""
    return vector_file.with_name(vector_file.name.removesuffix(".json") + ".divergence.html")


def write_divergence(
    document: Any,
    step: int,
    actual: dict[str, Any] | None,
    failure: str,
    target: Path,
    after: dict[str, Any] | None = None,
) -> str:
    """Draw a divergence to ``target`` (HTML) and beside it as text (``.txt``, for CI logs);
    a line saying where, or why it could not be drawn.

    The arguments are :func:`models.picture.trace.from_divergence`'s.
    """
    printed = target.with_suffix(".txt")
    try:
        trace = from_divergence(document, step, actual, failure, after)
        target.write_text(page.render(trace), encoding="utf-8")
        printed.write_text(text.render(trace), encoding="utf-8")
    except (OSError, BadInput) as error:
        return f"picture: not written ({error})"
    return f"picture: {target} (as text: {printed})"

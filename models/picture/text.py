"""The terminal writer: a trace as text, one line per step, for CI logs.

Each line: the step numbers, the thread (if several), a band of
:data:`COLUMNS` characters drawn on the trace's piecewise scale, and the
request with its response. In the band each character is the usage at that
place: the kind's letter (:data:`LETTERS`), upper case with references,
lower case awaiting reclaim; ``.`` free inside the file, a space beyond its
end. Then, indented, the frame's problems and differences: every differing
field and byte range of a divergence, the port's band under the expected one.

Cost: linear in the number of frames times the ranges drawn in each.
"""

from __future__ import annotations

from models.picture import diff
from models.picture.observation import Broken, Observation
from models.picture.scale import Scale, build, size_label
from models.picture.trace import Frame, Trace, View

COLUMNS = 64
LETTERS = {
    "System": "s",
    "Anonymous": "a",
    "PageCache": "p",
    "Tmpfs": "t",
    "Ramdiskfs": "r",
    "Mapped": "m",
}
"""By kind; a kind the schema adds later is ``?``."""


def render(trace: Trace) -> str:
    """The text for ``trace``, ending with a newline."""
    scale = build({o for obs in trace.observations() for o in obs.offsets()}, COLUMNS)
    lines = [f"{trace.kind}: {_clean(trace.name)}"]
    if trace.description:
        lines.append(f"  {_clean(trace.description)}")
    lines += [f"  {_clean(note)}" for note in trace.notes]
    legend = ", ".join(f"{letter.upper()} {kind}" for kind, letter in LETTERS.items())
    lines.append(f"  band: {legend}; lower case: no references; . free; | the file end")
    lane_width = max((len(lane) for lane in trace.lanes), default=0)
    previous: Observation | None = None
    for frame in trace.frames:
        lines += _frame(frame, scale, lane_width, previous)
        if isinstance(frame.observation, Observation):
            previous = frame.observation
    return "\n".join(lines) + "\n"


def _frame(frame: Frame, scale: Scale, lane_width: int, previous: Observation | None) -> list[str]:
    steps = f"{frame.steps[0]}" + (f"-{frame.steps[-1]}" if len(frame.steps) > 1 else "")
    lane = f" {_clean(frame.lane):<{lane_width}}" if lane_width else ""
    response = f" -> {_clean(frame.response)}" if frame.response else ""
    head = f"{steps:>7}{lane} {_band(frame.observation, scale)} {_clean(frame.request)}{response}"
    lines = [head]
    pad = " " * (8 + (lane_width + 1 if lane_width else 0))
    if frame.actual_response is not None:
        if frame.actual is not None:
            lines.append(f"{pad}{_band(frame.actual, scale)} the port's observation")
        if frame.actual_response:
            lines.append(f"{pad}the port answered: {_clean(frame.actual_response)}")
    if frame.given and previous is not None and isinstance(frame.observation, Observation):
        moved = _moved(previous, frame.observation)
        if moved:
            lines.append(f"{pad}changed: {', '.join(moved)}")
    lines += [f"{pad}! {_clean(problem)}" for problem in frame.problems]
    lines += [
        f"{pad}≠ {_clean(f.path)}: expected {_clean(_show(f.expected))}, "
        f"got {_clean(_show(f.actual))}"
        for f in frame.fields
    ]
    if isinstance(frame.observation, Observation) and isinstance(frame.actual, Observation):
        lines += [
            f"{pad}≠ bytes [{hex(r.start)}, {hex(r.end)}): {', '.join(map(_clean, r.what))}"
            for r in diff.ranges(frame.observation, frame.actual)
        ]
    return lines


def _moved(before: Observation, after: Observation) -> list[str]:
    """The numbers a step changed, ``name old->new``, and which users started evicting."""
    pairs = [("file_size", before.file_size, after.file_size)]
    pairs += [
        (kind, was, now)
        for (kind, was), (_, now) in zip(before.accounting, after.accounting, strict=True)
    ]
    pairs += [
        ("usage_expected", before.usage_expected, after.usage_expected),
        ("usage_swapped", before.usage_swapped, after.usage_swapped),
    ]
    moved = [
        f"{name} {size_label(was)}->{size_label(now)}" for name, was, now in pairs if was != now
    ]
    evicting = {u.name for u in after.evictable if u.evicting} - {
        u.name for u in before.evictable if u.evicting
    }
    moved += [f"{_clean(name)} evicting" for name in sorted(evicting)]
    return moved


def _band(view: View | None, scale: Scale) -> str:
    if view is None:
        return "[" + " " * COLUMNS + "]"
    if isinstance(view, Broken):
        return "[" + "not an observation (see below)".center(COLUMNS, "#") + "]"
    cells = [" "] * COLUMNS
    _paint(cells, scale, 0, view.file_size, ".")
    for segment in view.usage:
        letter = LETTERS.get(segment.kind, "?")
        _paint(cells, scale, segment.start, segment.end, letter.upper() if segment.refs else letter)
    end = min(round(scale.x(view.file_size)), COLUMNS - 1)
    if view.file_size and cells[end] == " ":
        cells[end] = "|"
    return "[" + "".join(cells) + "]"


def _paint(cells: list[str], scale: Scale, start: int, end: int, char: str) -> None:
    """Fill the columns ``[start, end)`` covers; at least one, so a page is never invisible."""
    if end <= start:
        return
    first = min(int(scale.x(start)), COLUMNS - 1)
    last = max(first + 1, round(scale.x(end)))
    for column in range(first, min(last, COLUMNS)):
        cells[column] = char


def _show(value: object) -> str:
    import json

    return str(value) if value == diff.MISSING else json.dumps(value, ensure_ascii=False)


def _clean(text: str) -> str:
    """``text`` with control characters shown as escapes, so a name cannot drive the terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))

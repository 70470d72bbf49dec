"""The HTML writer: a trace as one self-contained page of inline SVG.

The page needs nothing outside itself: inline CSS, inline SVG, and one small
script (the element ``<script id="pgalloc-stepper">``, fixed text, no data)
for stepping with the arrow keys. Without the script every step is still
shown, one under the other. Each step shows its request and response and
draws the observation after it as bands on one shared scale
(:mod:`models.picture.scale`): the usage set (colour: kind; strength:
references; a dark foot: known committed), the reclaim set, each user's
evictable ranges (orange while evicting), chunk boundaries and the file end;
what the step changed is a yellow strip above the rows; accounting, usage_expected and
usage_swapped are small bars. A divergence draws the expected observation
above the port's, every differing byte range outlined in red on both, and
lists every differing field.

Every string from a trace (names, requests, responses, user names, problems)
passes through :func:`html.escape` before it reaches the page; the page has
no event-handler attributes. Elements carry ``data-*`` attributes naming what
they draw (``data-range``, ``data-steps``), which the tests read back.

Cost: linear in the number of frames times the ranges drawn in each.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from html import escape
from pathlib import Path

from models.picture import diff
from models.picture.observation import KINDS, Broken, Observation, Segment
from models.picture.scale import Scale, build, offset_label, size_label
from models.picture.trace import Frame, Trace, View

WIDTH = 720
"""The drawing width of the file, in pixels."""
LABELS = 120
"""The width of the row labels left of the file."""
COLOURS = {
    "System": "#7c6a55",
    "Anonymous": "#2f6fde",
    "PageCache": "#159a6c",
    "Tmpfs": "#c98a06",
    "Ramdiskfs": "#c2417f",
    "Mapped": "#7b4fd6",
}
"""By kind (a kind the schema adds later is drawn grey)."""
STEPPER_ID = "pgalloc-stepper"
CSS = (Path(__file__).parent / "page.css").read_text()
SCRIPT = (Path(__file__).parent / "stepper.js").read_text()
"""Inlined into every page: the style, and the stepping script (fixed text, no data)."""


def render(trace: Trace) -> str:
    """The page for ``trace``."""
    scale = build({o for obs in trace.observations() for o in obs.offsets()}, WIDTH)
    peak = _bar_scale(trace.observations())
    parts = [
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width'>",
        f"<title>{_e(trace.kind)}: {_e(trace.name)}</title><style>{CSS}</style></head><body>",
        _header(trace, scale),
        _lanes(trace) if trace.lanes else "",
        "<main>",
    ]
    previous: Observation | None = None
    for number, frame in enumerate(trace.frames):
        parts.append(_frame(number, frame, previous, scale, peak))
        if isinstance(frame.observation, Observation):
            previous = frame.observation
    parts.append(f"</main><script id='{STEPPER_ID}'>{SCRIPT}</script></body></html>\n")
    return "".join(parts)


def _e(text: object) -> str:
    return escape(str(text), quote=True)


@dataclass(frozen=True, slots=True)
class _Bars:
    """What every step's bars share: one scale, and which kinds are shown."""

    peak: int
    kinds: frozenset[str]
    """The kinds with bytes accounted at some step (the others would be empty bars)."""


def _bar_scale(observations: list[Observation]) -> _Bars:
    values, kinds = [1], set[str]()
    for obs in observations:
        values += [n for _, n in obs.accounting] + [obs.usage_expected, obs.usage_swapped]
        kinds |= {kind for kind, n in obs.accounting if n}
    return _Bars(max(values), frozenset(kinds))


# --- The header -------------------------------------------------------------------------


def _header(trace: Trace, scale: Scale) -> str:
    steps = sum(len(frame.steps) for frame in trace.frames)
    problems = sum(bool(frame.problems or frame.fields) for frame in trace.frames)
    facts = [f"{len(trace.frames)} frames from {steps} steps"]
    facts.append(f"the axis runs to {offset_label(scale.points[-1])}")
    if problems:
        facts.append(f"{problems} with problems (red)")
    notes = "".join(f"<p class='note'>{_e(note)}</p>" for note in trace.notes)
    return (
        f"<header><h1><span class='kind'>{_e(trace.kind)}</span> {_e(trace.name)}</h1>"
        f"<p class='description'>{_e(trace.description)}</p>{notes}"
        f"<p class='facts'>{_e(' · '.join(facts))}</p>"
        "<p class='how'>Each step: the request &#8594; its response, then the file after it, "
        "offsets growing to the right (a piecewise scale: every range stays visible), one row "
        "for the usage set, one for the reclaim set, one per evictable user; the numbers "
        "beside it.</p>"
        f"{_legend()}</header>"
        "<nav id='stepper'><button id='prev' type='button'>&#9664; previous</button>"
        "<span id='where'>all steps</span>"
        "<button id='next' type='button'>next &#9654;</button>"
        "<label><input id='only' type='checkbox'> one step at a time</label>"
        "<span class='hint'>keys: &#8592; &#8594;</span></nav>"
    )


def _legend() -> str:
    swatches = "".join(
        f"<span class='swatch'><svg width='22' height='12'><rect width='22' height='12' "
        f"fill='{COLOURS.get(kind, '#888')}'/></svg>{_e(kind)}</span>"
        for kind in KINDS
    )
    refs = (
        "<span class='swatch'><svg width='66' height='12'>"
        f"<rect width='20' height='12' fill='{COLOURS['Anonymous']}' "
        f"fill-opacity='{_opacity(0)}' stroke='#555' stroke-dasharray='2 2'/>"
        f"<rect x='23' width='20' height='12' fill='{COLOURS['Anonymous']}' "
        f"fill-opacity='{_opacity(1)}'/>"
        f"<rect x='46' width='20' height='12' fill='{COLOURS['Anonymous']}' "
        f"fill-opacity='{_opacity(2)}'/></svg>"
        "0, 1, 2+ references</span>"
    )
    marks = (
        "<span class='swatch'><svg width='22' height='12'><rect width='22' height='12' "
        "fill='#ccc'/><rect y='9' width='22' height='3' fill='#111'/></svg>known committed</span>"
        "<span class='swatch'><svg width='22' height='12'><rect width='22' height='12' "
        "class='reclaim'/></svg>awaiting reclaim</span>"
        "<span class='swatch'><svg width='22' height='12'><rect width='22' height='12' "
        "class='evictable'/></svg>evictable</span>"
        "<span class='swatch'><svg width='22' height='12'><rect width='22' height='12' "
        "class='evictable evicting'/></svg>evicting</span>"
        "<span class='swatch'><svg width='22' height='12'><rect y='4' width='22' height='5' "
        "class='changed'/></svg>changed by the step</span>"
        "<span class='swatch'><svg width='22' height='12'><rect x='1' y='1' width='20' "
        "height='10' class='diff-range'/></svg>differs from expected</span>"
        "<span class='swatch'><svg width='22' height='12'><line x1='11' x2='11' y2='12' "
        "class='chunk'/></svg>1 GiB chunk</span>"
        "<span class='swatch'><svg width='22' height='12'><line x1='11' x2='11' y2='12' "
        "class='file-end'/></svg>file end</span>"
    )
    return f"<div class='legend'>{swatches}{refs}{marks}</div>"


# --- Lanes ----------------------------------------------------------------------------


def _lanes(trace: Trace) -> str:
    """One row per thread, one column per frame: which thread ran each step."""
    column, row = max(6.0, min(30.0, 900 / len(trace.frames))), 22
    every = 1 if column >= 20 else 5 if column >= 8 else 10  # frame numbers that fit
    width = LABELS + column * len(trace.frames) + 10
    height = row * len(trace.lanes) + 24
    parts = [
        f"<section class='lanes'><h2>Threads: who ran each step</h2>"
        f"<svg class='lanes' width='{width:.0f}' height='{height}' role='img'>"
    ]
    for i, lane in enumerate(trace.lanes):
        y = 20 + i * row
        parts.append(
            _tag("text", _e(lane), x=LABELS - 8, y=y + 15, text_anchor="end", cls="lane-name")
            + _tag("line", x1=LABELS, x2=width - 10, y1=y + 11, y2=y + 11, cls="lane-line")
        )
    for n, frame in enumerate(trace.frames):
        x = LABELS + n * column
        if n % every == 0:
            parts.append(
                _tag("text", str(n), x=x + column / 2, y=12, text_anchor="middle", cls="tick")
            )
        if frame.lane in trace.lanes:
            y = 20 + trace.lanes.index(frame.lane) * row
            bad = " bad" if frame.problems else ""
            pad = 3.0 if column >= 12 else 1.0
            box = _tag(
                "rect",
                _title(frame.request),
                x=x + pad,
                y=y + 2,
                width=column - 2 * pad,
                height=row - 4,
                rx=4 if column >= 12 else 1,
                cls=f"lane-step{bad}",
                data_frame=n,
                data_lane=frame.lane,
            )
            parts.append(f"<a href='#f{n}'>{box}</a>")
    parts.append("</svg>")
    if any(frame.span for frame in trace.frames):
        parts.append(_real_time(trace))
    parts.append("</section>")
    return "".join(parts)


def _real_time(trace: Trace) -> str:
    """One row per thread: when each call ran, start to end, the recorded times by rank
    (so that overlapping calls overlap, however short the gaps between them)."""
    times = sorted({t for frame in trace.frames if frame.span for t in frame.span})
    unit = max(4.0, min(30.0, 900 / max(len(times), 1)))
    rank = {t: i for i, t in enumerate(times)}
    row = 22
    width = LABELS + unit * len(times) + 10
    parts = [
        "<h2>Real time: when each call ran (start to end, in the order the times were recorded)"
        f"</h2><svg class='lanes' width='{width:.0f}' height='{row * len(trace.lanes) + 8}' "
        "role='img'>"
    ]
    for i, lane in enumerate(trace.lanes):
        y = 4 + i * row
        parts.append(
            _tag("text", _e(lane), x=LABELS - 8, y=y + 15, text_anchor="end", cls="lane-name")
            + _tag("line", x1=LABELS, x2=width - 10, y1=y + 11, y2=y + 11, cls="lane-line")
        )
    for n, frame in enumerate(trace.frames):
        if frame.span is None or frame.lane not in trace.lanes:
            continue
        start, end = (LABELS + unit * rank[t] for t in frame.span)
        y = 4 + trace.lanes.index(frame.lane) * row
        bad = " bad" if frame.problems else ""
        tip = _title(f"frame {n}: {frame.request}")
        parts.append(
            _tag(
                "rect",
                tip,
                x=start,
                y=float(y + 3),
                width=max(end - start, 3.0),
                height=row - 6,
                rx=3,
                cls=f"lane-span{bad}",
                data_frame=n,
            )
        )
    parts.append("</svg>")
    return "".join(parts)


# --- One frame ----------------------------------------------------------------------


def _frame(
    number: int, frame: Frame, previous: Observation | None, scale: Scale, peak: _Bars
) -> str:
    steps = " ".join(map(str, frame.steps))
    shown = f"{frame.steps[0]}" + (f"-{frame.steps[-1]}" if len(frame.steps) > 1 else "")
    status = "ok" if frame.ok else "error"
    response = ""
    bad = " bad" if frame.problems or frame.fields else ""
    lane = f"<span class='lane'>{_e(frame.lane)}</span>" if frame.lane else ""
    still = (
        frame.given
        and previous is not None
        and isinstance(frame.observation, Observation)
        and frame.observation == previous
    )
    if still:
        response += " <span class='still'>state unchanged</span>"
    if frame.response:
        response = (
            " <span class='arrow'>&#8594;</span> "
            f"<code class='response {status}'>{_e(frame.response)}</code>" + response
        )
    parts = [
        f"<section class='frame{bad}' id='f{number}' data-steps='{steps}' "
        f"data-lane='{_e(frame.lane)}'>",
        f"<div class='head'><span class='num'>step {_e(shown)}</span>{lane}"
        f"<code class='request'>{_e(frame.request)}</code>{response}</div>",
    ]
    if frame.actual_response is not None:
        parts.append(
            "<div class='head actual'><span class='num'>port</span>"
            "<code class='response error'>"
            f"{_e(frame.actual_response or '(its observation is drawn below)')}</code></div>"
        )
    parts += [f"<p class='problem'>{_e(problem)}</p>" for problem in frame.problems]
    diverged = frame.actual is not None
    expected = frame.observation
    marks: list[diff.Range] = []
    if diverged and isinstance(expected, Observation) and isinstance(frame.actual, Observation):
        marks = diff.ranges(expected, frame.actual)
    changed = (
        diff.changed(previous, expected)
        if frame.given and isinstance(expected, Observation)
        else []
    )
    title = "expected (the specification)" if diverged else ""
    parts.append(_view(expected, scale, peak, title, changed, marks, previous, frame.given))
    if diverged:
        parts.append(_view(frame.actual, scale, peak, "actual (the port)", [], marks, None, True))
    if frame.fields:
        parts.append(_fields(frame.fields))
    parts.append("</section>")
    return "".join(parts)


def _fields(fields: Iterable[diff.Field]) -> str:
    rows = "".join(
        f"<tr class='diff-field' data-path='{_e(f.path)}'><td><code>{_e(f.path)}</code></td>"
        f"<td><code>{_e(_json(f.expected))}</code></td><td><code>{_e(_json(f.actual))}</code></td></tr>"
        for f in fields
    )
    return (
        "<table class='fields'><caption>every field that differs</caption>"
        f"<tr><th>where</th><th>expected</th><th>the port</th></tr>{rows}</table>"
    )


def _json(value: object) -> str:
    """A differing value as JSON; a decimal string of a 64-bit value also in hex."""
    if value == diff.MISSING:
        return str(value)
    shown = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value.isdigit() and 4096 <= int(value) < 1 << 64:
        shown += f" = {hex(int(value))}"
    return shown


# --- One observation ---------------------------------------------------------------------


ROW = 30
THIN = 14


def _view(
    view: View | None,
    scale: Scale,
    peak: _Bars,
    title: str,
    changed: list[diff.Range],
    marks: list[diff.Range],
    previous: Observation | None,
    given: bool,
) -> str:
    caption = f"<div class='view-title'>{_e(title)}</div>" if title else ""
    if view is None:
        return f"<div class='view'>{caption}<p class='empty'>no observation yet</p></div>"
    if isinstance(view, Broken):
        return (
            f"<div class='view broken'>{caption}<p class='problem'>not drawn: {_e(view.reason)}</p>"
            f"<pre class='raw'>{_e(view.text)}</pre></div>"
        )
    carried = "" if given else " carried"
    return (
        f"<div class='view{carried}'>{caption}<div class='drawing'>"
        f"{_band(view, scale, changed, marks)}{_bars(view, peak, previous if given else view)}"
        "</div></div>"
    )


def _tag(name: str, text: str = "", **attributes: object) -> str:
    """An SVG element; attribute values are escaped, ``cls`` is ``class``, floats rounded."""
    parts = [name]
    for key, value in attributes.items():
        shown = f"{value:.1f}" if isinstance(value, float) else str(value)
        parts.append(f"{'class' if key == 'cls' else key.replace('_', '-')}='{_e(shown)}'")
    opened = "<" + " ".join(parts)
    return f"{opened}>{text}</{name}>" if text else f"{opened}/>"


def _title(text: str) -> str:
    return f"<title>{_e(text)}</title>"


def _span(start: int, end: int) -> str:
    return f"[{hex(start)}, {hex(end)})"


def _band(
    obs: Observation, scale: Scale, changed: list[diff.Range], marks: list[diff.Range]
) -> str:
    top = 26
    bottom = top + ROW + 4 + THIN + (THIN + 4) * len(obs.evictable) + 4
    height = bottom + 14

    def x(offset: int) -> float:
        return LABELS + scale.x(offset)

    def width(start: int, end: int, least: float = 1.5) -> float:
        return max(x(end) - x(start), least)

    def name(y: float, text: str, cls: str = "row-name", **more: object) -> str:
        return _tag("text", _e(text), x=LABELS - 8, y=y, text_anchor="end", cls=cls, **more)

    parts = [f"<svg class='band' width='{LABELS + WIDTH + 90}' height='{height}' role='img'>"]
    parts.append(
        _tag(
            "rect",
            x=LABELS,
            y=top,
            width=x(obs.file_size) - LABELS,
            height=ROW + 4 + THIN,
            cls="file",
        )
    )
    for r in changed:  # a strip above the rows, so that it hides no colour
        parts.append(
            _tag(
                "rect",
                _title(f"changed: {', '.join(r.what)}"),
                x=x(r.start),
                y=top - 6,
                width=width(r.start, r.end, 2),
                height=5,
                cls="changed",
                data_range=f"{r.start}-{r.end}",
            )
        )
    parts.append(name(top + 19, "usage"))
    for s in obs.usage:
        parts.append(_segment(s, x(s.start), width(s.start, s.end), top))
    y = top + ROW + 4
    parts.append(name(y + 11, "reclaim"))

    def thin(start: int, end: int, y: int, tip: str, cls: str, **more: object) -> str:
        """A range in a thin row (the reclaim set's, or a user's evictable ranges)."""
        return _tag(
            "rect",
            _title(tip),
            x=x(start),
            y=y,
            width=width(start, end),
            height=THIN,
            cls=cls,
            data_range=f"{start}-{end}",
            **more,
        )

    for start, end in obs.reclaim:
        parts.append(thin(start, end, y, f"awaiting reclaim: {_span(start, end)}", "reclaim"))
    for user in obs.evictable:
        y += THIN + 4
        evicting = " evicting" if user.evicting else ""
        short = user.name if len(user.name) <= 18 else user.name[:17] + "…"
        parts.append(
            name(
                y + 11,
                short + (" (evicting)" if user.evicting else ""),
                f"row-name user{evicting}",
                data_user=user.name,
            )
        )
        for start, end in user.ranges:
            tip = f"{user.name}: {_span(start, end)}"
            parts.append(thin(start, end, y, tip, f"evictable{evicting}", data_user=user.name))
    for boundary in scale.chunks:
        parts.append(
            _tag("line", x1=x(boundary), x2=x(boundary), y1=top - 4, y2=bottom, cls="chunk")
        )
    file_end = x(obs.file_size)
    parts.append(_tag("line", x1=file_end, x2=file_end, y1=top - 4, y2=bottom + 12, cls="file-end"))
    parts.append(
        _tag(
            "text",
            _e(f"file end {offset_label(obs.file_size)}"),
            x=file_end + 4,
            y=bottom + 11,
            cls="end-label",
        )
    )
    # Break points labelled on two staggered rows, each with a tick down to the rows.
    for n, point in enumerate(scale.labelled(36)):
        if point == obs.file_size:
            continue
        y_label = 8 if n % 2 == 0 else 17
        parts.append(
            _tag("line", x1=x(point), x2=x(point), y1=y_label + 1, y2=top, cls="tick-mark")
        )
        parts.append(
            _tag(
                "text",
                _e(offset_label(point)),
                x=x(point),
                y=y_label,
                text_anchor="middle",
                cls="tick",
            )
        )
    for r in marks:
        tip = _title(f"differs: {', '.join(r.what)} in {_span(r.start, r.end)}")
        parts.append(
            _tag(
                "rect",
                tip,
                x=x(r.start) - 1,
                y=top - 1,
                width=width(r.start, r.end, 2) + 2,
                height=bottom - top + 2,
                cls="diff-range",
                data_range=f"{r.start}-{r.end}",
                data_what=" ".join(r.what),
            )
        )
    parts.append("</svg>")
    return "".join(parts)


def _opacity(refs: int) -> float:
    """How strongly a segment is coloured: pale without references, solid with two or more."""
    return 0.4 if refs == 0 else 0.72 if refs == 1 else 1.0


def _segment(s: Segment, x0: float, w: float, top: int) -> str:
    """One run of the usage set: colour by kind, strength by references, a foot if committed."""
    opacity = _opacity(s.refs)
    outline = {"stroke": "#444", "stroke_dasharray": "3 2"} if s.refs == 0 else {"stroke": "#fff"}
    # The longest label that fits: the kind (its colour says it too), then the references.
    labels = [f"{s.kind}, {s.refs} refs", f"{s.refs} refs"] if s.refs != 1 else [s.kind]
    label = next((text for text in labels if w > 7 * len(text) + 8), "")
    committed = ", known committed" if s.known_committed else ""
    tip = (
        f"{_span(s.start, s.end)} {size_label(s.end - s.start)} {s.kind}, {s.refs} refs{committed}"
    )
    parts = [
        _title(tip),
        _tag(
            "rect",
            x=x0,
            y=top + 2,
            width=w,
            height=ROW - 4,
            fill=COLOURS.get(s.kind, "#888"),
            fill_opacity=opacity,
            **outline,
        ),
    ]
    if s.known_committed:
        parts.append(_tag("rect", x=x0, y=top + ROW - 7, width=w, height=5, cls="committed"))
    if label:
        ink = "#fff" if s.refs >= 1 else "#222"
        parts.append(
            _tag(
                "text",
                _e(label),
                x=x0 + w / 2,
                y=top + 18,
                text_anchor="middle",
                cls="seg-label",
                fill=ink,
            )
        )
    data = {
        "data-range": f"{s.start}-{s.end}",
        "data-kind": s.kind,
        "data-refs": s.refs,
        "data-committed": str(s.known_committed).lower(),
    }
    attributes = " ".join(f"{key}='{_e(value)}'" for key, value in data.items())
    return f"<g class='segment' {attributes}>{''.join(parts)}</g>"


def _bars(obs: Observation, peak: _Bars, before: Observation | None) -> str:
    old = dict(before.accounting) if before is not None else {}
    rows = [
        (kind, n, old.get(kind, n), COLOURS.get(kind, "#888"))
        for kind, n in obs.accounting
        if kind in peak.kinds
    ]
    rows.append(
        (
            "usage_expected",
            obs.usage_expected,
            before.usage_expected if before else obs.usage_expected,
            "#444",
        )
    )
    rows.append(
        (
            "usage_swapped",
            obs.usage_swapped,
            before.usage_swapped if before else obs.usage_swapped,
            "#b91c1c",
        )
    )
    cells = []
    for name, value, was, colour in rows:
        width = 0.0 if value == 0 else max(2.0, 100 * value / peak.peak)
        shown = size_label(value) if value else "0"
        moved = " changed" if value != was else ""
        cells.append(
            f"<div class='bar{moved}' data-field='{_e(name)}' data-value='{value}'>"
            f"<span class='bar-name'>{_e(name)}</span>"
            f"<span class='bar-track'><span class='bar-fill' style='width:{width:.1f}%;"
            f"background:{colour}'></span></span><span class='bar-value'>{_e(shown)}</span></div>"
        )
    return f"<div class='bars'>{''.join(cells)}</div>"

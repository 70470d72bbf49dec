"""The pictures (models/picture): what each writer puts in, every difference marked, nothing
trusted, nothing external. The browser checks are in test_picture_chromium.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from models.conformance.mutants import MUTANTS
from models.conformance.process import InProcessDriver
from models.conformance.replay import Outcome, load_vectors, replay_vector
from models.explore import SEED_DEFECT_SCENARIOS, explore
from models.linearizability.history import Operation
from models.linearizability.model import apply
from models.linearizability.search import linearize
from models.picture import diff, page, text
from models.picture.counterexamples import from_linearization, from_stress_report, from_violation
from models.picture.observation import Broken, Observation, parse
from models.picture.scale import build
from models.picture.show import draw_counterexample
from models.picture.trace import BadInput, Trace, from_divergence, from_vector
from spec import allocator
from spec.vocabulary import NO_FAULTS, FileRange, MemoryFileOpts, MemoryKind

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "vectors"
EXAMPLE = ROOT / "docs" / "examples" / "refcount-across-kinds.html"
EXAMPLE_VECTOR = CORPUS / "refcount" / "across-kinds.json"
HOSTILE = ("<script>alert(1)</script>", '" onload="alert(2)', "<img src=x onerror=alert(3)>")


def corpus(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((CORPUS / f"{name}.json").read_text())
    return document


def empty_observation(**changes: Any) -> dict[str, Any]:
    kinds = ("System", "Anonymous", "PageCache", "Tmpfs", "Ramdiskfs", "Mapped")
    value: dict[str, Any] = {
        "file_size": "0",
        "usage": [],
        "reclaim": [],
        "accounting": dict.fromkeys(kinds, "0"),
        "usage_expected": "0",
        "usage_swapped": "0",
        "evictable": [],
    }
    value.update(changes)
    return value


def observation(**changes: Any) -> Observation:
    parsed = parse(empty_observation(**changes))
    assert isinstance(parsed, Observation), parsed
    return parsed


# --- What the page holds, read back from its elements ---------------------------------------


class Elements(HTMLParser):
    """Every element of a page, with its attributes, the frame it is in, and the text."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str], str]] = []
        self.text: list[str] = []
        self.scripts: list[dict[str, str]] = []
        self.frame = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "section" and "frame" in attributes.get("class", "").split():
            self.frame = attributes.get("id", "")
        if tag == "script":
            self.scripts.append(attributes)
        self.elements.append((tag, attributes, self.frame))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def with_class(self, name: str) -> list[tuple[dict[str, str], str]]:
        """The elements of class ``name`` inside frames or lanes (not the legend's swatches)."""
        return [
            (a, f)
            for _, a, f in self.elements
            if name in a.get("class", "").split() and (f or "data-frame" in a)
        ]


def elements(html: str) -> Elements:
    parser = Elements()
    parser.feed(html)
    parser.close()
    return parser


def check_page(html: str, trace: Trace) -> None:
    """Raise AssertionError unless the page shows every step, every segment of every
    observation in its frame, every differing byte range and field, and every lane step."""
    found = elements(html)
    steps = {int(n) for a, _ in found.with_class("frame") for n in a["data-steps"].split()}
    wanted = {n for frame in trace.frames for n in frame.steps}
    assert steps == wanted, f"steps missing from the page: {sorted(wanted - steps)}"
    segments = {(f, a["data-range"], a["data-kind"]) for a, f in found.with_class("segment")}
    marked = {(f, a["data-range"]) for a, f in found.with_class("diff-range")}
    fields = {(f, a["data-path"]) for a, f in found.with_class("diff-field")}
    lane_steps = {int(a["data-frame"]) for a, _ in found.with_class("lane-step")}
    for number, frame in enumerate(trace.frames):
        where = f"f{number}"
        for view in (frame.observation, frame.actual):
            if isinstance(view, Observation):
                for s in view.usage:
                    assert (where, f"{s.start}-{s.end}", s.kind) in segments, (where, s)
        if isinstance(frame.observation, Observation) and isinstance(frame.actual, Observation):
            for r in diff.ranges(frame.observation, frame.actual):
                assert (where, f"{r.start}-{r.end}") in marked, (where, r)
        for f in frame.fields:
            assert (where, f.path) in fields, (where, f.path)
        if frame.lane:  # the start is no thread's step
            assert number in lane_steps, f"frame {number} has no mark in its thread's lane"


def check_safe(html: str) -> None:
    """Raise AssertionError if the page refers outside itself, or runs anything but its
    own stepping script: one script element, ours; no event-handler attribute anywhere."""
    found = elements(html)
    assert [s.get("id") for s in found.scripts] == [page.STEPPER_ID], found.scripts
    for tag, attributes, _ in found.elements:
        assert tag not in ("link", "img", "iframe", "object", "embed", "base", "meta") or (
            tag == "meta" and "http-equiv" not in attributes
        ), tag
        for name, value in attributes.items():
            assert not name.startswith("on"), f"<{tag} {name}=...>"
            assert not re.search(r"url\((?!#)|javascript:", value, re.I), f"<{tag} {name}=...>"
            if name in ("src", "href", "xlink:href", "action", "formaction", "srcset", "poster"):
                assert value.startswith("#"), f"<{tag} {name}={value!r}>"
    styles = " ".join(re.findall(r"<style>(.*?)</style>", html, re.S))
    assert "@import" not in styles and not re.search(r"url\((?!#)", styles)


# --- Vectors -----------------------------------------------------------------------------


def test_a_vector_shows_every_step_and_every_segment() -> None:
    document = corpus("evict/two-users")
    trace = from_vector(document)
    assert sorted(n for f in trace.frames for n in f.steps) == list(range(len(document["steps"])))
    # A request and the state after it are one frame, drawn with that state.
    assert all(frame.given for frame in trace.frames)
    assert all(not frame.problems for frame in trace.frames)
    html = page.render(trace)
    check_page(html, trace)
    check_safe(html)
    users = {a["data-user"] for a, _ in elements(html).with_class("user")}
    assert users == {u.name for obs in trace.observations() for u in obs.evictable} != set()


def test_the_page_checks_have_teeth() -> None:
    trace = from_vector(corpus("reclaim/last-range-first"))
    html = page.render(trace)
    check_page(html, trace)
    without_segment = re.sub(r"<g class='segment'.*?</g>", "", html, count=1)
    with pytest.raises(AssertionError):
        check_page(without_segment, trace)
    with pytest.raises(AssertionError):
        check_page(html.replace("data-steps='2 3'", "data-steps='2'"), trace)
    with pytest.raises(AssertionError):
        check_safe(html.replace("<main>", "<main><img src='https://example.org/x.png'>"))
    with pytest.raises(AssertionError):
        check_safe(html.replace("<main>", "<main><script>alert(1)</script>"))
    with pytest.raises(AssertionError):
        check_safe(html.replace("<main>", "<main><div onclick='x()'>"))


def test_a_step_that_changes_nothing_is_not_marked_changed_and_one_that_does_is() -> None:
    trace = from_vector(corpus("reclaim/last-range-first"))
    html = page.render(trace)
    changed = {f for _, f in elements(html).with_class("changed")}
    observations = [f.observation for f in trace.frames]
    for number in range(1, len(trace.frames)):
        before, after = observations[number - 1], observations[number]
        assert isinstance(before, Observation) and isinstance(after, Observation)
        assert (f"f{number}" in changed) == bool(diff.ranges(before, after)), number


def test_hostile_strings_are_text() -> None:
    document = hostile_vector()
    html = page.render(from_vector(document))
    check_safe(html)
    found = elements(html)
    shown = "".join(found.text)
    for string in HOSTILE:
        assert string in shown
    assert {a["data-user"] for a, _ in found.with_class("user")} == set(HOSTILE[:2])
    printed = text.render(from_vector(document))
    assert HOSTILE[0] in printed and "\x1b" not in printed


def hostile_vector() -> dict[str, Any]:
    """evict/two-users with markup and script in its user names, messages and description."""
    source = json.dumps(corpus("evict/two-users"))
    names = sorted(set(re.findall(r'"user": "([^"]+)"', source)))
    assert len(names) >= 2
    for name, hostile in zip(names, HOSTILE, strict=False):
        source = source.replace(f'"user": "{name}"', f'"user": {json.dumps(hostile)}')
    document: dict[str, Any] = json.loads(source)
    document["name"] = HOSTILE[0]
    document["description"] = HOSTILE[2] + " \x1b[31m"
    document["steps"].insert(
        2,
        {
            "request": {"op": "inc_ref", "range": ["0", "4096"]},
            "response": {"ok": False, "error": "contract", "message": HOSTILE[2]},
        },
    )
    return document


def test_a_response_that_breaks_the_schema_is_drawn_as_an_error() -> None:
    document = corpus("alloc/top-down")
    state = next(i for i, s in enumerate(document["steps"]) if s["request"]["op"] == "state")
    document["steps"][state]["response"]["result"]["file_size"] = 4096  # a number, not a string
    trace = from_vector(document)
    frame = next(f for f in trace.frames if state in f.steps)
    assert isinstance(frame.observation, Broken) and frame.problems
    html = page.render(trace)
    assert "not drawn: the expected response breaks the schema" in html
    assert "file_size" in frame.problems[0]


def test_reversed_and_malformed_observations_are_not_trusted() -> None:
    reversed_range = empty_observation(reclaim=[["8192", "4096"]])
    assert isinstance(parse(reversed_range), Broken)
    assert isinstance(parse({"file_size": "0"}), Broken)
    assert isinstance(parse("<script>"), Broken)
    assert isinstance(parse(empty_observation()), Observation)


def test_bad_files_get_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="not a vector"):
        from_vector([1, 2])
    with pytest.raises(BadInput, match="no steps"):
        from_vector({"steps": []})
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    run = subprocess.run(
        [sys.executable, "-m", "models.cli", "show", str(garbage)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "is not JSON" in run.stderr, run.stderr
    assert not (tmp_path / "garbage.html").exists()
    vector = tmp_path / "kept.json"
    vector.write_text(EXAMPLE_VECTOR.read_text())
    run = subprocess.run(
        [sys.executable, "-m", "models.cli", "show", str(vector), "-o", str(vector)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2 and "is the vector itself" in run.stderr
    assert vector.read_text() == EXAMPLE_VECTOR.read_text()


# --- Differences ---------------------------------------------------------------------------


def test_every_differing_field_is_listed_not_only_the_first() -> None:
    expected = {"ok": True, "result": {"a": ["1", "2"], "b": {"c": True}, "d": "x"}}
    actual = {"ok": True, "result": {"a": ["1", "3", "4"], "b": {"c": False}, "e": "y"}}
    paths = [f.path for f in diff.fields(expected, actual)]
    assert paths == ["result.a[1]", "result.a[2]", "result.b.c", "result.d", "result.e"]
    assert diff.fields(expected, json.loads(json.dumps(expected))) == []
    assert [f.path for f in diff.fields({"n": "1"}, {"n": 1})] == ["n"]


def test_every_differing_byte_range_is_found() -> None:
    page_ = 4096
    segment = {"range": ["0", str(4 * page_)], "kind": "Anonymous", "refs": "1"}
    expected = observation(
        file_size=str(8 * page_),
        usage=[{**segment, "known_committed": False}],
        evictable=[{"user": "u", "ranges": [["0", str(page_)]], "evicting": False}],
    )
    actual = observation(
        file_size=str(16 * page_),
        usage=[
            {**segment, "range": ["0", str(2 * page_)], "known_committed": False},
            {
                **segment,
                "range": [str(2 * page_), str(4 * page_)],
                "refs": "2",
                "known_committed": False,
            },
        ],
        reclaim=[[str(5 * page_), str(6 * page_)]],
        evictable=[],
    )
    found = [(r.start // page_, r.end // page_, r.what) for r in diff.ranges(expected, actual)]
    assert found == [
        (0, 1, ("evictable u",)),
        (2, 4, ("refs",)),
        (5, 6, ("reclaim",)),
        (8, 16, ("file_size",)),
    ]
    assert diff.ranges(expected, expected) == []


def test_a_mutant_divergence_marks_every_difference() -> None:
    (vector,) = load_vectors(CORPUS / "alloc" / "huge-alignment.json")
    result = replay_vector(vector, InProcessDriver(MUTANTS["huge-4k"]()))
    assert result.outcome is Outcome.FAILED and result.step is not None
    assert result.actual is not None and result.after is not None
    trace = from_divergence(
        vector.to_json(), result.step, result.actual, result.detail, result.after
    )
    last = trace.frames[-1]
    assert result.step in last.steps
    paths = [f.path for f in last.fields]
    assert paths[:2] == ["result[0]", "result[1]"], paths
    assert any(p.startswith("(state after) result.usage") for p in paths), paths
    assert isinstance(last.observation, Observation) and isinstance(last.actual, Observation)
    ranges = diff.ranges(last.observation, last.actual)
    assert len(ranges) >= 2
    html = page.render(trace)
    check_page(html, trace)
    check_safe(html)
    printed = text.render(trace)
    assert all(f"≠ {p}:" in printed for p in paths)
    assert printed.count("≠ bytes") == len(ranges)


def test_a_driver_that_gave_no_response_is_drawn_with_its_failure() -> None:
    document = corpus("alloc/top-down")
    trace = from_divergence(document, 2, None, "crashed: exit status 1")
    assert "crashed: exit status 1" in " ".join(trace.frames[-1].problems)
    assert "crashed: exit status 1" in page.render(trace)


def test_a_schema_breaking_port_response_is_an_error_not_a_drawing() -> None:
    document = corpus("alloc/top-down")
    state = next(i for i, s in enumerate(document["steps"]) if s["request"]["op"] == "state")
    bad = {"ok": True, "result": {"file_size": "<b>0</b>"}}
    trace = from_divergence(document, state, bad)
    frame = trace.frames[-1]
    assert isinstance(frame.actual, Broken)
    assert any("the port's response breaks the schema" in p for p in frame.problems)
    html = page.render(trace)
    assert "<b>0</b>" not in html and "&lt;b&gt;0&lt;/b&gt;" in html


# --- Counterexamples --------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SEED_DEFECT_SCENARIOS, ids=lambda s: s.name)
def test_a_model_checker_counterexample_has_a_frame_per_step_in_its_thread_lane(
    scenario: Any,
) -> None:
    violation = explore(scenario).violation
    assert violation is not None
    trace = from_violation(scenario, violation)
    assert len(trace.frames) == len(violation.trace) + 1
    assert [f"{f.lane}: {f.request}" for f in trace.frames[1:]] == list(violation.trace)
    assert set(trace.lanes) >= {f.lane for f in trace.frames[1:]}
    assert set(violation.problems) <= set(trace.frames[-1].problems)
    html = page.render(trace)
    check_page(html, trace)
    check_safe(html)


def test_a_linearizability_counterexample_is_drawn_up_to_where_it_is_stuck() -> None:
    anon, top, size = MemoryKind.ANONYMOUS, 1 << 30, 4096
    history = [
        Operation(1, "allocate", (size, anon), FileRange(top - size, top), 0, 10),
        Operation(2, "allocate", (size, anon), FileRange(top - size, top), 2, 12),
    ]
    initial = allocator.new_memory_file(MemoryFileOpts())
    verdict = linearize(history, initial, lambda s, op: apply(s, op, NO_FAULTS))
    assert not verdict.linearizable
    trace = from_linearization(
        "double allocation", verdict, initial, lambda s, op: apply(s, op, NO_FAULTS)
    )
    assert len(trace.frames) == 1 + len(verdict.stuck_after) + len(verdict.stuck_at)
    assert trace.lanes == ("t1", "t2")
    assert "cannot come next" in trace.frames[-1].problems[0]
    html = page.render(trace)
    check_page(html, trace)
    # Both calls ran at once: their real-time bars overlap.
    spans = {a["data-frame"]: float(a["x"]) for a, _ in elements(html).with_class("lane-span")}
    assert set(spans) == {"1", "2"} and spans["1"] < spans["2"]


# --- The scale, the text, the example ---------------------------------------------------------


def test_the_scale_keeps_a_page_visible_beside_a_gigabyte() -> None:
    scale = build({4096, 1 << 30, (1 << 31) - 4096}, 720)
    assert scale.x(4096) - scale.x(0) >= 30
    assert scale.x(1 << 30) - scale.x(4096) > scale.x(4096) - scale.x(0)
    assert scale.chunks == (1 << 30,)
    assert scale.x(0) == 0 and scale.x(1 << 40) == 720


def test_text_is_one_line_per_frame_with_a_band() -> None:
    trace = from_vector(corpus("reclaim/last-range-first"))
    lines = text.render(trace).splitlines()
    bands = [line for line in lines if re.match(r"^\s+\d+(-\d+)? \[", line)]
    assert len(bands) == len(trace.frames)
    assert "AAAAA" in bands[2] and "a" in bands[-3]


def test_the_example_in_the_docs_is_current() -> None:
    document = json.loads(EXAMPLE_VECTOR.read_text())
    command = f"pgalloc show {EXAMPLE_VECTOR.relative_to(ROOT)} -o {EXAMPLE.relative_to(ROOT)}"
    assert EXAMPLE.read_text() == page.render(from_vector(document)), f"regenerate: {command}"


# --- The checkers draw their counterexamples ----------------------------------------------------


def test_the_model_checker_check_draws_its_counterexample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models.explore import scenarios

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(scenarios, "DEFAULT_SCENARIOS", SEED_DEFECT_SCENARIOS[:1])
    result = scenarios.run_model_checker(0.0, lambda line: None)
    assert not result.passed
    picture = tmp_path / f"pgalloc-counterexample-{SEED_DEFECT_SCENARIOS[0].name}.html"
    assert f"picture: {picture}" in result.detail
    assert "usage_swapped" in picture.read_text()


def test_a_linearizability_failure_is_drawn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.models.test_linearizability import ReclaimsFirstRangeFirst, first_failure

    report = first_failure(ReclaimsFirstRangeFirst)
    trace = from_stress_report(report)
    assert "reclaimer" in trace.lanes
    assert len(trace.frames) == 1 + len(report.verdict.stuck_after) + len(report.verdict.stuck_at)
    assert all(
        "cannot come next" in f.problems[0] for f in trace.frames[-len(report.verdict.stuck_at) :]
    )
    check_page(page.render(trace), trace)
    monkeypatch.chdir(tmp_path)
    assert draw_counterexample(lambda: trace, "drawn") == f"picture: {tmp_path / 'drawn.html'}"
    assert (tmp_path / "drawn.html").exists()

    def broken() -> Trace:
        raise ValueError("no")

    assert draw_counterexample(broken, "not") == "picture: not drawn (ValueError: no)"

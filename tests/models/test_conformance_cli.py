"""The conformance commands never pass having checked nothing, and bad input is one line."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from models import cli
from models.conformance import generate
from models.conformance.checks import driver_command
from models.conformance.codec import Json
from models.conformance.conform import run_conform
from models.conformance.process import (
    DriverFailure,
    InProcessDriver,
    SubprocessDriver,
    check_envelope,
)
from models.conformance.protocol import FEATURES
from models.conformance.replay import VectorError, load_vectors, run_replay
from models.conformance.spec_port import SpecPort

CORPUS = generate.DEFAULT_DIRECTORY
SPEC_DRIVER = " ".join(driver_command("spec"))
TIMEOUT = 2.0
"""Per request, for the hanging driver: enough for a driver to start on a loaded machine."""


def replay(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run ``pgalloc vectors replay`` in-process: the exit status and the error output."""
    status = cli.main(["vectors", "replay", "--driver", SPEC_DRIVER, *args])
    return status, capsys.readouterr().err


def vector_document() -> dict[str, object]:
    document: dict[str, object] = json.loads((CORPUS / "alloc" / "top-down.json").read_text())
    return document


@pytest.mark.parametrize(
    ("contents", "reason"),
    [
        (None, "no such file or folder"),
        ({}, "no vector files in it"),
        ({"manifest.json": "{}"}, "no vector files in it"),
        ({"bad.json": '{"name":'}, "bad.json: not JSON: Expecting value: line 1"),
        ({"bad.json": "[1]"}, "bad.json: vector does not match vector.schema.json at (top)"),
    ],
)
def test_nothing_to_replay_is_a_one_line_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    contents: dict[str, str] | None,
    reason: str,
) -> None:
    location = tmp_path / "vectors"
    if contents is not None:
        location.mkdir()
        for name, text in contents.items():
            (location / name).write_text(text)
    status, err = replay(capsys, "--vectors", str(location))
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("pgalloc vectors replay: ")
    assert reason in err


def test_a_vector_breaking_the_schema_names_the_file_step_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = vector_document()
    steps = document["steps"]
    assert isinstance(steps, list)
    steps[2]["request"]["length"] = 4096  # a number where the schema wants a decimal string
    (tmp_path / "tampered.json").write_text(json.dumps(document))
    with pytest.raises(VectorError, match=r"tampered\.json: step 2: .* at length: "):
        load_vectors(tmp_path)
    status, err = replay(capsys, "--vectors", str(tmp_path / "tampered.json"))
    assert status == 2 and err.count("\n") == 1 and "tampered.json: step 2:" in err


def test_a_bad_manifest_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "top-down.json").write_text((CORPUS / "alloc" / "top-down.json").read_text())
    (tmp_path / "manifest.json").write_text('{"vectors": [{"path": 1}]}')
    with pytest.raises(VectorError, match=r"manifest\.json: not a vector manifest"):
        load_vectors(tmp_path)


def test_a_run_where_every_vector_was_skipped_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A driver declaring no feature skips every vector: that checked nothing."""
    script = tmp_path / "driver.py"
    script.write_text(
        "import json, sys\n"
        "for line in sys.stdin:\n"
        "    request = json.loads(line)\n"
        "    result = {'protocol': 1, 'name': 'nothing', 'features': []}\n"
        "    print(json.dumps({'id': request['id'], 'ok': True, 'result': result}), flush=True)\n"
    )
    status = cli.main(
        [
            "vectors",
            "replay",
            "--driver",
            f"{sys.executable} {script}",
            "--vectors",
            str(CORPUS / "host"),
        ]
    )
    out, err = capsys.readouterr()
    assert status == 2
    assert "0 passed, 0 failed" in out
    assert err.startswith("pgalloc vectors replay: nothing was checked") and err.count("\n") == 1


def test_a_hanging_driver_stops_the_replay_within_a_few_timeouts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every decommit vector hangs the mutant: the run stops after --max-failures of them."""
    vectors = load_vectors(CORPUS / "sequences")
    hanging = [v for v in vectors if any(s.request["op"] == "decommit" for s in v.steps)]
    assert len(hanging) > 10
    started = time.monotonic()
    with SubprocessDriver(driver_command("spec", "hangs"), timeout=TIMEOUT) as driver:
        summary = run_replay(hanging, driver, lambda line: None, max_failures=2)
    assert summary.failed == 2 and sum(summary.counts.values()) == 2
    assert summary.stopped.startswith("stopped after 2 vectors in a row where the driver timed out")
    assert time.monotonic() - started < 2 * TIMEOUT + 15  # two timeouts, two driver starts
    status = cli.main(
        [
            "vectors",
            "replay",
            "--quiet",
            "--driver",
            " ".join(driver_command("spec", "hangs")),
            "--timeout",
            str(TIMEOUT),
            "--max-failures",
            "3",
            "--vectors",
            str(CORPUS / "decommit"),
        ]
    )
    out = capsys.readouterr().out
    assert status == 1
    assert "stopped after 3 vectors in a row" in out and out.count("FAIL ") == 3


def test_a_crashing_driver_stops_the_replay_unless_allowed_more(
    capsys: pytest.CaptureFixture[str],
) -> None:
    vectors = load_vectors(CORPUS / "reclaim")  # every one of them reclaims
    with SubprocessDriver(driver_command("spec", "crashes")) as driver:
        stopped = run_replay(vectors, driver, lambda line: None, max_failures=3)
        assert stopped.failed == 3 and "where the driver crashed" in stopped.stopped
        patient = run_replay(vectors, driver, lambda line: None, max_failures=len(vectors) + 1)
        assert patient.failed == len(vectors) and not patient.stopped


def test_a_passing_vector_resets_the_count() -> None:
    vectors = load_vectors(CORPUS / "decommit")[:3]
    idle = load_vectors(CORPUS / "alloc" / "top-down.json")
    interleaved = [v for vector in vectors for v in (vector, *idle)]
    with SubprocessDriver(driver_command("spec", "hangs"), timeout=TIMEOUT) as driver:
        summary = run_replay(interleaved, driver, lambda line: None, max_failures=2)
    assert not summary.stopped and summary.failed == len(vectors)


def test_conform_stops_on_a_hung_driver() -> None:
    started = time.monotonic()
    with SubprocessDriver(driver_command("spec", "hangs"), timeout=TIMEOUT) as driver:
        result = run_conform(driver, 60.0, lambda line: None, max_failures=2)
    assert result.stopped.startswith("stopped after 2 requests timed out")
    assert result.divergence is not None and "timeout" in result.detail
    assert time.monotonic() - started < 30  # not the 60 s budget plus the shrinking's 60 s


def test_replay_summary_names_skipped_features_and_ops(tmp_path: Path) -> None:
    class NoHostNoFaults(SpecPort):
        def features(self) -> list[str]:
            return [f for f in FEATURES if f not in ("host", "kernel-faults")]

    vectors = [*load_vectors(CORPUS / "host"), *load_vectors(CORPUS / "alloc")]
    lines: list[str] = []
    summary = run_replay(vectors, InProcessDriver(NoHostNoFaults()), lines.append, quiet=True)
    host = sum("host" in v.features for v in vectors)
    assert summary.skipped_features.get("host") == host > 0
    assert "total_usage" in summary.skipped_ops and "allocate" not in summary.skipped_ops
    assert lines[-2].startswith("skipped vectors needing features the driver lacks: ")
    assert f"host ({host})" in lines[-2]
    assert lines[-1].startswith("ops never sent (only skipped vectors use them): ")


def test_a_missing_id_is_reported_as_missing() -> None:
    request: dict[str, Json] = {"op": "state"}
    with pytest.raises(DriverFailure, match=r"carries no id \(it must echo the request's id, 0\)"):
        check_envelope(request, {"ok": True, "result": None}, 0)
    with pytest.raises(DriverFailure, match="carries id 3, not 0"):
        check_envelope(request, {"id": 3, "ok": True, "result": None}, 0)


def test_failures_of_the_installed_corpus_are_drawn_outside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --vectors the corpus may sit in site-packages: pictures go to the current folder."""
    corpus = tmp_path / "corpus"
    (corpus / "alloc").mkdir(parents=True)
    (corpus / "alloc" / "huge-alignment.json").write_text(
        (CORPUS / "alloc" / "huge-alignment.json").read_text()
    )
    monkeypatch.setattr("models.conformance.replay.default_corpus", lambda: corpus)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    mutant = f"{SPEC_DRIVER} --mutant huge-4k"
    assert cli.main(["vectors", "replay", "--driver", mutant]) == 1
    drawn = work / cli.DEFAULT_PICTURES / "alloc" / "huge-alignment.divergence.html"
    assert drawn.is_file(), capsys.readouterr().out
    assert sorted(p.name for p in (corpus / "alloc").iterdir()) == ["huge-alignment.json"]
    elsewhere = tmp_path / "pictures"
    assert cli.main(["vectors", "replay", "--driver", mutant, "--pictures", str(elsewhere)]) == 1
    assert (elsewhere / "alloc" / "huge-alignment.divergence.html").is_file()

"""The conformance commands never pass having checked nothing, and bad input is one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from models import cli
from models.conformance import generate
from models.conformance.checks import driver_command
from models.conformance.replay import VectorError, load_vectors

CORPUS = generate.DEFAULT_DIRECTORY
SPEC_DRIVER = " ".join(driver_command("spec"))


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

"""``conform``: no divergence for the shipped ports; a minimal, replayable trace for wrong ones."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from models.conformance import actions
from models.conformance.actions import _simple
from models.conformance.checks import driver_command
from models.conformance.codec import Json
from models.conformance.conform import NothingToDraw, OutsideFeatures, run_conform
from models.conformance.mutants import MUTANTS
from models.conformance.port import Response
from models.conformance.process import InProcessDriver, SubprocessDriver
from models.conformance.protocol import CORE, OP_FEATURES
from models.conformance.replay import Outcome, replay, vector_paths
from models.conformance.schema import validate
from models.conformance.spec_port import SpecPort
from models.conformance.vector import Vector, derive_features, dumps


@pytest.mark.parametrize("port", ["spec", "impl"])
def test_shipped_drivers_do_not_diverge(port: str) -> None:
    with SubprocessDriver(driver_command(port)) as driver:
        result = run_conform(driver, 4.0, lambda line: None)
    assert result.divergence is None, result.detail
    assert result.examples >= 20 and result.steps > 200


def _minimal_divergence(mutant: str) -> Vector:
    driver = InProcessDriver(MUTANTS[mutant]())
    result = run_conform(driver, 60.0, lambda line: None, shrink_budget=60.0)
    assert result.divergence is not None, f"conform missed the mutant {mutant}"
    assert result.confirmed
    return result.divergence


def test_huge_alignment_mutant_shrinks_to_one_huge_allocation() -> None:
    vector = _minimal_divergence("huge-4k")
    validate("vector", json.loads(dumps(vector)))
    requests = [step.request for step in vector.steps]
    assert requests[0]["op"] == "create"
    assert requests[0]["options"] == {
        "delayed_eviction": "Default",
        "use_host_memcg_pressure": False,
        "manual_zeroing": False,
    }
    last = requests[-1]
    assert last["op"] == "allocate" and int(last["length"]) >= 2 << 20
    assert len([r for r in requests if r["op"] != "state"]) <= 4, dumps(vector)
    assert "result[0]" in vector.description
    # The spec itself passes the trace: the expected responses are the specification's.
    (passed,) = replay([vector], InProcessDriver(SpecPort()))
    assert passed.outcome is Outcome.PASSED


def test_never_reclaiming_mutant_shrinks_to_allocate_free_reclaim() -> None:
    vector = _minimal_divergence("never-reclaims")
    ops = [step.request["op"] for step in vector.steps if step.request["op"] != "state"]
    assert ops[-1] == "reclaim" and len(ops) <= 4, dumps(vector)
    (failed,) = replay([vector], InProcessDriver(MUTANTS["never-reclaims"]()))
    assert failed.outcome is Outcome.FAILED and failed.step == len(vector.steps) - 1


def test_fill_leak_mutant_shrinks_to_a_fill_whose_mapping_fails() -> None:
    vector = _minimal_divergence("fill-leaks")
    requests = [step.request for step in vector.steps]
    ops = [r["op"] for r in requests if r["op"] != "state"]
    assert ops[-1] == "allocate_and_fill" and len(ops) <= 3, dumps(vector)
    assert vector.steps[-2].response["error"] == "ENOMEM"  # the error itself is right...
    assert requests[-1]["op"] == "state" and "result.usage[0]" in vector.description  # ...not so
    injected = [r.get("faults", {}) for r in requests if r["op"] in ("create", "set_faults")]
    assert injected[-1] == {"mmap": "ENOMEM"}
    assert "kernel-faults" in derive_features(vector.steps)
    (failed,) = replay([vector], InProcessDriver(MUTANTS["fill-leaks"]()))
    assert failed.outcome is Outcome.FAILED and failed.step == len(vector.steps) - 1
    (passed,) = replay([vector], InProcessDriver(SpecPort()))
    assert passed.outcome is Outcome.PASSED


def test_conform_command_prints_a_vector_and_fails(tmp_path: Path) -> None:
    saved = tmp_path / "divergence.json"
    driver = " ".join(driver_command("spec", "huge-4k"))
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "models.cli",
            "conform",
            "--budget",
            "20",
            "--driver",
            driver,
            "--save",
            str(saved),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert finished.returncode == 1, finished.stderr
    printed = json.loads(finished.stdout)
    assert printed == json.loads(saved.read_text())
    assert printed["steps"][-1]["request"]["op"] == "allocate"
    assert "DIVERGENCE" in finished.stderr
    picture = tmp_path / "divergence.divergence.html"
    assert f"picture: {picture}" in finished.stderr and picture.with_suffix(".txt").exists()
    assert "every field that differs" in picture.read_text()
    picture.unlink()
    replayed = subprocess.run(
        [
            sys.executable,
            "-m",
            "models.cli",
            "vectors",
            "replay",
            "--driver",
            driver,
            "--vectors",
            str(saved),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert replayed.returncode == 1 and "FAIL" in replayed.stdout
    assert f"picture: {picture}" in replayed.stdout and picture.exists()


def test_conform_reports_a_crashing_driver_with_its_trace() -> None:
    with SubprocessDriver(driver_command("spec", "crashes")) as driver:
        result = run_conform(driver, 60.0, lambda line: None, shrink_budget=5.0)
    assert result.divergence is not None
    assert "crashed" in result.detail and "panic" in result.detail
    assert result.divergence.steps[-1].request["op"] == "reclaim"


def test_replay_command() -> None:
    replayed = subprocess.run(
        [
            sys.executable,
            "-m",
            "models.cli",
            "vectors",
            "replay",
            "--quiet",
            "--driver",
            " ".join(driver_command("impl")),
            "--vectors",
            "vectors/evict",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert replayed.returncode == 0, replayed.stdout
    count = len(vector_paths(Path("vectors/evict")))
    assert f"pgalloc-impl: {count} passed, 0 failed" in replayed.stdout


class _Declares(SpecPort):
    """The specification, declaring only some features, refusing and recording the rest."""

    def __init__(self, features: list[str]) -> None:
        super().__init__()
        self.declared = features
        self.ops: Counter[str] = Counter()

    def features(self) -> list[str]:
        return self.declared

    def handle(self, request: dict[str, Json]) -> Response:
        op = str(request["op"])
        self.ops[op] += 1
        if OP_FEATURES[op] not in (CORE, *self.declared):
            return {"ok": False, "error": "not-supported"}
        return super().handle(request)


def test_conform_sends_only_the_declared_features() -> None:
    port = _Declares(["alloc", "refcount"])
    result = run_conform(InProcessDriver(port), 3.0, lambda line: None)
    assert result.divergence is None and result.ended == {}, result.detail
    assert set(port.ops) <= {"create", "state", "allocate", "total_size", "inc_ref", "dec_ref"}
    assert port.ops["allocate"] and port.ops["dec_ref"] and port.ops["inc_ref"]
    assert result.exercised and result.sent == dict(port.ops)


def test_conform_refuses_to_draw_outside_the_declared_features(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The guard has teeth: an action sending destroy under ``alloc`` is stopped at once."""
    monkeypatch.setattr(actions, "ACTIONS", [(_simple("destroy"), 1, "alloc")])
    port = _Declares(["alloc"])
    with pytest.raises(OutsideFeatures, match="needing \\['destroy'\\]"):
        run_conform(InProcessDriver(port), 3.0, lambda line: None)
    assert port.ops["destroy"] == 0


def test_conform_with_nothing_to_draw_is_an_error() -> None:
    with pytest.raises(NothingToDraw, match="declares \\['refcount'\\]"):
        run_conform(InProcessDriver(_Declares(["refcount"])), 3.0, lambda line: None)
    bad_input_only = run_conform(InProcessDriver(_Declares(["bad-input"])), 1.0, print)
    assert not bad_input_only.exercised  # the command reports that as "nothing was checked"

"""The runner catches wrong ports and survives drivers that crash, hang or print garbage."""

from __future__ import annotations

import sys
import time

import pytest

from models.conformance import generate
from models.conformance.checks import driver_command
from models.conformance.process import DriverFailure, InProcessDriver, SubprocessDriver
from models.conformance.protocol import FEATURES
from models.conformance.replay import Outcome, VectorResult, load_vectors, replay
from models.conformance.spec_port import SpecPort
from models.conformance.vector import Vector

CORPUS = generate.DEFAULT_DIRECTORY


def run(mutant: str, folder: str, *, timeout: float = 10.0) -> list[VectorResult]:
    with SubprocessDriver(driver_command("spec", mutant), timeout=timeout) as driver:
        return list(replay(load_vectors(CORPUS / folder), driver))


def failures(results: list[VectorResult]) -> dict[str, VectorResult]:
    return {r.name: r for r in results if r.outcome is Outcome.FAILED}


def test_huge_allocations_aligned_to_4k_are_caught_at_the_allocation() -> None:
    failed = failures(run("huge-4k", "alloc"))
    result = failed["alloc/huge-alignment"]
    assert result.step == 4  # create, state, allocate(page), state, allocate(2 MiB)
    assert '"length": "2097152"' in result.detail and "result[0]: expected" in result.detail
    assert "alloc/top-down" not in failed


def test_a_reclaimer_that_never_runs_is_caught() -> None:
    failed = failures(run("never-reclaims", "reclaim"))
    assert failed["reclaim/last-range-first"].detail.startswith('{"op": "reclaim"}: result: 0 ')
    assert "reclaim/idle" not in failed


def test_reclaim_order_and_zeroing_are_checked() -> None:
    order = failures(run("reclaims-first-first", "reclaim"))
    assert set(order) == {"reclaim/last-range-first"}
    zeroes = failures(run("reclaim-keeps-data", "reclaim"))
    assert '"op": "read"' in zeroes["reclaim/reused-reads-zero"].detail


def test_malformed_results_are_reported_as_malformed() -> None:
    failed = failures(run("number", "alloc"))
    assert "malformed response" in failed["alloc/first-page-grows-file"].detail


def test_a_crashing_driver_is_reported_and_restarted() -> None:
    results = run("crashes", "reclaim")
    failed = failures(results)
    idle = failed["reclaim/idle"]
    assert "driver crashed" in idle.detail and "exit status 2" in idle.detail
    assert "panic: deliberately crashing on reclaim" in idle.detail
    assert len(failed) == len(results)  # every vector reclaims, each with a fresh driver


def test_a_hanging_driver_times_out_and_the_run_goes_on() -> None:
    started = time.monotonic()
    results = run("hangs", "decommit", timeout=1.0)
    assert time.monotonic() - started < 30
    failed = failures(results)
    assert "timeout" in failed["decommit/bad-ranges"].detail
    assert '"op": "decommit"' in failed["decommit/bad-ranges"].detail
    assert len(results) == len(load_vectors(CORPUS / "decommit"))


def test_a_driver_printing_garbage_is_malformed() -> None:
    failed = failures(run("garbage", "alloc", timeout=5.0))
    result = failed["alloc/first-page-grows-file"]
    assert "not JSON" in result.detail and "this is not JSON" in result.detail
    assert '"op": "total_size"' in result.detail


def test_aborting_on_out_of_contract_calls_is_allowed() -> None:
    results = run("aborts", "refcount")
    assert all(r.outcome is Outcome.PASSED for r in results), results
    aborted = [r for r in results if r.detail == "aborted (allowed)"]
    assert [r.name for r in aborted] == ["refcount/bad-ranges"]


def test_a_driver_that_cannot_start_or_say_hello() -> None:
    with pytest.raises(DriverFailure, match="cannot start"):
        SubprocessDriver(["/nonexistent/driver"])
    with pytest.raises(DriverFailure, match="crashed"):
        SubprocessDriver([sys.executable, "-c", "pass"])
    with pytest.raises(DriverFailure, match="not JSON"):
        SubprocessDriver([sys.executable, "-c", "print('hello'); import time; time.sleep(9)"])


def test_vectors_needing_missing_features_are_skipped() -> None:
    class NoHost(SpecPort):
        def features(self) -> list[str]:
            return [f for f in FEATURES if f != "host"]

    vectors = load_vectors(CORPUS / "host")
    results = list(replay(vectors, InProcessDriver(NoHost())))
    assert {r.outcome for r in results} == {Outcome.SKIPPED}
    assert "needs host" in results[0].detail


def test_not_supported_makes_a_vector_unsupported() -> None:
    class NoMappings(SpecPort):
        def handle(self, request: dict[str, object]) -> dict[str, object]:
            if request["op"] == "map_internal":
                return {"ok": False, "error": "not-supported"}
            return super().handle(request)

    vector: Vector = load_vectors(CORPUS / "map" / "write-read.json")[0]
    (result,) = replay([vector], InProcessDriver(NoMappings()))
    assert result.outcome is Outcome.UNSUPPORTED and result.step == 4


def test_a_fill_that_keeps_its_allocation_when_mapping_fails_is_caught() -> None:
    failed = failures(run("fill-leaks", "faults"))
    assert set(failed) == {"faults/fill-mmap-fails-releases"}
    result = failed["faults/fill-mmap-fails-releases"]
    # create, state, allocate_and_fill (ENOMEM, as expected), then the state shows the leak.
    assert result.step == 3
    assert result.detail.startswith('{"op": "state"}: result.usage[0].kind: expected "System"')


def test_a_port_without_kernel_faults_still_replays_the_rest() -> None:
    class PunchFaultsOnly(SpecPort):
        def features(self) -> list[str]:
            return [f for f in FEATURES if f != "kernel-faults"]

    vectors = load_vectors(CORPUS)
    results = {r.name: r for r in replay(vectors, InProcessDriver(PunchFaultsOnly()))}
    skipped = {name for name, r in results.items() if r.outcome is Outcome.SKIPPED}
    needing = {v.name for v in vectors if "kernel-faults" in v.features}
    assert skipped == needing
    assert {n for n in needing if n.startswith("faults/")} and not any(
        n.startswith(("random/", "random-host/", "sequences/")) for n in needing
    )
    assert "needs kernel-faults" in results["faults/reclaimer-double-fault"].detail
    passed = {name for name, r in results.items() if r.outcome is Outcome.PASSED}
    assert passed == set(results) - needing
    assert "decommit/punch-fails" in passed  # the punch fault at create is feature faults

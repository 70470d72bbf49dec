"""Deliberately wrong ports: the evidence that the runner catches real divergences.

Each mutant is the specification with one defect a port could plausibly
have, or a driver that misbehaves as a process. ``pgalloc driver spec
--mutant NAME`` serves one, so a porter can see what a failure report
looks like, and the tests show that ``vectors replay`` and ``conform``
catch every one with a minimal trace.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from unittest import mock

from models.conformance.codec import Json
from models.conformance.port import Response
from models.conformance.spec_port import SpecPort
from spec import allocator
from spec.state import SEED
from spec.vocabulary import PAGE_SIZE


class HugeAlignedTo4K(SpecPort):
    """Aligns huge allocations to 4 KiB, like a port that forgot the hugepage rule."""

    name = "mutant-huge-4k"

    def handle(self, request: dict[str, Json]) -> Response:
        with mock.patch.object(allocator, "allocation_alignment", lambda length: PAGE_SIZE):
            return super().handle(request)


class NeverReclaims(SpecPort):
    """A reclaimer that never runs: freed pages are never returned or reused."""

    name = "mutant-never-reclaims"

    def op_reclaim(self, request: dict[str, Json]) -> Json:
        return []


class ReclaimsFirstRangeFirst(SpecPort):
    """A reclaimer that takes the lowest freed range first (the seed takes the last)."""

    name = "mutant-reclaims-first-first"

    def op_reclaim(self, request: dict[str, Json]) -> Json:
        ranges = super().op_reclaim(request)
        assert isinstance(ranges, list)
        return sorted(ranges, key=lambda pair: int(pair[0]))


class ReclaimKeepsData(SpecPort):
    """A reclaimer that neither punches nor zeroes: reused memory keeps its old bytes."""

    name = "mutant-reclaim-keeps-data"

    def op_reclaim(self, request: dict[str, Json]) -> Json:
        opts = self.spec.state.opts
        self.spec.state = replace(self.spec.state, opts=replace(opts, manual_zeroing=True))
        try:
            return super().op_reclaim(request)
        finally:
            self.spec.state = replace(self.spec.state, opts=opts)


class FillLeaksOnMapFailure(SpecPort):
    """allocate_and_fill that keeps its allocation when mapping it fails (mmap): a leak.

    The seed's AllocateAndFill calls DecRef on the range before returning
    MapInternal's error; a port that returns the error alone leaves the
    pages allocated, with a reference nobody holds.
    """

    name = "mutant-fill-leaks"

    def op_allocate_and_fill(self, request: dict[str, Json]) -> Json:
        with mock.patch.object(self.spec, "dec_ref", lambda fr: None):
            return super().op_allocate_and_fill(request)


class CrashesOnReclaim(SpecPort):
    """Exits (as a panic would) when asked to reclaim."""

    name = "mutant-crashes"

    def op_reclaim(self, request: dict[str, Json]) -> Json:
        print("panic: deliberately crashing on reclaim", file=sys.stderr, flush=True)
        os._exit(2)


class HangsOnDecommit(SpecPort):
    """Never answers a decommit."""

    name = "mutant-hangs"

    def op_decommit(self, request: dict[str, Json]) -> Json:
        time.sleep(3600)
        return None


class GarbageOnTotalSize(SpecPort):
    """Prints something that is not JSON in answer to total_size."""

    name = "mutant-garbage"

    def op_total_size(self, request: dict[str, Json]) -> Json:
        sys.stdout.write("this is not JSON\n")
        sys.stdout.flush()
        time.sleep(3600)
        return None


class WrongResultShape(SpecPort):
    """Answers total_size with a JSON number, breaking the decimal-string rule."""

    name = "mutant-number"

    def op_total_size(self, request: dict[str, Json]) -> Json:
        return self.spec.total_size()


class AbortsOnContract(SpecPort):
    """Exits on every out-of-contract call, as a port that panics would: allowed."""

    name = "mutant-aborts"

    def handle(self, request: dict[str, Json]) -> Response:
        response = super().handle(request)
        if not response["ok"] and response["error"] == "contract":
            os._exit(2)
        return response


class SeedFaithful(SpecPort):
    """The specification with the seed's defects restored: a port faithful to the seed.

    It declares every feature but ``unmark-empty`` (the one defect the protocol
    can show, docs/divergences.md D4), so it replays the corpus clean, and
    ``conform`` never draws that input for it.
    """

    name = "pgalloc-spec-seed"

    def __init__(self) -> None:
        super().__init__(defects=SEED)

    def features(self) -> list[str]:
        return [feature for feature in super().features() if feature != "unmark-empty"]


MUTANTS: dict[str, Callable[[], SpecPort]] = {
    "huge-4k": HugeAlignedTo4K,
    "never-reclaims": NeverReclaims,
    "reclaims-first-first": ReclaimsFirstRangeFirst,
    "reclaim-keeps-data": ReclaimKeepsData,
    "fill-leaks": FillLeaksOnMapFailure,
    "crashes": CrashesOnReclaim,
    "hangs": HangsOnDecommit,
    "garbage": GarbageOnTotalSize,
    "number": WrongResultShape,
    "aborts": AbortsOnContract,
    "seed": SeedFaithful,
}
"""The mutants by name; ``aborts`` (the abort allowance) and ``seed`` (the seed's defects,
declared) are not wrong and must pass."""

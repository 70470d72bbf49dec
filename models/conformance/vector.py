"""The vector format: one scenario as a transcript of requests and expected responses.

A vector names its format and protocol versions, the gVisor version it
describes, the pgalloc (specification) version that produced it, and the
feature tags of everything it exercises, derived from its steps so they
cannot drift. Its first step creates the file. Vectors are written in one
canonical text form (one step per line) so that regeneration is
byte-for-byte reproducible and diffs read step by step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

from models.conformance import protocol
from models.conformance.codec import Json
from models.conformance.protocol import DESCRIBES, FEATURES, FORMAT_VERSION, PROTOCOL_VERSION
from models.conformance.schema import validate_vector

HUGE_FILE = 1 << 40
"""Vectors whose file grows to this size or beyond (their state shows it) are tagged
growth-overflow, and only those."""

OP_FEATURES: dict[str, tuple[str, ...]] = {
    op: ("alloc", feature) if op == "allocate_and_fill" else (feature,)
    for op, feature in protocol.OP_FEATURES.items()
    if feature != protocol.CORE and op != "update_usage"
}
"""The tags a step of each op gives its vector (``protocol.OP_FEATURES``, without the core;
update_usage's depends on its fields, see :func:`derive_features`)."""


@cache
def spec_version() -> str:
    """The version of the pgalloc specification producing expected responses."""
    return metadata.version("pgalloc")


@dataclass(frozen=True, slots=True)
class Step:
    request: dict[str, Json]
    response: dict[str, Json]


@dataclass(frozen=True, slots=True)
class Vector:
    name: str
    description: str
    steps: tuple[Step, ...]
    features: tuple[str, ...] = ()
    spec_version: str = ""

    def to_json(self) -> dict[str, Json]:
        return {
            "format": FORMAT_VERSION,
            "protocol": PROTOCOL_VERSION,
            "name": self.name,
            "description": self.description,
            "describes": DESCRIBES,
            "spec_version": self.spec_version or spec_version(),
            "features": list(self.features or derive_features(self.steps)),
            "steps": [{"request": s.request, "response": s.response} for s in self.steps],
        }

    @staticmethod
    def from_json(document: Json, *, trusted: bool = False) -> Vector:
        """A vector from its JSON, validated against vector.schema.json unless ``trusted``."""
        if not trusted:
            validate_vector(document)
        return Vector(
            name=document["name"],
            description=document["description"],
            steps=tuple(Step(s["request"], s["response"]) for s in document["steps"]),
            features=tuple(document["features"]),
            spec_version=document["spec_version"],
        )


def _fault_features(faults: dict[str, str]) -> set[str]:
    """The features ``faults`` needs: punch_hole is ``faults``, the others ``kernel-faults``."""
    return {"faults" if call == "punch_hole" else "kernel-faults" for call in faults}


def _unmarks_inside(request: dict[str, Json], evictable: dict[str, list[tuple[int, int]]]) -> bool:
    """Whether ``request`` unmarks an empty range strictly inside one of the user's ranges."""
    start, end = (int(bound) for bound in request["range"])
    user_ranges = evictable.get(str(request["user"]), [])
    return start == end and any(s < start < e for s, e in user_ranges)


def derive_features(steps: tuple[Step, ...]) -> tuple[str, ...]:
    """The feature tags of ``steps``, in the order of :data:`FEATURES`."""
    found: set[str] = set()
    evictable: dict[str, list[tuple[int, int]]] = {}
    """Each user's evictable ranges, as the last state step showed them."""
    for step in steps:
        request, response = step.request, step.response
        op = request["op"]
        found.update(OP_FEATURES.get(op, ()))
        if op == "mark_unevictable" and _unmarks_inside(request, evictable):
            found.add("unmark-empty")
        if op == "state" and response["ok"]:
            evictable = {
                entry["user"]: [(int(s), int(e)) for s, e in entry["ranges"]]
                for entry in response["result"]["evictable"]
            }
        if op == "create":
            options = request["options"]
            if options["manual_zeroing"]:
                found.add("manual-zeroing")
            if options["use_host_memcg_pressure"]:
                found.add("memcg")
            if options["delayed_eviction"] == "Invalid":
                found.add("options")
        if op in ("create", "set_faults"):
            faults = request.get("faults", {})
            found.update(_fault_features(faults))
        if op == "update_usage":
            found.add("usage" if "committed" in request else "host")
        if not response["ok"]:
            if response["error"] == "contract":
                found.add("bad-input")
        elif op == "state" and int(response["result"]["file_size"]) >= HUGE_FILE:
            # Only a file that really grows needs the feature: a length that can never
            # fit (ENOMEM) leaves the file as it was, and is plain alloc.
            found.add("growth-overflow")
    return tuple(feature for feature in FEATURES if feature in found)


def dumps(vector: Vector) -> str:
    """The canonical text of ``vector``: stable key order, one step per line."""
    document = vector.to_json()
    steps = document.pop("steps")
    lines = [f"  {json.dumps(key)}: {json.dumps(value)}," for key, value in document.items()]
    body = ",\n".join(f"    {json.dumps(step)}" for step in steps)
    return "{\n" + "\n".join(lines) + '\n  "steps": [\n' + body + "\n  ]\n}\n"


def load(path: Path, *, trusted: bool = False) -> Vector:
    with path.open() as stream:
        return Vector.from_json(json.load(stream), trusted=trusted)

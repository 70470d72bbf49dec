"""Drawing a long vector: ``pgalloc show`` on 500 steps, against the 1 s the issue allows.

The vector is recorded from the specification: 250 requests (allocations of
mixed kinds and sizes, frees, reclaims, evictable marks for a few users),
each followed by its ``state`` step. The figure is the time to build the
trace and write the whole page, best of a few runs; the baseline is the
time to read and schema-check the same vector, the least any drawing must do.
Both start cold: the schema module's memo of accepted messages is emptied first.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

from bench.harness import Figure, at_most, best_of
from models.conformance import schema
from models.conformance.schema import validate_vector
from models.conformance.spec_port import SpecPort
from models.conformance.vector import Step, Vector
from models.picture import page
from models.picture.trace import from_vector

BUILDS = ("any",)
"""Draws the spec's run: impl's build plays no part."""
TARGET_SECONDS = 1.0
OPTIONS = {"delayed_eviction": "Manual", "use_host_memcg_pressure": False, "manual_zeroing": False}
KINDS = ("Anonymous", "PageCache", "Tmpfs", "System")


def long_vector(steps: int = 500, seed: int = 0) -> dict[str, Any]:
    """A vector of ``steps`` steps from the specification (requests, each then ``state``)."""
    rnd = random.Random(seed)
    port = SpecPort()
    held: list[list[str]] = []
    recorded: list[dict[str, Any]] = []

    def send(request: dict[str, Any]) -> dict[str, Any]:
        response = port.handle(request)
        recorded.append({"request": request, "response": response})
        return response

    send({"op": "create", "options": OPTIONS})
    send({"op": "state"})
    while len(recorded) < steps:
        roll = rnd.random()
        if roll < 0.45 or not held:
            pages = rnd.choice((1, 1, 2, 3, 8, 512))
            kind = rnd.choice(KINDS)
            response = send({"op": "allocate", "length": str(pages * 4096), "kind": kind})
            if response["ok"]:
                held.append(response["result"])
        elif roll < 0.75:
            send({"op": "dec_ref", "range": held.pop(rnd.randrange(len(held)))})
        elif roll < 0.85:
            send({"op": "reclaim"})
        else:
            user = rnd.choice(("alpha", "beta", "gamma"))
            send({"op": "mark_evictable", "user": user, "range": rnd.choice(held)})
        send({"op": "state"})
    name = f"bench/long-{steps}"
    described = f"{steps} steps recorded from the specification (seed {seed})."
    kept = tuple(Step(s["request"], s["response"]) for s in recorded[:steps])
    return Vector(name, described, kept).to_json()


def run(quick: bool) -> list[Figure]:
    document = long_vector()
    text = json.dumps(document)

    def cold() -> None:
        """Forget the messages the schema module remembers having accepted: a first draw."""
        schema._checked_request.cache_clear()
        schema._checked_response.cache_clear()

    def read() -> float:
        cold()
        started = time.perf_counter()
        validate_vector(json.loads(text))
        return time.perf_counter() - started

    def draw() -> float:
        cold()
        started = time.perf_counter()
        page.render(from_vector(json.loads(text)))
        return time.perf_counter() - started

    repeats = 3 if quick else 7
    baseline = best_of(repeats, read)
    drawn = best_of(repeats, draw)
    return [
        at_most(
            "pgalloc show, 500 steps",
            drawn,
            "s",
            "read + schema-check",
            baseline,
            TARGET_SECONDS / baseline,
        )
    ]

"""Recording a vector: drive the checked specification and keep every exchange.

A :class:`Recorder` sends requests to a :class:`SpecPort` that checks the
specification's invariants after each one, keeps each request with the
response the specification gave, and follows every request that may change
the state with a ``state`` request, so a replay pinpoints the first step
where a port's state departs. Small helpers spell the common requests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from models.conformance import codec
from models.conformance.codec import Json
from models.conformance.protocol import QUERY_OPS
from models.conformance.spec_port import SpecPort
from models.conformance.vector import Step, Vector
from spec.vocabulary import (
    MILLISECOND,
    READ_WRITE,
    SECOND,
    AccessType,
    FileRange,
    MemoryFileOpts,
)

Range = tuple[int, int]
HOST = "host"
"""``update_usage(committed=HOST)``: let the driver ask the real host (feature host)."""
MODEL = "model"
"""``update_usage(committed=MODEL)``: give the pages the specification's host model holds."""


class GeneratorBug(AssertionError):
    """A recorder was asked for a request the protocol does not allow."""


class Recorder:
    """Records one vector (see the module docstring)."""

    def __init__(
        self,
        name: str,
        description: str,
        options: MemoryFileOpts = MemoryFileOpts(),
        *,
        faults: dict[str, str] | None = None,
        invalid_options: bool = False,
        observer: Callable[[Step], None] | None = None,
    ) -> None:
        self.name = name
        self.observer = observer
        """Called with each step as it is recorded (conform sends it to the port there)."""
        self.description = description
        self.port = SpecPort(checked=True)
        self.steps: list[Step] = []
        self.next_mapping = 0
        self.clock = SECOND
        """The clock of update_usage, ns; starts at 1 s (see the format's rule on ``now``)."""
        create: dict[str, Json] = {
            "op": "create",
            "options": codec.options_json(options, invalid=invalid_options),
        }
        if faults:
            create["faults"] = faults
        self.call(create)

    # --- Core -------------------------------------------------------------------------

    def call(self, request: dict[str, Json], *, state: bool = True) -> dict[str, Json]:
        """Send ``request``, record it, then record a state check unless it changes nothing."""
        response = self.port.handle(request)
        if not response["ok"] and response["error"] == "bad-request":
            raise GeneratorBug(f"{self.name}: {request} -> {response}")
        step = Step(request, response)
        self.steps.append(step)
        if self.observer is not None:
            self.observer(step)
        live = self.port.file is not None and not self.port.destroyed
        if state and live and request["op"] not in QUERY_OPS:
            self.state()
        return response

    def state(self) -> dict[str, Json]:
        return self.call({"op": "state"})

    def vector(self) -> Vector:
        return Vector(self.name, self.description, tuple(self.steps))

    @property
    def live(self) -> bool:
        return self.port.file is not None and not self.port.destroyed

    # --- Spelled requests ---------------------------------------------------------------

    def allocate(self, length: int, kind: str = "Anonymous") -> FileRange | None:
        response = self.call({"op": "allocate", "length": codec.u64(length), "kind": kind})
        return FileRange(*codec.parse_pair(response["result"])) if response["ok"] else None

    def fill(
        self,
        length: int,
        data: bytes | int,
        kind: str = "PageCache",
        reader_error: str | None = None,
    ) -> FileRange | None:
        """allocate_and_fill; ``data`` as bytes (sent in hex) or a count of pattern bytes."""
        payload = {"pattern": codec.u64(data)} if isinstance(data, int) else codec.data_json(data)
        request: dict[str, Json] = {
            "op": "allocate_and_fill",
            "length": codec.u64(length),
            "kind": kind,
            "data": payload,
        }
        if reader_error is not None:
            request["reader_error"] = reader_error
        response = self.call(request)
        if not response["ok"]:
            return None
        return FileRange(*codec.parse_pair(response["result"]["range"]))

    def _range_op(self, op: str, fr: Range) -> dict[str, Json]:
        return self.call({"op": op, "range": codec.range_json(*fr)})

    def inc_ref(self, fr: Range) -> dict[str, Json]:
        return self._range_op("inc_ref", fr)

    def dec_ref(self, fr: Range) -> dict[str, Json]:
        return self._range_op("dec_ref", fr)

    def decommit(self, fr: Range) -> dict[str, Json]:
        return self._range_op("decommit", fr)

    def map(self, fr: Range, access: AccessType = READ_WRITE) -> int | None:
        """map_internal; the mapping's number, or None if it failed."""
        number = self.next_mapping
        response = self.call(
            {
                "op": "map_internal",
                "range": codec.range_json(*fr),
                "access": codec.access_json(access),
                "mapping": number,
            }
        )
        if not response["ok"]:
            return None
        self.next_mapping += 1
        return number

    def write(self, mapping: int, offset: int, data: bytes | int) -> dict[str, Json]:
        payload = {"pattern": codec.u64(data)} if isinstance(data, int) else codec.data_json(data)
        return self.call(
            {"op": "write", "mapping": mapping, "offset": codec.u64(offset), "data": payload}
        )

    def read(self, mapping: int, fr: Range) -> bytes:
        response = self.call({"op": "read", "mapping": mapping, "range": codec.range_json(*fr)})
        return bytes.fromhex(response["result"]) if response["ok"] else b""

    def touch(self, fr: Range, data: bytes = b"\x01") -> None:
        """Map ``fr`` and write ``data`` at its start (which commits the page)."""
        mapping = self.map(fr)
        if mapping is not None:
            self.write(mapping, fr[0], data)

    def mark_evictable(self, user: str, er: Range) -> dict[str, Json]:
        return self.call({"op": "mark_evictable", "user": user, "range": codec.range_json(*er)})

    def mark_unevictable(self, user: str, er: Range) -> dict[str, Json]:
        return self.call({"op": "mark_unevictable", "user": user, "range": codec.range_json(*er)})

    def mark_all_unevictable(self, user: str) -> dict[str, Json]:
        return self.call({"op": "mark_all_unevictable", "user": user})

    def set_faults(self, **faults: str) -> dict[str, Json]:
        """From now on these kernel calls fail (``mmap="ENOMEM"``...); none given: clear them."""
        return self.call({"op": "set_faults", "faults": faults})

    def simple(self, op: str) -> dict[str, Json]:
        """A request with no arguments (reclaim, run_evictions, destroy, total_size...)."""
        return self.call({"op": op})

    def update_usage(
        self, advance: int = 20 * MILLISECOND, committed: str | Sequence[Range] = MODEL
    ) -> dict[str, Json]:
        """Advance the clock by ``advance`` ns, then update_usage.

        ``committed``: :data:`MODEL` (the pages the specification's host model
        holds), :data:`HOST` (ask the real host), or explicit ranges. Explicit
        pages that update_usage could mark (live, not known committed) must be
        committed in the host model, so that the invariant "known committed
        means committed" keeps checking the specification; anywhere else they
        may say anything (they are then booked as swap).
        """
        self.clock += advance
        request: dict[str, Json] = {"op": "update_usage", "now": codec.u64(self.clock)}
        if committed == MODEL:
            request["committed"] = codec.ranges_json(self.model_committed())
        elif committed != HOST:
            assert not isinstance(committed, str)
            request["committed"] = codec.ranges_json(committed)
        return self.call(request)

    def model_committed(self) -> list[Range]:
        """The committed pages of the specification's host model, right now."""
        if not self.live:
            return []
        return [tuple(fr) for fr in self.port.spec.state.host.committed.ranges()]  # type: ignore[misc]

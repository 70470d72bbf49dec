"""The driver side of the protocol: one session's requests applied to a MemoryFile.

A :class:`Port` turns a decoded request into calls on a memory file and the
outcome into a response: the result, or a language-neutral error (a
``ContractViolation`` becomes ``contract`` with its subclass as
``violation``, an ``OSError`` its errno name, invalid options ``EINVAL``).
:class:`MemoryFilePort` does this for any :class:`spec.vocabulary.MemoryFileApi`
(``SpecMemoryFile`` and ``impl.MemoryFile``), generic over what its
``map_internal`` returns; subclasses supply only what differs: construction,
the injected kernel faults, ``update_usage``'s inputs and mappings.
``models/conformance/driver.py`` serves a port over stdin/stdout; the
runner can also call one in-process.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from models.conformance import codec
from models.conformance.codec import BadRequest, Json
from models.conformance.protocol import FEATURES, PROTOCOL_VERSION
from spec.errors import ContractViolation, InvalidOptions, UseAfterDestroy
from spec.vocabulary import (
    NO_FAULTS,
    AccessType,
    BytesReader,
    EvictableRange,
    FileRange,
    HostFaults,
    MemoryFileApi,
    MemoryFileOpts,
    MemoryKind,
    Observation,
)

Blocks = TypeVar("Blocks", bound=Sequence[object])
"""What the port's memory file's ``map_internal`` returns."""

Response = dict[str, Json]


@dataclass(frozen=True, slots=True)
class NamedUser:
    """An EvictableMemoryUser known by its name; Evict does nothing (the port reports it)."""

    name: str

    def evict(self, er: EvictableRange) -> None:
        del er  # run_evictions returns the deliveries; nothing else is asked of a user


def user_name(user: Hashable) -> str:
    """How the protocol names a user: by its name (every user a port makes is a NamedUser)."""
    return user.name if isinstance(user, NamedUser) else str(user)


class ReaderError(Exception):
    """The error a fill's reader fails with: carries the request's ``reader_error`` name."""


def ok(result: Json) -> Response:
    return {"ok": True, "result": result}


def error(code: str, message: str, violation: str | None = None) -> Response:
    response: Response = {"ok": False, "error": code}
    if violation is not None:
        response["violation"] = violation
    response["message"] = message
    return response


class Port(ABC):
    """Answers the requests of one driver session."""

    name: str

    @abstractmethod
    def features(self) -> list[str]:
        """The feature tags this port supports (vectors needing others are skipped)."""

    @abstractmethod
    def handle(self, request: dict[str, Json]) -> Response:
        """The response to ``request`` (without its id)."""

    def close(self) -> None:  # noqa: B027 - most ports hold nothing to release
        """Release whatever the session holds (the driver is exiting)."""


@dataclass(slots=True)
class Mapping(Generic[Blocks]):
    """The blocks an earlier map_internal returned, kept under the request's number."""

    range: FileRange
    blocks: Blocks
    """What the memory file returned (file ranges for the spec, memoryviews for impl)."""


class MemoryFilePort(Port, Generic[Blocks]):
    """A port over any ``MemoryFileApi`` (see the module docstring)."""

    def __init__(self) -> None:
        self.file: MemoryFileApi[Blocks] | None = None
        self.destroyed = False
        self.mappings: dict[int, Mapping[Blocks]] = {}
        self.users: dict[str, NamedUser] = {}

    @property
    def api(self) -> MemoryFileApi[Blocks]:
        """The session's memory file (``handle`` answers a request before ``create`` itself)."""
        if self.file is None:
            raise BadRequest("no memory file: send create first")
        return self.file

    # --- What subclasses supply -------------------------------------------------------

    @abstractmethod
    def create_file(self, opts: MemoryFileOpts, faults: HostFaults) -> MemoryFileApi[Blocks]:
        """A new memory file with ``opts`` whose kernel calls fail as ``faults`` says.

        Raise InvalidOptions as the spec does, then a failing ``ftruncate``'s OSError.
        """

    @abstractmethod
    def set_faults(self, faults: HostFaults) -> None:
        """From now on the file's kernel calls fail as ``faults`` says (and only those)."""

    @abstractmethod
    def update_usage(self, now: int, committed: list[FileRange] | None) -> None:
        """UpdateUsage at clock ``now`` (ns); fstat/mincore answer from ``committed`` if given."""

    @abstractmethod
    def blocks(self, blocks: Blocks, fr: FileRange) -> list[tuple[int, int]]:
        """The file range each block of a map_internal result covers."""

    @abstractmethod
    def write_mapped(self, mapping: Mapping[Blocks], offset: int, data: bytes) -> None:
        """Copy ``data`` into ``mapping``'s blocks at file offset ``offset``."""

    @abstractmethod
    def read_mapped(self, mapping: Mapping[Blocks], fr: FileRange) -> bytes:
        """Copy ``fr`` out of ``mapping``'s blocks."""

    def observe(self) -> Observation:
        """The file's observation, users labelled by name."""
        return self.api.observation(label=user_name)

    def release(self) -> None:
        """Drop the session's mappings (before the file is destroyed or replaced)."""
        self.mappings.clear()

    # --- Dispatch ---------------------------------------------------------------------

    def handle(self, request: dict[str, Json]) -> Response:
        op = request.get("op")
        handler: Callable[[dict[str, Json]], Json] | None = getattr(self, f"op_{op}", None)
        if not isinstance(op, str) or handler is None:
            return error("bad-request", f"unknown op {op!r}")
        if op not in ("hello", "create") and self.file is None:
            return error("bad-request", f"{op} before create")
        try:
            return ok(handler(request))
        except BadRequest as failure:
            return error("bad-request", str(failure))
        except ContractViolation as failure:
            return error("contract", str(failure), type(failure).__name__)
        except InvalidOptions as failure:
            return error("EINVAL", str(failure))
        except OSError as failure:
            return error(codec.errno_name(failure.errno or 0), str(failure))

    def features(self) -> list[str]:
        return list(FEATURES)

    def close(self) -> None:
        self.release()
        if self.file is not None and not self.destroyed:
            self.set_faults(NO_FAULTS)  # the session is over: let the file go quietly
            self.file.destroy()

    # --- Requests -------------------------------------------------------------------------

    def op_hello(self, request: dict[str, Json]) -> Json:
        if request.get("protocol") != PROTOCOL_VERSION:
            raise BadRequest(f"this driver speaks protocol {PROTOCOL_VERSION} only")
        return {"protocol": PROTOCOL_VERSION, "name": self.name, "features": self.features()}

    def op_create(self, request: dict[str, Json]) -> Json:
        opts = codec.parse_options(request.get("options"))
        faults = codec.parse_faults(request.get("faults", {}))
        self.close()
        self.file, self.destroyed, self.users = None, False, {}
        self.file = self.create_file(opts, faults)
        return None

    def op_set_faults(self, request: dict[str, Json]) -> Json:
        self.set_faults(codec.parse_faults(request.get("faults")))

    def op_allocate(self, request: dict[str, Json]) -> Json:
        length, kind = codec.parse_u64(request.get("length")), self._kind(request)
        return codec.range_json(*self.api.allocate(length, kind))

    def op_allocate_and_fill(self, request: dict[str, Json]) -> Json:
        length, kind = codec.parse_u64(request.get("length")), self._kind(request)
        data = codec.parse_data(request.get("data"))
        name = request.get("reader_error")
        reader = BytesReader(data, ReaderError(name) if isinstance(name, str) else None)
        result = self.api.allocate_and_fill(length, kind, reader)
        if result.error is None:
            outcome = None
        elif isinstance(result.error, ReaderError):
            outcome = str(result.error)
        elif isinstance(result.error, EOFError):
            outcome = "EOF"
        else:  # anything else is the memory file's own failure, not the reader's
            raise result.error
        return {"range": codec.range_json(*result.file_range), "error": outcome}

    def op_decommit(self, request: dict[str, Json]) -> Json:
        self.api.decommit(codec.parse_file_range(request.get("range")))

    def op_inc_ref(self, request: dict[str, Json]) -> Json:
        self.api.inc_ref(codec.parse_file_range(request.get("range")))

    def op_dec_ref(self, request: dict[str, Json]) -> Json:
        self.api.dec_ref(codec.parse_file_range(request.get("range")))

    def op_map_internal(self, request: dict[str, Json]) -> Json:
        fr = codec.parse_file_range(request.get("range"))
        at: AccessType = codec.parse_access(request.get("access"))
        number = request.get("mapping")
        if type(number) is not int or number < 0:
            raise BadRequest(f"mapping must be a non-negative integer, not {number!r}")
        blocks = self.api.map_internal(fr, at)
        self.mappings[number] = Mapping(fr, blocks)
        return codec.ranges_json(self.blocks(blocks, fr))

    def op_write(self, request: dict[str, Json]) -> Json:
        mapping = self._mapping(request)
        offset = codec.parse_u64(request.get("offset"))
        data = codec.parse_data(request.get("data"))
        self._within(mapping, FileRange(offset, offset + len(data)))
        self.write_mapped(mapping, offset, data)

    def op_read(self, request: dict[str, Json]) -> Json:
        mapping = self._mapping(request)
        fr = codec.parse_file_range(request.get("range"))
        self._within(mapping, fr)
        return self.read_mapped(mapping, fr).hex()

    def op_mark_evictable(self, request: dict[str, Json]) -> Json:
        er = codec.parse_evictable_range(request.get("range"))
        self.api.mark_evictable(self._user(request), er)

    def op_mark_unevictable(self, request: dict[str, Json]) -> Json:
        er = codec.parse_evictable_range(request.get("range"))
        self.api.mark_unevictable(self._user(request), er)

    def op_mark_all_unevictable(self, request: dict[str, Json]) -> Json:
        self.api.mark_all_unevictable(self._user(request))

    def op_start_evictions(self, request: dict[str, Json]) -> Json:
        self.api.start_evictions()

    def op_run_evictions(self, request: dict[str, Json]) -> Json:
        delivered = self.api.run_evictions()
        return codec.events_json([(user_name(user), er) for user, er in delivered])

    def op_reclaim(self, request: dict[str, Json]) -> Json:
        return codec.ranges_json(self.api.reclaim())

    def op_memcg_pressure(self, request: dict[str, Json]) -> Json:
        return bool(self.api.memcg_pressure())

    def op_update_usage(self, request: dict[str, Json]) -> Json:
        now = codec.parse_u64(request.get("now"))
        committed = request.get("committed")
        self.update_usage(now, None if committed is None else codec.parse_page_set(committed))

    def op_total_usage(self, request: dict[str, Json]) -> Json:
        return codec.u64(self.api.total_usage())

    def op_total_size(self, request: dict[str, Json]) -> Json:
        return codec.u64(self.api.total_size())

    def op_should_cache_evictable(self, request: dict[str, Json]) -> Json:
        return bool(self.api.should_cache_evictable())

    def op_destroy(self, request: dict[str, Json]) -> Json:
        self.release()
        self.api.destroy()
        self.destroyed = True

    def op_state(self, request: dict[str, Json]) -> Json:
        return codec.observation_json(self.observe())

    # --- Helpers ---------------------------------------------------------------------------

    def _kind(self, request: dict[str, Json]) -> MemoryKind:
        return codec.parse_kind(request.get("kind"))

    def _user(self, request: dict[str, Json]) -> NamedUser:
        name = request.get("user")
        if not isinstance(name, str) or not name:
            raise BadRequest(f"user must be a non-empty string, not {name!r}")
        return self.users.setdefault(name, NamedUser(name))

    def _mapping(self, request: dict[str, Json]) -> Mapping[Blocks]:
        if self.destroyed:  # the mappings went with the file, as the spec's read and write say
            raise UseAfterDestroy("the MemoryFile has been destroyed")
        mapping = self.mappings.get(request.get("mapping"))  # type: ignore[arg-type]
        if mapping is None:
            raise BadRequest(f"no mapping numbered {request.get('mapping')!r}")
        return mapping

    @staticmethod
    def _within(mapping: Mapping[Blocks], fr: FileRange) -> None:
        if not (fr.well_formed() and mapping.range.is_superset_of(fr)):
            raise BadRequest(f"{fr} is not inside mapping {mapping.range}")

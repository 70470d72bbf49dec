"""JSON spellings of pgalloc's vocabulary, shared by drivers, runner and generator.

Every 64-bit value is a decimal string (JSON numbers lose precision above
2**53 in many parsers); ranges are ``[start, end]`` pairs of them; memory
kinds and eviction modes use the seed's Go names. Decoders check what the
schemas cannot (values below 2**64, page alignment where required) and raise
:class:`BadRequest`.
"""

from __future__ import annotations

import base64
import errno
from collections.abc import Iterable, Sequence
from typing import Any

from models.conformance.protocol import PATTERN_MODULUS
from spec.vocabulary import (
    PAGE_SIZE,
    UINT64_MAX,
    AccessType,
    DelayedEviction,
    EvictableRange,
    FileRange,
    HostFaults,
    MemoryFileOpts,
    MemoryKind,
)

Json = Any
"""A decoded JSON value."""

KIND_NAMES: dict[MemoryKind, str] = {
    MemoryKind.SYSTEM: "System",
    MemoryKind.ANONYMOUS: "Anonymous",
    MemoryKind.PAGE_CACHE: "PageCache",
    MemoryKind.TMPFS: "Tmpfs",
    MemoryKind.RAMDISKFS: "Ramdiskfs",
    MemoryKind.MAPPED: "Mapped",
}
KINDS_BY_NAME = {name: kind for kind, name in KIND_NAMES.items()}

EVICTION_NAMES: dict[DelayedEviction, str] = {
    DelayedEviction.DEFAULT: "Default",
    DelayedEviction.DISABLED: "Disabled",
    DelayedEviction.ENABLED: "Enabled",
    DelayedEviction.MANUAL: "Manual",
}
EVICTIONS_BY_NAME = {name: mode for mode, name in EVICTION_NAMES.items()}
INVALID_EVICTION = "Invalid"
"""Stands for any DelayedEvictionType value outside the four the seed knows."""
INVALID_EVICTION_VALUE = 4
"""The value our drivers pass for ``"Invalid"`` (the seed's next unused constant)."""


class BadRequest(ValueError):
    """A request the driver cannot decode: the runner's fault, never the port's."""


# --- Scalars and ranges ---------------------------------------------------------------


def u64(value: int) -> str:
    if not 0 <= value <= UINT64_MAX:
        raise ValueError(f"{value} is not a uint64")
    return str(value)


def parse_u64(text: Json) -> int:
    if not isinstance(text, str) or not text.isdigit() or not text.isascii():
        raise BadRequest(f"expected a decimal string, not {text!r}")
    if len(text) > 1 and text[0] == "0":
        raise BadRequest(f"decimal strings have no leading zeros: {text!r}")
    value = int(text)
    if value > UINT64_MAX:
        raise BadRequest(f"{text} does not fit in 64 bits")
    return value


def range_json(start: int, end: int) -> list[str]:
    return [u64(start), u64(end)]


def ranges_json(ranges: Iterable[tuple[int, int]]) -> list[list[str]]:
    return [range_json(start, end) for start, end in ranges]


def parse_pair(value: Json) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise BadRequest(f"expected a [start, end] pair, not {value!r}")
    return parse_u64(value[0]), parse_u64(value[1])


def parse_file_range(value: Json) -> FileRange:
    return FileRange(*parse_pair(value))


def parse_evictable_range(value: Json) -> EvictableRange:
    return EvictableRange(*parse_pair(value))


def parse_page_set(value: Json) -> list[FileRange]:
    """Committed pages given to update_usage: sorted, disjoint, non-empty, page-aligned ranges."""
    if not isinstance(value, list):
        raise BadRequest(f"expected a list of ranges, not {value!r}")
    ranges = [parse_file_range(item) for item in value]
    previous_end = -1
    for fr in ranges:
        if fr.start % PAGE_SIZE or fr.end % PAGE_SIZE or fr.start >= fr.end:
            raise BadRequest(f"committed ranges must be non-empty and page-aligned: {fr}")
        if fr.start <= previous_end:
            raise BadRequest(f"committed ranges must be sorted, disjoint and not adjacent: {fr}")
        previous_end = fr.end
    return ranges


# --- Kinds, options, access -------------------------------------------------------------


def parse_kind(value: Json) -> MemoryKind:
    if value not in KINDS_BY_NAME:
        raise BadRequest(f"unknown memory kind {value!r}")
    return KINDS_BY_NAME[value]


def options_json(opts: MemoryFileOpts | None, *, invalid: bool = False) -> dict[str, Json]:
    """Options as a create request spells them (``invalid``: an unknown eviction mode)."""
    opts = opts or MemoryFileOpts()
    return {
        "delayed_eviction": INVALID_EVICTION if invalid else EVICTION_NAMES[opts.delayed_eviction],
        "use_host_memcg_pressure": opts.use_host_memcg_pressure,
        "manual_zeroing": opts.manual_zeroing,
    }


def parse_options(value: Json) -> MemoryFileOpts:
    """The options of a create request; ``"Invalid"`` becomes an out-of-range mode value."""
    if not isinstance(value, dict):
        raise BadRequest(f"expected options, not {value!r}")
    name = value.get("delayed_eviction")
    mode: Any
    if name == INVALID_EVICTION:
        mode = INVALID_EVICTION_VALUE
    elif name in EVICTIONS_BY_NAME:
        mode = EVICTIONS_BY_NAME[name]
    else:
        raise BadRequest(f"unknown delayed_eviction {name!r}")
    memcg, zeroing = value.get("use_host_memcg_pressure"), value.get("manual_zeroing")
    if type(memcg) is not bool or type(zeroing) is not bool:
        raise BadRequest("use_host_memcg_pressure and manual_zeroing must be booleans")
    return MemoryFileOpts(mode, memcg, zeroing)


def access_json(at: AccessType) -> dict[str, bool]:
    return {"read": at.read, "write": at.write, "execute": at.execute}


def parse_access(value: Json) -> AccessType:
    if not isinstance(value, dict) or set(value) != {"read", "write", "execute"}:
        raise BadRequest(f"expected {{read, write, execute}}, not {value!r}")
    if not all(type(flag) is bool for flag in value.values()):
        raise BadRequest(f"access flags must be booleans: {value!r}")
    return AccessType(value["read"], value["write"], value["execute"])


# --- Errors ------------------------------------------------------------------------------


PREFERRED_NAMES = {errno.EOPNOTSUPP: "EOPNOTSUPP", errno.EAGAIN: "EAGAIN", errno.EDEADLK: "EDEADLK"}
"""Names for the errnos Linux gives two names (ENOTSUP, EWOULDBLOCK, EDEADLOCK are aliases)."""


def errno_name(code: int) -> str:
    """The Linux name of an errno (``ENOMEM``), or ``E<number>`` for one without a name."""
    return PREFERRED_NAMES.get(code) or errno.errorcode.get(code, f"E{code}")


def same_errno(first: str, second: str) -> bool:
    """Whether two error codes are the same, counting errno aliases (ENOTSUP is EOPNOTSUPP)."""
    if first == second:
        return True
    values = [
        getattr(errno, name, None) if name.startswith("E") else None for name in (first, second)
    ]
    return values[0] is not None and values[0] == values[1]


def parse_errno(name: Json) -> int:
    code = getattr(errno, name, None) if isinstance(name, str) else None
    if not isinstance(code, int) or not name.startswith("E"):
        raise BadRequest(f"unknown errno name {name!r}")
    return code


FAULT_FIELDS: dict[str, str] = {
    "ftruncate": "truncate",
    "mmap": "map",
    "punch_hole": "punch",
    "mincore": "mincore",
}
"""The protocol's name of each kernel call that may fail -> its ``HostFaults`` field."""


def faults_json(faults: HostFaults) -> dict[str, str]:
    """A ``faults`` object: the errno name of each failing call (none: ``{}``)."""
    spelled = {}
    for name, field in FAULT_FIELDS.items():
        code = getattr(faults, field)
        if code is not None:
            spelled[name] = errno_name(code)
    return spelled


def parse_faults(value: Json) -> HostFaults:
    """The ``faults`` of a create or set_faults request: every call not named works."""
    if not isinstance(value, dict):
        raise BadRequest(f"expected a faults object, not {value!r}")
    unknown = sorted(set(value) - set(FAULT_FIELDS))
    if unknown:
        raise BadRequest(f"unknown faults {unknown}: the calls are {list(FAULT_FIELDS)}")
    return HostFaults(
        **{field: parse_errno(value[name]) for name, field in FAULT_FIELDS.items() if name in value}
    )


# --- Byte payloads -----------------------------------------------------------------------


def pattern_bytes(length: int) -> bytes:
    """The defined pattern: byte ``i`` is ``i % 251``."""
    period = bytes(range(PATTERN_MODULUS))
    repeats = -(-length // PATTERN_MODULUS)
    return (period * repeats)[:length]


def data_json(data: bytes, *, pattern: bool = False) -> dict[str, str]:
    """A payload: the pattern if asked (``data`` must then be that pattern), else hex."""
    if pattern:
        if data != pattern_bytes(len(data)):
            raise ValueError("data is not the pattern")
        return {"pattern": u64(len(data))}
    return {"hex": data.hex()}


def parse_data(value: Json) -> bytes:
    if not isinstance(value, dict) or len(value) != 1:
        raise BadRequest(f"expected one of {{hex}}, {{base64}}, {{pattern}}, not {value!r}")
    ((encoding, text),) = value.items()
    try:
        if encoding == "hex":
            return bytes.fromhex(text)
        if encoding == "base64":
            return base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as error:
        raise BadRequest(f"bad {encoding} payload: {error}") from None
    if encoding == "pattern":
        return pattern_bytes(parse_u64(text))
    raise BadRequest(f"unknown payload encoding {encoding!r}")


# --- The observation ---------------------------------------------------------------------


def observation_json(observation: Any) -> dict[str, Json]:
    """The canonical JSON of an observation (``spec.state.Observation`` or the impl's twin).

    Field by field as :class:`spec.state.Observation` defines them; accounting
    lists every kind; evictable users are sorted by name.
    """
    return {
        "file_size": u64(observation.file_size),
        "usage": [
            {
                "range": range_json(*fr),
                "kind": KIND_NAMES[MemoryKind(kind)],
                "refs": u64(refs),
                "known_committed": bool(known),
            }
            for fr, kind, refs, known in observation.usage
        ],
        "reclaim": ranges_json(observation.reclaim),
        "accounting": {KIND_NAMES[MemoryKind(kind)]: u64(n) for kind, n in observation.accounting},
        "usage_expected": u64(observation.usage_expected),
        "usage_swapped": u64(observation.usage_swapped),
        "evictable": [
            {"user": label, "ranges": ranges_json(ranges), "evicting": bool(evicting)}
            for label, ranges, evicting in sorted(observation.evictable)
        ],
    }


def events_json(events: Sequence[tuple[str, tuple[int, int]]]) -> list[dict[str, Json]]:
    """Eviction events: ``{"user", "range"}`` in delivery order."""
    return [{"user": user, "range": range_json(*er)} for user, er in events]

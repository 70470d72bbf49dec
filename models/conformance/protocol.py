"""The constants of the conformance protocol and vector format, stated once.

Everything a porter's driver or a foreign runner must agree on that is not a
message shape (those are the JSON Schemas in ``schemas/``): the versions, the
gVisor version the vectors describe, the operations, the feature tags, the
error codes, and the allowances — where a port may legitimately answer
differently from the specification. ``docs/conformance.md`` explains each.
"""

from __future__ import annotations

from typing import Final

PROTOCOL_VERSION: Final = 1
"""The driver protocol (messages on stdin/stdout). Bumped on any incompatible change."""

FORMAT_VERSION: Final = 1
"""The vector file format. Bumped on any incompatible change."""

DEFAULT_TIMEOUT: Final = 10.0
"""Seconds a driver may take to answer one request, by default (``--timeout``)."""

DEFAULT_MAX_FAILURES: Final = 3
"""Consecutive driver crashes or timeouts after which a run stops, by default
(``--max-failures``): replay counts vectors, conform counts timed-out requests."""

DESCRIBES: Final = {
    "project": "gVisor",
    "package": "pkg/sentry/pgalloc",
    "commits": "e61acfb5eaec..8a2f7e716dcc",
    "year": 2020,
}
"""The gVisor version whose ``pgalloc.MemoryFile`` the vectors describe."""

SEED_OPS: Final = (
    "create",
    "allocate",
    "allocate_and_fill",
    "decommit",
    "inc_ref",
    "dec_ref",
    "map_internal",
    "mark_evictable",
    "mark_unevictable",
    "mark_all_unevictable",
    "start_evictions",
    "update_usage",
    "total_usage",
    "total_size",
    "should_cache_evictable",
    "destroy",
)
"""Requests that are the seed's methods (``create`` is ``NewMemoryFile``)."""

DRIVER_OPS: Final = (
    "hello",
    "set_faults",
    "write",
    "read",
    "reclaim",
    "run_evictions",
    "memcg_pressure",
    "state",
)
"""Requests that drive what the seed leaves to threads, mappings or the kernel, or inspect."""

OPS: Final = SEED_OPS + DRIVER_OPS

CORE: Final = "core"
"""The pseudo-feature of the requests every driver answers (never declared, never a tag)."""

OP_FEATURES: Final = {
    "hello": CORE,
    "create": CORE,
    "state": CORE,
    "allocate": "alloc",
    "total_size": "alloc",
    "allocate_and_fill": "fill",
    "inc_ref": "refcount",
    "dec_ref": "refcount",
    "decommit": "decommit",
    "map_internal": "map",
    "write": "map",
    "read": "map",
    "reclaim": "reclaim",
    "mark_evictable": "evict",
    "mark_unevictable": "evict",
    "mark_all_unevictable": "evict",
    "start_evictions": "evict",
    "run_evictions": "evict",
    "should_cache_evictable": "evict",
    "memcg_pressure": "memcg",
    "update_usage": "usage",
    "total_usage": "host",
    "destroy": "destroy",
    "set_faults": "kernel-faults",
}
"""The feature each request belongs to: a driver is sent only requests of the features it
declares (and the core). Two depend on their fields too: ``update_usage`` without
``committed`` is ``host``; ``allocate_and_fill`` allocates, so its vectors are also ``alloc``.
Options and injected faults at ``create`` have features of their own (see :data:`FEATURES`)."""

QUERY_OPS: Final = frozenset(
    {
        "hello",
        "set_faults",
        "state",
        "read",
        "total_usage",
        "total_size",
        "should_cache_evictable",
    }
)
"""Requests that change nothing the observation shows; no state check follows them."""

FAULTS: Final = {
    "ftruncate": "ftruncate(2) of the memory file: at create (truncating it to 0) and when "
    "allocate grows it",
    "mmap": "mmap(2) of a 1 GiB chunk not mapped yet (chunks once mapped stay mapped until "
    "destroy): map_internal, allocate_and_fill, allocate and decommit with manual zeroing, "
    "the reclaimer zeroing by hand, update_usage's scan",
    "punch_hole": "fallocate(PUNCH_HOLE | KEEP_SIZE): decommit and the reclaimer",
    "mincore": "mincore(2), in update_usage's scan (per chunk slice)",
}
"""The kernel calls a create or set_faults request can make fail: each field names an errno,
and the call then fails with it every time until the faults change (the specification's
``HostFaults``: truncate, map, punch, mincore)."""

FEATURES: Final = {
    "alloc": "allocate (top-down placement, huge-page alignment, file growth) and total_size",
    "fill": "allocate_and_fill: filling from a reader, partial fills, reader errors",
    "refcount": "inc_ref and dec_ref",
    "decommit": "decommit",
    "map": "map_internal, and read/write through the mappings it returned",
    "reclaim": "the reclaimer, driven until it waits",
    "evict": "mark_evictable, mark_unevictable, mark_all_unevictable, start_evictions, "
    "evictions driven to completion, should_cache_evictable",
    "memcg": "use_host_memcg_pressure and memcg pressure notifications",
    "usage": "update_usage with the committed pages given in the request",
    "host": "results that depend on the host kernel: total_usage, and update_usage "
    "asking the real host (needs a host that behaves as the specification's host model)",
    "growth-overflow": "files grown to 2^40 bytes and more, toward the int64 limit (ENOMEM for "
    "a length that can never fit leaves the file as it is: that is plain alloc)",
    "bad-input": "out-of-contract calls (the seed panics; the answer is a contract error)",
    "options": "invalid options (EINVAL at creation)",
    "manual-zeroing": "the manual_zeroing option",
    "faults": "injected fallocate(PUNCH_HOLE) failures, set at create (faults.punch_hole)",
    "kernel-faults": "injected ftruncate, mmap and mincore failures (create's faults), and "
    "set_faults: the failing kernel calls changed mid-session",
    "destroy": "destroy, and calls after it",
    "unmark-empty": "mark_unevictable of an empty range [x, x) with x strictly inside one of "
    "the user's evictable ranges, which removes nothing (the seed removes the rest of that "
    "range: docs/divergences.md D4; a port faithful to the seed omits this feature)",
}
"""Feature tags: a vector carries the tags of everything it exercises."""

ERROR_CODES: Final = {
    "contract": "an out-of-contract call, where the seed panics; nothing was changed",
    "ENOMEM": "no range fits, nor would in a file of any size up to the int64 limit (feature "
    "alloc)",
    "EACCES": "map_internal with execute access",
    "EINVAL": "create with invalid options",
    "not-supported": "the port does not implement this request (the vector is skipped)",
    "bad-request": "the driver could not understand the request (a runner bug, or a port's)",
}
"""Error codes of responses; any other errno name (e.g. an injected fault) may also appear."""

ALLOWANCES: Final = {
    "abort-on-contract": "Where the expected response is a contract error, a port may abort "
    'instead (the driver exits, or answers the contract error with "aborted": true): the '
    "vector ends there and passes. Any other early exit is a failure.",
    "violation-optional": "A contract error's \"violation\" (the specification's ContractViolation "
    "subclass) is compared only when the driver gives one.",
    "errno-aliases": "Error codes that are errno names are compared by their Linux value, so "
    "aliases match (ENOTSUP is EOPNOTSUPP, EWOULDBLOCK is EAGAIN).",
    "messages-ignored": '"message" fields are free text for humans and never compared.',
    "eviction-order": "run_evictions events are compared user by user: each user's events in "
    "order (last range first), interleaved across users in any order.",
    "not-supported": 'A driver may answer any request with "not-supported": the vector is '
    "reported unsupported, not failed. Drivers also list the features they support in hello; "
    "vectors needing others are skipped.",
    "host-model": 'Vectors tagged "host" (total_usage, update_usage without explicit committed '
    'pages) are replayed only against drivers declaring the "host" feature: a Linux host whose '
    "memfd commits exactly the 4 KiB pages touched (no shmem transparent huge pages), frees them "
    "on punch-hole, and reports them exactly through fstat and mincore.",
}
"""Where a port may legitimately differ from the specification, and how the runner allows it."""

PATTERN_MODULUS: Final = 251
"""Byte ``i`` of a ``{"pattern": n}`` payload is ``i % 251`` (prime, so pages differ)."""

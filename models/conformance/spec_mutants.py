"""The mutant catalogue: the specification with one rule of the seed broken, rule by rule.

Each :class:`SpecMutant` is a textual edit of one function of ``spec/`` —
``old`` replaced by ``new`` in its source, which must occur exactly ``count``
times — naming the rule of the seed it breaks. :func:`applied` recompiles
the edited function in its module's namespace and puts it in place of the
original wherever ``spec`` or ``models`` bound it, for the duration of a
``with``; nothing on disk changes. ``pgalloc vectors mutation``
(:mod:`models.conformance.mutation`) replays the corpus through the spec
driver under each mutant: a mutant the corpus does not kill is a rule a port
could drop and still pass.

A mutant is *equivalent* when no input can tell it from the specification;
each such one carries the one-line argument why (``equivalent``), and is
expected to survive.
"""

from __future__ import annotations
import __future__

import importlib
import inspect
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FunctionType


@dataclass(frozen=True, slots=True)
class SpecMutant:
    name: str
    rule: str
    """The rule of the seed the edit breaks (what a port without it would get wrong)."""
    target: str
    """``module:function`` in ``spec/``."""
    old: str
    new: str
    count: int = 1
    """How many times ``old`` occurs in the function (all are replaced)."""
    equivalent: str = ""
    """Why no input can kill it, if none can (an equivalent mutant is expected to survive)."""


class MutantDoesNotApply(ValueError):
    """The catalogue no longer matches the specification's source: fix the mutant."""


def mutated_function(mutant: SpecMutant) -> tuple[FunctionType, FunctionType]:
    """The original function and its edited twin, compiled in the module's namespace."""
    module_name, function_name = mutant.target.split(":")
    module = importlib.import_module(module_name)
    original = getattr(module, function_name)
    source = textwrap.dedent(inspect.getsource(original))
    found = source.count(mutant.old)
    if found != mutant.count:
        raise MutantDoesNotApply(
            f"mutant {mutant.name}: {mutant.old!r} occurs {found} times in {mutant.target}, "
            f"not {mutant.count}"
        )
    edited = source.replace(mutant.old, mutant.new)
    namespace = dict(vars(module))
    flags = __future__.annotations.compiler_flag
    exec(
        compile(edited, f"<mutant {mutant.name}>", "exec", flags=flags, dont_inherit=True),
        namespace,
    )
    twin = namespace[function_name]
    assert isinstance(original, FunctionType) and isinstance(twin, FunctionType)
    return original, twin


@contextmanager
def applied(mutant: SpecMutant) -> Iterator[None]:
    """Put the mutant in place of the original function everywhere it is bound."""
    original, twin = mutated_function(mutant)
    bindings = [
        (module, name)
        for module in list(sys.modules.values())
        if module is not None and module.__name__.split(".")[0] in ("spec", "models")
        for name, value in list(vars(module).items())
        if value is original
    ]
    for module, name in bindings:
        setattr(module, name, twin)
    try:
        yield
    finally:
        for module, name in bindings:
            setattr(module, name, original)


def _m(name: str, rule: str, target: str, old: str, new: str, **extra: object) -> SpecMutant:
    return SpecMutant(name, rule, target, old, new, **extra)  # type: ignore[arg-type]


ALLOC, RANGES, USAGE = "spec.allocator", "spec.ranges", "spec.usage"
EVICT, RECLAIM = "spec.eviction", "spec.reclaimer"

CATALOGUE: tuple[SpecMutant, ...] = (
    # --- Placement, alignment, growth ---------------------------------------------------
    _m(
        "lowest-fit",
        "placement: the highest fit of all gaps",
        f"{RANGES}:highest",
        "return max(",
        "return min(",
    ),
    _m(
        "no-align-down",
        "alignment: the start is aligned down",
        f"{RANGES}:align_down",
        "return value & ~(alignment - 1)",
        "return value",
    ),
    _m(
        "fit-strict",
        "placement: a gap that fits exactly is used",
        f"{RANGES}:top_fit",
        "if start >= gap.start",
        "if start > gap.start",
    ),
    _m(
        "huge-threshold",
        "alignment: 2 MiB and longer are 2 MiB-aligned",
        f"{RANGES}:allocation_alignment",
        "length >= HUGE_PAGE_SIZE",
        "length > HUGE_PAGE_SIZE",
    ),
    _m(
        "no-huge-alignment",
        "alignment: huge allocations are huge-aligned",
        f"{RANGES}:allocation_alignment",
        "return HUGE_PAGE_SIZE if",
        "return PAGE_SIZE if",
    ),
    _m(
        "no-growth-guard",
        "growth: the size is an int64; beyond it, no fit",
        f"{RANGES}:growth_sizes",
        "if size > INT64_MAX:",
        "if size > 4 * INT64_MAX:",
    ),
    _m(
        "linear-growth",
        "growth: the file doubles",
        f"{RANGES}:growth_sizes",
        "size = 2 * size if size else CHUNK_SIZE",
        "size = size + CHUNK_SIZE",
    ),
    _m(
        "grow-below-last",
        "growth: the new range goes above every allocated range",
        f"{RANGES}:find_available_range",
        "last_gap_start = allocated[-1].end if allocated else 0",
        "last_gap_start = 0",
    ),
    _m(
        "grow-unaligned-min",
        "growth: the lowest start is aligned up",
        f"{RANGES}:find_available_range",
        "lowest_start = align_up(last_gap_start, alignment)",
        "lowest_start = last_gap_start",
        equivalent="top_fit's start is a multiple of the alignment, and a multiple is at least "
        "x exactly when it is at least x aligned up",
    ),
    _m(
        "no-chunk-rounding",
        "growth: the file grows to a chunk multiple",
        f"{ALLOC}:find_and_grow",
        "file_size=align_up(fr.end, CHUNK_SIZE)",
        "file_size=fr.end",
    ),
    _m(
        "enospc",
        "errno: no fit is ENOMEM",
        f"{ALLOC}:find_and_grow",
        "raise enomem(f",
        "raise os_error(28, f",
    ),
    _m(
        "truncate-errno",
        "errno: a failing ftruncate's own errno",
        f"{ALLOC}:find_and_grow",
        "raise os_error(truncate_error,",
        "raise os_error(5,",
    ),
    # --- References and freeing --------------------------------------------------------
    _m(
        "incref-by-two",
        "refs: IncRef adds one",
        f"{ALLOC}:inc_ref",
        "refs=u.refs + 1",
        "refs=u.refs + 2",
    ),
    _m(
        "incref-on-freed",
        "access: IncRef needs a reference on every page",
        f"{ALLOC}:inc_ref",
        'require_referenced(state, fr, "IncRef")',
        'require_allocated(state, fr, "IncRef")',
    ),
    _m(
        "decref-by-two",
        "refs: DecRef takes one",
        f"{ALLOC}:_release_one",
        "refs=info.refs - 1",
        "refs=info.refs - 2",
    ),
    _m(
        "freed-keeps-kind",
        "freeing: freed pages are System until reclaimed",
        f"{ALLOC}:_release_one",
        "UsageInfo(MemoryKind.SYSTEM,",
        "UsageInfo(info.kind,",
    ),
    _m(
        "freed-accounting-stays",
        "freeing: known-committed freed bytes move to System",
        f"{ALLOC}:dec_ref",
        "if info.known_committed:",
        "if False:",
    ),
    _m(
        "free-not-signalled",
        "freeing: DecRef wakes the reclaimer",
        f"{ALLOC}:dec_ref",
        "state = signal_reclaimer(replace(state, reclaimable=True))",
        "state = replace(state, reclaimable=True)",
    ),
    _m(
        "fill-keeps-partial-page",
        "fill: only whole pages are kept",
        f"{ALLOC}:fill",
        "kept = done - done % PAGE_SIZE",
        "kept = -(-done // PAGE_SIZE) * PAGE_SIZE",
    ),
    _m(
        "fill-keeps-unfilled",
        "fill: the unfilled rest is released",
        f"{ALLOC}:fill",
        "state = dec_ref(state, FileRange(fr.start + kept, fr.end))",
        "state = state",
    ),
    _m(
        "fill-eof-not-error",
        "fill: a reader that ends early is an error (EOF)",
        f"{ALLOC}:fill",
        'error = EOFError(f"reader ended after {done} of {length} bytes")',
        "error = None",
    ),
    # --- Decommit --------------------------------------------------------------------------
    _m(
        "decommit-no-punch",
        "decommit: the pages are punched",
        f"{ALLOC}:decommit_punch",
        "state = replace(state, host=hostmodel.punch_hole(state.host, fr))",
        "state = state",
    ),
    _m(
        "decommit-unallocated",
        "access: Decommit needs allocated pages",
        f"{ALLOC}:decommit_punch",
        'require_allocated(state, fr, "Decommit")',
        "pass",
    ),
    _m(
        "decommit-punch-errno",
        "errno: a failing punch's own errno",
        f"{ALLOC}:decommit_punch",
        "raise os_error(punch_error,",
        "raise os_error(5,",
    ),
    _m(
        "decommit-keeps-known",
        "decommit: pages are no longer known committed",
        f"{ALLOC}:mark_decommitted",
        "replace(u, known_committed=False)",
        "u",
    ),
    _m(
        "decommit-keeps-expected",
        "decommit: usageExpected drops by the known bytes",
        f"{ALLOC}:mark_decommitted",
        "expected -= part.length()",
        "expected -= 0",
    ),
    _m(
        "allocate-not-zeroed",
        "manual zeroing: allocations are zeroed by hand",
        f"{ALLOC}:take_range",
        "if state.opts.manual_zeroing:",
        "if False:",
    ),
    # --- Merging ---------------------------------------------------------------------------
    _m(
        "no-merging",
        "merging: equal neighbours are one segment",
        "spec.rangemap:_canonical",
        "and out[-1][2] == value:",
        "and out[-1][2] == value and False:",
    ),
    # --- Access checks -------------------------------------------------------------------
    _m(
        "execute-allowed",
        "access: execute access is EACCES",
        f"{ALLOC}:map_internal",
        "if at.execute:",
        "if False:",
    ),
    _m(
        "eacces-errno",
        "errno: execute access is EACCES",
        f"{ALLOC}:map_internal",
        "raise eacces(f",
        "raise enomem(f",
    ),
    _m(
        "map-to-file-end-refused",
        "access: a mapping may end at the file's end",
        f"{ALLOC}:map_internal",
        "if fr.end > state.file_size:",
        "if fr.end >= state.file_size:",
    ),
    # --- The reclaimer ---------------------------------------------------------------------
    _m(
        "reclaim-first-first",
        "reclaim order: the last range first",
        f"{RECLAIM}:find_reclaimable",
        "last = state.reclaim.last()",
        "last = next(iter(state.reclaim), None)",
    ),
    _m(
        "reclaim-no-punch",
        "reclaim: freed pages are punched",
        f"{RECLAIM}:decommit_file",
        "state = replace(state, host=hostmodel.punch_hole(state.host, fr))",
        "state = state",
    ),
    _m(
        "reclaim-no-zero-fallback",
        "reclaim: a failed punch is zeroed by hand",
        f"{RECLAIM}:decommit_file",
        "state = manually_zero(state, fr)",
        "state = state",
    ),
    _m(
        "reclaim-keeps-usage",
        "reclaim: reclaimed pages leave the usage set",
        f"{RECLAIM}:mark_reclaimed",
        "usage=state.usage.remove(fr)",
        "usage=state.usage",
    ),
    _m(
        "idle-no-evictions",
        "Enabled: an idle reclaimer starts evictions",
        f"{RECLAIM}:find_reclaimable",
        "state, _ = start_evictions_locked(state)",
        "pass",
    ),
    _m(
        "idle-evicts-with-memcg",
        "Enabled with memcg: only pressure starts evictions",
        f"{RECLAIM}:find_reclaimable",
        "and not opts.use_host_memcg_pressure\n",
        "\n",
    ),
    # --- UpdateUsage -----------------------------------------------------------------------
    _m(
        "no-skip-known",
        "UpdateUsage: skip when the file holds what is known, no swap",
        f"{USAGE}:should_skip",
        "if current_usage == state.usage_expected and state.usage_swapped == 0:",
        "if False:",
    ),
    _m(
        "no-skip-1s",
        "UpdateUsage: with swap booked, skip for 1 s",
        f"{USAGE}:should_skip",
        "and now < last + SECOND:",
        "and False:",
    ),
    _m(
        "skip-1s-inclusive",
        "UpdateUsage: the 1 s rule is strict (Before)",
        f"{USAGE}:should_skip",
        "now < last + SECOND",
        "now <= last + SECOND",
    ),
    _m(
        "no-skip-10ms",
        "UpdateUsage: skip within 10 ms",
        f"{USAGE}:should_skip",
        "return now - last < RESCAN_INTERVAL",
        "return False",
    ),
    _m(
        "skip-10ms-inclusive",
        "UpdateUsage: the 10 ms rule is strict",
        f"{USAGE}:should_skip",
        "return now - last < RESCAN_INTERVAL",
        "return now - last <= RESCAN_INTERVAL",
    ),
    _m(
        "scan-time-not-kept",
        "UpdateUsage: a scan records its time",
        f"{USAGE}:begin_update_usage",
        "state = replace(state, usage_last=now)",
        "state = state",
    ),
    _m(
        "marks-freed-pages",
        "UpdateUsage: only committable pages are marked",
        f"{USAGE}:_mark_committed",
        "if fr.end <= slice_.start or not info.can_commit():",
        "if fr.end <= slice_.start:",
        equivalent="sequentially a committed run lies inside a slice of one committable "
        "segment, so no other segment overlaps it; only a call while mincore runs (which "
        "the protocol cannot make) could put a freed one there",
    ),
    _m(
        "marked-as-system",
        "accounting: marked pages count to their kind",
        f"{USAGE}:_mark_committed",
        "account(accounting, info.kind, part.length())",
        "account(accounting, MemoryKind.SYSTEM, part.length())",
    ),
    _m(
        "swap-never-dropped",
        "swap booking: dropped once the file holds no more",
        f"{USAGE}:_finish",
        "elif swapped:",
        "elif False:",
    ),
    _m(
        "swap-as-anonymous",
        "swap booking: swap is accounted as System",
        f"{USAGE}:_finish",
        "MemoryKind.SYSTEM",
        "MemoryKind.ANONYMOUS",
        count=2,
    ),
    _m(
        "mincore-errno",
        "errno: a failing mincore's own errno",
        f"{USAGE}:map_for_query",
        "return state, os_error(mincore_error,",
        "return state, os_error(5,",
    ),
    # --- Evictable ranges and eviction -------------------------------------------------------
    _m(
        "swap-not-booked",
        "swap booking: bytes the scan cannot attribute are booked as swap",
        f"{USAGE}:_finish",
        "if state.usage_expected < current:",
        "if False:",
    ),
    _m(
        "unmark-nothing",
        "marking: MarkUnevictable removes the range",
        f"{EVICT}:mark_unevictable",
        "ranges=info.ranges.remove(unmarked)",
        "ranges=info.ranges",
    ),
    _m(
        "mark-nothing",
        "marking: MarkEvictable adds the range",
        f"{EVICT}:mark_evictable",
        "ranges=info.ranges.assign(FileRange(*er), None)",
        "ranges=info.ranges",
    ),
    _m(
        "user-kept",
        "user removal: an idle user without ranges is forgotten",
        f"{EVICT}:_kept",
        "return info if info.evicting or info.ranges else None",
        "return info",
    ),
    _m(
        "evict-first-first",
        "eviction order: the last range first",
        f"{EVICT}:take_eviction",
        "last = info.ranges.last()",
        "last = next(iter(info.ranges), None)",
    ),
    _m(
        "evictor-keeps-user",
        "user removal: the eviction goroutine deletes its user",
        f"{EVICT}:take_eviction",
        "if info.ranges else None",
        "if info.ranges else replace(info, evicting=False)",
    ),
    _m(
        "disabled-waits",
        "Disabled: marking starts eviction at once",
        f"{EVICT}:mark_evictable",
        "state = with_user(state, user, replace(info, evicting=True))",
        "pass",
    ),
    _m(
        "enabled-no-signal",
        "Enabled: marking wakes the reclaimer",
        f"{EVICT}:mark_evictable",
        "state = signal_reclaimer(state)",
        "pass",
    ),
    _m(
        "manual-start-ignored",
        "Manual: StartEvictions starts them",
        f"{EVICT}:start_evictions",
        "return start_evictions_locked(state)",
        "return state, False",
    ),
    _m(
        "memcg-ignored",
        "memcg: pressure starts evictions",
        f"{EVICT}:memcg_pressure",
        "return start_evictions_locked(state)",
        "return state, False",
    ),
    _m(
        "default-is-disabled",
        "options: Default means Enabled",
        "spec.arguments:normalize_opts",
        "delayed = DelayedEviction.ENABLED",
        "delayed = DelayedEviction.DISABLED",
    ),
    _m(
        "invalid-eviction-accepted",
        "options: an unknown DelayedEvictionType is EINVAL",
        "spec.arguments:normalize_opts",
        "delayed = DelayedEviction(value)",
        "delayed = DelayedEviction(value) if value in (0, 1, 2, 3) else DelayedEviction.ENABLED",
    ),
    _m(
        "cache-ignores-memcg",
        "ShouldCacheEvictable: memcg pressure counts",
        f"{ALLOC}:should_cache_evictable",
        "is DelayedEviction.MANUAL or opts.use_host_memcg_pressure",
        "is DelayedEviction.MANUAL",
    ),
    _m(
        "cache-ignores-manual",
        "ShouldCacheEvictable: Manual counts",
        f"{ALLOC}:should_cache_evictable",
        "opts.delayed_eviction is DelayedEviction.MANUAL or ",
        "",
    ),
)
"""Every mutant, grouped by the part of the seed whose rule it breaks."""

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


ALLOC, RANGES, USAGE = "spec.allocator", "spec.ranges", "spec.usage"
EVICT, RECLAIM = "spec.eviction", "spec.reclaimer"

CATALOGUE: tuple[SpecMutant, ...] = (
    # --- Placement, alignment, growth ---------------------------------------------------
    SpecMutant(
        "lowest-fit",
        "placement: the highest fit of all gaps",
        f"{RANGES}:highest",
        "return max(",
        "return min(",
    ),
    SpecMutant(
        "no-align-down",
        "alignment: the start is aligned down",
        f"{RANGES}:align_down",
        "return value & ~(alignment - 1)",
        "return value",
    ),
    SpecMutant(
        "fit-strict",
        "placement: a gap that fits exactly is used",
        f"{RANGES}:top_fit",
        "if start >= gap.start",
        "if start > gap.start",
    ),
    SpecMutant(
        "huge-threshold",
        "alignment: 2 MiB and longer are 2 MiB-aligned",
        f"{RANGES}:allocation_alignment",
        "length >= HUGE_PAGE_SIZE",
        "length > HUGE_PAGE_SIZE",
    ),
    SpecMutant(
        "no-huge-alignment",
        "alignment: huge allocations are huge-aligned",
        f"{RANGES}:allocation_alignment",
        "return HUGE_PAGE_SIZE if",
        "return PAGE_SIZE if",
    ),
    SpecMutant(
        "no-growth-guard",
        "growth: the size is an int64; beyond it, no fit",
        f"{RANGES}:growth_sizes",
        "if size > INT64_MAX:",
        "if size > 4 * INT64_MAX:",
    ),
    SpecMutant(
        "linear-growth",
        "growth: the file doubles",
        f"{RANGES}:growth_sizes",
        "size = 2 * size if size else CHUNK_SIZE",
        "size = size + CHUNK_SIZE",
    ),
    SpecMutant(
        "grow-below-last",
        "growth: the new range goes above every allocated range",
        f"{RANGES}:find_available_range",
        "last_gap_start = allocated[-1].end if allocated else 0",
        "last_gap_start = 0",
    ),
    SpecMutant(
        "grow-unaligned-min",
        "growth: the lowest start is aligned up",
        f"{RANGES}:find_available_range",
        "lowest_start = align_up(last_gap_start, alignment)",
        "lowest_start = last_gap_start",
        equivalent="top_fit's start is a multiple of the alignment, and a multiple is at least "
        "x exactly when it is at least x aligned up",
    ),
    SpecMutant(
        "no-chunk-rounding",
        "growth: the file grows to a chunk multiple",
        f"{ALLOC}:find_and_grow",
        "file_size=align_up(fr.end, CHUNK_SIZE)",
        "file_size=fr.end",
    ),
    SpecMutant(
        "enospc",
        "errno: no fit is ENOMEM",
        f"{ALLOC}:find_and_grow",
        "raise enomem(f",
        "raise os_error(28, f",
    ),
    SpecMutant(
        "truncate-errno",
        "errno: a failing ftruncate's own errno",
        f"{ALLOC}:find_and_grow",
        "raise os_error(truncate_error,",
        "raise os_error(5,",
    ),
    # --- References and freeing --------------------------------------------------------
    SpecMutant(
        "incref-by-two",
        "refs: IncRef adds one",
        f"{ALLOC}:inc_ref",
        "refs=u.refs + 1",
        "refs=u.refs + 2",
    ),
    SpecMutant(
        "incref-on-freed",
        "access: IncRef needs a reference on every page",
        f"{ALLOC}:inc_ref",
        'require_referenced(state, fr, "IncRef")',
        'require_allocated(state, fr, "IncRef")',
    ),
    SpecMutant(
        "decref-by-two",
        "refs: DecRef takes one",
        f"{ALLOC}:_release_one",
        "refs=info.refs - 1",
        "refs=info.refs - 2",
    ),
    SpecMutant(
        "freed-keeps-kind",
        "freeing: freed pages are System until reclaimed",
        f"{ALLOC}:_release_one",
        "UsageInfo(MemoryKind.SYSTEM,",
        "UsageInfo(info.kind,",
    ),
    SpecMutant(
        "freed-accounting-stays",
        "freeing: known-committed freed bytes move to System",
        f"{ALLOC}:dec_ref",
        "if info.known_committed:",
        "if False:",
    ),
    SpecMutant(
        "free-not-signalled",
        "freeing: DecRef wakes the reclaimer",
        f"{ALLOC}:dec_ref",
        "state = signal_reclaimer(replace(state, reclaimable=True))",
        "state = replace(state, reclaimable=True)",
    ),
    SpecMutant(
        "fill-keeps-partial-page",
        "fill: only whole pages are kept",
        f"{ALLOC}:fill",
        "kept = done - done % PAGE_SIZE",
        "kept = -(-done // PAGE_SIZE) * PAGE_SIZE",
    ),
    SpecMutant(
        "fill-keeps-unfilled",
        "fill: the unfilled rest is released",
        f"{ALLOC}:fill",
        "state = dec_ref(state, FileRange(fr.start + kept, fr.end))",
        "state = state",
    ),
    SpecMutant(
        "fill-eof-not-error",
        "fill: a reader that ends early is an error (EOF)",
        f"{ALLOC}:fill",
        'error = EOFError(f"reader ended after {done} of {length} bytes")',
        "error = None",
    ),
    # --- Decommit --------------------------------------------------------------------------
    SpecMutant(
        "decommit-no-punch",
        "decommit: the pages are punched",
        f"{ALLOC}:decommit_punch",
        "state = replace(state, host=hostmodel.punch_hole(state.host, fr))",
        "state = state",
    ),
    SpecMutant(
        "decommit-unallocated",
        "access: Decommit needs allocated pages",
        f"{ALLOC}:decommit_punch",
        'require_allocated(state, fr, "Decommit")',
        "pass",
    ),
    SpecMutant(
        "decommit-punch-errno",
        "errno: a failing punch's own errno",
        f"{ALLOC}:decommit_punch",
        "raise os_error(punch_error,",
        "raise os_error(5,",
    ),
    SpecMutant(
        "mmap-errno",
        "errno: a failing mmap's own errno",
        f"{ALLOC}:require_mappable",
        "raise os_error(map_error,",
        "raise os_error(5,",
    ),
    SpecMutant(
        "decommit-keeps-known",
        "decommit: pages are no longer known committed",
        f"{ALLOC}:mark_decommitted",
        "replace(u, known_committed=False)",
        "u",
    ),
    SpecMutant(
        "decommit-keeps-expected",
        "decommit: usageExpected drops by the known bytes",
        f"{ALLOC}:mark_decommitted",
        "expected -= part.length()",
        "expected -= 0",
    ),
    SpecMutant(
        "allocate-not-zeroed",
        "manual zeroing: allocations are zeroed by hand",
        f"{ALLOC}:take_range",
        "if state.opts.manual_zeroing:",
        "if False:",
    ),
    # --- Merging ---------------------------------------------------------------------------
    SpecMutant(
        "no-merging",
        "merging: equal neighbours are one segment",
        "spec.rangemap:_canonical",
        "and out[-1][2] == value:",
        "and out[-1][2] == value and False:",
    ),
    # --- Access checks -------------------------------------------------------------------
    SpecMutant(
        "execute-allowed",
        "access: execute access is EACCES",
        f"{ALLOC}:map_internal",
        "if at.execute:",
        "if False:",
    ),
    SpecMutant(
        "eacces-errno",
        "errno: execute access is EACCES",
        f"{ALLOC}:map_internal",
        "raise eacces(f",
        "raise enomem(f",
    ),
    SpecMutant(
        "map-to-file-end-refused",
        "access: a mapping may end at the file's end",
        f"{ALLOC}:map_internal",
        "if fr.end > state.file_size:",
        "if fr.end >= state.file_size:",
    ),
    # --- The reclaimer ---------------------------------------------------------------------
    SpecMutant(
        "reclaim-first-first",
        "reclaim order: the last range first",
        f"{RECLAIM}:find_reclaimable",
        "last = state.reclaim.last()",
        "last = next(iter(state.reclaim), None)",
    ),
    SpecMutant(
        "reclaim-no-punch",
        "reclaim: freed pages are punched",
        f"{RECLAIM}:decommit_file",
        "state = replace(state, host=hostmodel.punch_hole(state.host, fr))",
        "state = state",
    ),
    SpecMutant(
        "reclaim-no-zero-fallback",
        "reclaim: a failed punch is zeroed by hand",
        f"{RECLAIM}:decommit_file",
        "state = manually_zero(state, fr)",
        "state = state",
    ),
    SpecMutant(
        "reclaim-keeps-usage",
        "reclaim: reclaimed pages leave the usage set",
        f"{RECLAIM}:mark_reclaimed",
        "usage=state.usage.remove(fr)",
        "usage=state.usage",
    ),
    SpecMutant(
        "idle-no-evictions",
        "Enabled: an idle reclaimer starts evictions",
        f"{RECLAIM}:find_reclaimable",
        "state, _ = start_evictions_locked(state)",
        "pass",
    ),
    SpecMutant(
        "idle-evicts-with-memcg",
        "Enabled with memcg: only pressure starts evictions",
        f"{RECLAIM}:find_reclaimable",
        "and not opts.use_host_memcg_pressure\n",
        "\n",
    ),
    # --- UpdateUsage -----------------------------------------------------------------------
    SpecMutant(
        "no-skip-known",
        "UpdateUsage: skip when the file holds what is known, no swap",
        f"{USAGE}:should_skip",
        "if current_usage == state.usage_expected and state.usage_swapped == 0:",
        "if False:",
    ),
    SpecMutant(
        "no-skip-1s",
        "UpdateUsage: with swap booked, skip for 1 s",
        f"{USAGE}:should_skip",
        "and now < last + SECOND:",
        "and False:",
    ),
    SpecMutant(
        "skip-1s-inclusive",
        "UpdateUsage: the 1 s rule is strict (Before)",
        f"{USAGE}:should_skip",
        "now < last + SECOND",
        "now <= last + SECOND",
    ),
    SpecMutant(
        "no-skip-10ms",
        "UpdateUsage: skip within 10 ms",
        f"{USAGE}:should_skip",
        "return now - last < RESCAN_INTERVAL",
        "return False",
    ),
    SpecMutant(
        "skip-10ms-inclusive",
        "UpdateUsage: the 10 ms rule is strict",
        f"{USAGE}:should_skip",
        "return now - last < RESCAN_INTERVAL",
        "return now - last <= RESCAN_INTERVAL",
    ),
    SpecMutant(
        "scan-time-not-kept",
        "UpdateUsage: a scan records its time",
        f"{USAGE}:begin_update_usage",
        "state = replace(state, usage_last=now)",
        "state = state",
    ),
    SpecMutant(
        "marks-freed-pages",
        "UpdateUsage: only committable pages are marked",
        f"{USAGE}:_mark_committed",
        "if fr.end <= slice_.start or not info.can_commit():",
        "if fr.end <= slice_.start:",
        equivalent="sequentially a committed run lies inside a slice of one committable "
        "segment, so no other segment overlaps it; only a call while mincore runs (which "
        "the protocol cannot make) could put a freed one there",
    ),
    SpecMutant(
        "marked-as-system",
        "accounting: marked pages count to their kind",
        f"{USAGE}:_mark_committed",
        "account(accounting, info.kind, part.length())",
        "account(accounting, MemoryKind.SYSTEM, part.length())",
    ),
    SpecMutant(
        "swap-never-dropped",
        "swap booking: dropped once the file holds no more",
        f"{USAGE}:_finish",
        "elif swapped:",
        "elif False:",
    ),
    SpecMutant(
        "swap-as-anonymous",
        "swap booking: swap is accounted as System",
        f"{USAGE}:_finish",
        "MemoryKind.SYSTEM",
        "MemoryKind.ANONYMOUS",
        count=2,
    ),
    SpecMutant(
        "mincore-errno",
        "errno: a failing mincore's own errno",
        f"{USAGE}:map_for_query",
        "return state, os_error(mincore_error,",
        "return state, os_error(5,",
    ),
    # --- Evictable ranges and eviction -------------------------------------------------------
    SpecMutant(
        "swap-not-booked",
        "swap booking: bytes the scan cannot attribute are booked as swap",
        f"{USAGE}:_finish",
        "if state.usage_expected < current:",
        "if False:",
    ),
    SpecMutant(
        "unmark-nothing",
        "marking: MarkUnevictable removes the range",
        f"{EVICT}:mark_unevictable",
        "ranges=info.ranges.remove(unmarked)",
        "ranges=info.ranges",
    ),
    SpecMutant(
        "empty-unmark-drops-tail",
        "marking: an empty range unmarks nothing (the seed's D4, corrected)",
        f"{EVICT}:mark_unevictable",
        "if state.defects.empty_unevictable:",
        "if True:",
    ),
    SpecMutant(
        "mark-nothing",
        "marking: MarkEvictable adds the range",
        f"{EVICT}:mark_evictable",
        "ranges=info.ranges.assign(FileRange(*er), None)",
        "ranges=info.ranges",
    ),
    SpecMutant(
        "user-kept",
        "user removal: an idle user without ranges is forgotten",
        f"{EVICT}:_kept",
        "return info if info.evicting or info.ranges else None",
        "return info",
    ),
    SpecMutant(
        "evict-first-first",
        "eviction order: the last range first",
        f"{EVICT}:take_eviction",
        "last = info.ranges.last()",
        "last = next(iter(info.ranges), None)",
    ),
    SpecMutant(
        "evictor-keeps-user",
        "user removal: the eviction goroutine deletes its user",
        f"{EVICT}:take_eviction",
        "if info.ranges else None",
        "if info.ranges else replace(info, evicting=False)",
    ),
    SpecMutant(
        "disabled-waits",
        "Disabled: marking starts eviction at once",
        f"{EVICT}:mark_evictable",
        "state = with_user(state, user, replace(info, evicting=True))",
        "pass",
    ),
    SpecMutant(
        "enabled-no-signal",
        "Enabled: marking wakes the reclaimer",
        f"{EVICT}:mark_evictable",
        "state = signal_reclaimer(state)",
        "pass",
    ),
    SpecMutant(
        "manual-start-ignored",
        "Manual: StartEvictions starts them",
        f"{EVICT}:start_evictions",
        "return start_evictions_locked(state)",
        "return state, False",
    ),
    SpecMutant(
        "memcg-ignored",
        "memcg: pressure starts evictions",
        f"{EVICT}:memcg_pressure",
        "return start_evictions_locked(state)",
        "return state, False",
    ),
    SpecMutant(
        "default-is-disabled",
        "options: Default means Enabled",
        "spec.arguments:normalize_opts",
        "delayed = DelayedEviction.ENABLED",
        "delayed = DelayedEviction.DISABLED",
    ),
    SpecMutant(
        "invalid-eviction-accepted",
        "options: an unknown DelayedEvictionType is EINVAL",
        "spec.arguments:normalize_opts",
        "delayed = DelayedEviction(value)",
        "delayed = DelayedEviction(value) if value in (0, 1, 2, 3) else DelayedEviction.ENABLED",
    ),
    SpecMutant(
        "cache-ignores-memcg",
        "ShouldCacheEvictable: memcg pressure counts",
        f"{ALLOC}:should_cache_evictable",
        "is DelayedEviction.MANUAL or opts.use_host_memcg_pressure",
        "is DelayedEviction.MANUAL",
    ),
    SpecMutant(
        "cache-ignores-manual",
        "ShouldCacheEvictable: Manual counts",
        f"{ALLOC}:should_cache_evictable",
        "opts.delayed_eviction is DelayedEviction.MANUAL or ",
        "",
    ),
)
"""Every mutant, grouped by the part of the seed whose rule it breaks."""

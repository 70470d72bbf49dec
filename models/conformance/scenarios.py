"""Hand-named scenarios: one vector for each operation and each branch of the seed.

Each function below records one scenario through a :class:`Recorder`; its
name (the vector's path) and description say what it shows. Expected
responses and states are never written here: the specification produces
them, so a scenario states only the calls. Grouped by the feature they are
about; every group has its out-of-contract calls too.
"""

from __future__ import annotations

from collections.abc import Callable

from models.conformance import codec
from models.conformance.recorder import HOST, Recorder
from models.conformance.vector import Vector
from spec.vocabulary import (
    CHUNK_SIZE,
    HUGE_PAGE_SIZE,
    MAX_PAGE,
    MILLISECOND,
    PAGE_SIZE,
    READ,
    SECOND,
    AccessType,
    DelayedEviction,
    MemoryFileOpts,
)

PAGE, HUGE, GIB = PAGE_SIZE, HUGE_PAGE_SIZE, CHUNK_SIZE
DISABLED = MemoryFileOpts(DelayedEviction.DISABLED)
ENABLED = MemoryFileOpts(DelayedEviction.ENABLED)
MANUAL = MemoryFileOpts(DelayedEviction.MANUAL)
MEMCG = MemoryFileOpts(DelayedEviction.ENABLED, use_host_memcg_pressure=True)
ZEROING = MemoryFileOpts(manual_zeroing=True)
PUNCH_FAILS = {"punch_hole": "EOPNOTSUPP"}
TRUNCATE_FAILS = {"ftruncate": "ENOSPC"}
MAP_FAILS = {"mmap": "ENOMEM"}
MINCORE_FAILS = {"mincore": "EAGAIN"}

Scenario = Callable[[], Vector]
SCENARIOS: dict[str, Scenario] = {}


def scenario(
    name: str,
    description: str,
    options: MemoryFileOpts = MemoryFileOpts(),
    *,
    faults: dict[str, str] | None = None,
    invalid_options: bool = False,
) -> Callable[[Callable[[Recorder], None]], Callable[[Recorder], None]]:
    """Register the decorated function as the scenario ``name``."""

    def register(body: Callable[[Recorder], None]) -> Callable[[Recorder], None]:
        def record() -> Vector:
            recorder = Recorder(
                name, description, options, faults=faults, invalid_options=invalid_options
            )
            body(recorder)
            return recorder.vector()

        if name in SCENARIOS:
            raise ValueError(f"two scenarios named {name}")
        SCENARIOS[name] = record
        return body

    return register


# --- Allocation: placement, alignment, growth ---------------------------------------------


@scenario(
    "alloc/first-page-grows-file", "An empty file grows to one chunk; a page goes at its top."
)
def _first_page(r: Recorder) -> None:
    r.allocate(PAGE)
    r.simple("total_size")


@scenario("alloc/top-down", "Each allocation goes just below the previous one (the highest fit).")
def _top_down(r: Recorder) -> None:
    for pages in (1, 3, 2):
        r.allocate(pages * PAGE)


@scenario("alloc/every-kind", "Allocations of every memory kind; adjacent kinds stay separate.")
def _every_kind(r: Recorder) -> None:
    for kind in ("System", "Anonymous", "PageCache", "Tmpfs", "Ramdiskfs", "Mapped", "Mapped"):
        r.allocate(PAGE, kind)


@scenario(
    "alloc/huge-alignment",
    "Allocations of at least 2 MiB are 2 MiB-aligned, leaving a gap that smaller ones fill.",
)
def _huge_alignment(r: Recorder) -> None:
    r.allocate(PAGE)
    r.allocate(HUGE)
    r.allocate(PAGE)
    r.allocate(HUGE + PAGE)
    r.allocate(HUGE - PAGE)


@scenario("alloc/reuses-reclaimed-gap", "A freed and reclaimed range is the highest fit again.")
def _reuse(r: Recorder) -> None:
    r.allocate(PAGE)
    middle = r.allocate(2 * PAGE)
    r.allocate(PAGE)
    assert middle is not None
    r.dec_ref(middle)
    r.simple("reclaim")
    r.allocate(2 * PAGE)


@scenario(
    "alloc/unreclaimed-not-reused",
    "Pages freed but not yet reclaimed stay in the usage set: allocations go around them.",
)
def _unreclaimed(r: Recorder) -> None:
    r.allocate(PAGE)
    middle = r.allocate(PAGE)
    assert middle is not None
    r.dec_ref(middle)
    r.allocate(PAGE)


@scenario("alloc/small-gap-skipped", "A gap too small for the length is skipped for a lower one.")
def _small_gap(r: Recorder) -> None:
    r.allocate(PAGE)
    hole = r.allocate(PAGE)
    r.allocate(PAGE)
    assert hole is not None
    r.dec_ref(hole)
    r.simple("reclaim")
    r.allocate(2 * PAGE)
    r.allocate(PAGE)


@scenario(
    "alloc/growth-doubling",
    "The file doubles when nothing fits; a new range starts above every allocated one.",
)
def _doubling(r: Recorder) -> None:
    r.allocate(GIB)
    r.allocate(PAGE)
    r.allocate(2 * GIB)
    r.simple("total_size")


@scenario("alloc/growth-several-doublings", "One allocation may double the file several times.")
def _several(r: Recorder) -> None:
    r.allocate(3 * GIB)
    r.allocate(PAGE)


@scenario(
    "alloc/growth-above-last-allocation",
    "Growing, the range goes above the last allocated range even if a lower gap is large.",
)
def _above_last(r: Recorder) -> None:
    r.allocate(PAGE)
    r.allocate(GIB)


@scenario(
    "alloc/growth-above-every-allocation",
    "Growing, the range starts above the last allocated range, even when the first doubling's "
    "top would fit above 0: a page at the top of 1 GiB, then 1.5 GiB, goes to [2.5, 4) GiB.",
)
def _above_every(r: Recorder) -> None:
    r.allocate(PAGE)
    r.allocate(GIB + GIB // 2)


@scenario(
    "alloc/huge-growth-alignment",
    "Growth keeps huge alignment: the range starts at the aligned end of the last allocation.",
)
def _huge_growth(r: Recorder) -> None:
    first = r.allocate(GIB - HUGE)
    assert first is not None
    r.dec_ref((first[0], first[0] + PAGE))
    r.allocate(HUGE + PAGE)
    r.allocate(GIB)


@scenario(
    "growth/enomem-at-int64-limit",
    "The file grows to 2^62 bytes; growing again would pass the int64 limit: ENOMEM, nothing "
    "changed.",
)
def _int64_limit(r: Recorder) -> None:
    r.allocate(1 << 62)
    r.allocate(1 << 62)
    r.allocate(PAGE)
    r.simple("total_size")


@scenario("growth/enomem-too-long", "Lengths beyond 2^62 can never fit; the file is untouched.")
def _too_long(r: Recorder) -> None:
    r.allocate((1 << 62) + PAGE)
    r.allocate(1 << 63)
    r.allocate(MAX_PAGE)
    r.allocate(PAGE)


@scenario("growth/enomem-fill", "allocate_and_fill fails with ENOMEM before reading anything.")
def _fill_enomem(r: Recorder) -> None:
    r.fill(1 << 63, b"\x07")


@scenario("alloc/bad-length", "Zero and unaligned lengths are out of contract; nothing changes.")
def _bad_length(r: Recorder) -> None:
    r.allocate(PAGE)
    r.allocate(0)
    r.allocate(PAGE + 1)
    r.allocate(PAGE - 1)
    r.fill(PAGE + 1, b"")


# --- allocate_and_fill ------------------------------------------------------------------


@scenario("fill/full", "A fill with exactly enough data keeps every page; the data reads back.")
def _fill_full(r: Recorder) -> None:
    fr = r.fill(2 * PAGE, 2 * PAGE)
    assert fr is not None
    mapping = r.map(fr, READ)
    assert mapping is not None
    r.read(mapping, (fr[0], fr[0] + 16))
    r.read(mapping, (fr[0] + PAGE - 8, fr[0] + PAGE + 8))


@scenario("fill/longer-data", "Data beyond the length is not read; the fill completes.")
def _fill_longer(r: Recorder) -> None:
    r.fill(PAGE, bytes(range(256)) * 20)


@scenario(
    "fill/eof-mid-page",
    "The reader ends inside the second page: the first page is kept, the rest freed (EOF).",
)
def _fill_eof(r: Recorder) -> None:
    fr = r.fill(3 * PAGE, PAGE + 904)
    assert fr is not None
    mapping = r.map(fr, READ)
    assert mapping is not None
    r.read(mapping, (fr[1] - 4, fr[1]))


@scenario("fill/eof-at-once", "A reader with no data: an empty range, everything freed (EOF).")
def _fill_empty(r: Recorder) -> None:
    r.fill(2 * PAGE, b"")
    r.simple("reclaim")


@scenario(
    "fill/reader-error",
    "The reader fails after two pages and a bit: two pages kept, the error returned.",
)
def _fill_error(r: Recorder) -> None:
    r.fill(4 * PAGE, 2 * PAGE + 100, reader_error="EIO")


@scenario("fill/reader-error-at-once", "The reader fails at once: an empty range and the error.")
def _fill_error_now(r: Recorder) -> None:
    r.fill(PAGE, b"", reader_error="EIO")


@scenario("fill/huge", "A 2 MiB fill is huge-aligned and reads back across page boundaries.")
def _fill_huge(r: Recorder) -> None:
    fr = r.fill(HUGE, HUGE, kind="Tmpfs")
    assert fr is not None
    mapping = r.map(fr, READ)
    assert mapping is not None
    r.read(mapping, (fr[0] + 5 * PAGE - 3, fr[0] + 5 * PAGE + 3))


@scenario("fill/manual-zeroing", "Filling with manual zeroing: pages zeroed, then filled.", ZEROING)
def _fill_zeroing(r: Recorder) -> None:
    r.fill(2 * PAGE, PAGE + 1)


# --- References --------------------------------------------------------------------------


@scenario("refcount/split-and-merge", "inc_ref on part of a range splits it; dec_ref merges it.")
def _split_merge(r: Recorder) -> None:
    fr = r.allocate(4 * PAGE)
    assert fr is not None
    middle = (fr[0] + PAGE, fr[0] + 3 * PAGE)
    r.inc_ref(middle)
    r.inc_ref(middle)
    r.dec_ref(middle)
    r.dec_ref(middle)


@scenario("refcount/free-all", "The last reference gone, pages become System, refs 0, reclaimable.")
def _free_all(r: Recorder) -> None:
    fr = r.allocate(2 * PAGE, "Mapped")
    assert fr is not None
    r.dec_ref(fr)


@scenario("refcount/free-part", "Freeing part of a range frees only those pages.")
def _free_part(r: Recorder) -> None:
    fr = r.allocate(3 * PAGE)
    assert fr is not None
    r.dec_ref((fr[0] + PAGE, fr[0] + 2 * PAGE))
    r.dec_ref((fr[0], fr[0] + PAGE))


@scenario("refcount/across-kinds", "References over adjacent ranges of different kinds.")
def _across(r: Recorder) -> None:
    high = r.allocate(PAGE, "Anonymous")
    low = r.allocate(PAGE, "PageCache")
    assert high is not None and low is not None
    both = (low[0], high[1])
    r.inc_ref(both)
    r.dec_ref(both)
    r.dec_ref(both)


@scenario(
    "refcount/free-known-committed",
    "Freeing pages known to be committed moves their accounting to System.",
)
def _free_known(r: Recorder) -> None:
    fr = r.allocate(2 * PAGE, "Tmpfs")
    assert fr is not None
    r.touch(fr)
    r.update_usage()
    r.dec_ref(fr)
    r.simple("reclaim")


@scenario(
    "refcount/bad-ranges",
    "Out-of-contract references: unallocated, freed, unaligned, empty or ill-formed ranges; "
    "a rejected call changes nothing, even where part of the range is valid.",
)
def _bad_refs(r: Recorder) -> None:
    fr = r.allocate(2 * PAGE)
    assert fr is not None
    below = (fr[0] - PAGE, fr[0])
    r.inc_ref(below)
    r.dec_ref(below)
    r.inc_ref((fr[0] - PAGE, fr[0] + PAGE))
    r.dec_ref((fr[0] + 1, fr[1]))
    r.dec_ref((fr[0], fr[0]))
    r.inc_ref((fr[1], fr[0]))
    r.dec_ref((fr[0], fr[0] + PAGE))
    r.dec_ref(fr)
    r.inc_ref((fr[0], fr[0] + PAGE))
    r.dec_ref((fr[0], fr[0] + PAGE))


# --- Decommit -----------------------------------------------------------------------------


@scenario(
    "decommit/clears-known-committed",
    "Decommit releases the memory: knownCommitted cleared, accounting and usage_expected drop.",
)
def _decommit_known(r: Recorder) -> None:
    fr = r.allocate(3 * PAGE)
    assert fr is not None
    mapping = r.map(fr)
    assert mapping is not None
    r.write(mapping, fr[0], 3 * PAGE)
    r.update_usage()
    r.decommit((fr[0] + PAGE, fr[0] + 2 * PAGE))
    r.read(mapping, (fr[0] + PAGE - 2, fr[0] + PAGE + 2))
    r.decommit(fr)
    r.update_usage()


@scenario("decommit/freed-pages", "Pages awaiting reclaim may be decommitted.")
def _decommit_freed(r: Recorder) -> None:
    fr = r.allocate(PAGE)
    assert fr is not None
    r.dec_ref(fr)
    r.decommit(fr)
    r.simple("reclaim")


@scenario("decommit/bad-ranges", "Decommit of unallocated, unaligned or empty ranges.")
def _decommit_bad(r: Recorder) -> None:
    fr = r.allocate(PAGE)
    assert fr is not None
    r.decommit((fr[0] - PAGE, fr[1]))
    r.decommit((fr[0], fr[0] + 1))
    r.decommit((fr[0], fr[0]))


@scenario(
    "decommit/manual-zeroing",
    "With manual zeroing, decommit writes zeroes: the data is gone, the pages committed.",
    ZEROING,
)
def _decommit_zeroing(r: Recorder) -> None:
    fr = r.allocate(PAGE)
    assert fr is not None
    mapping = r.map(fr)
    assert mapping is not None
    r.write(mapping, fr[0] + 10, b"\xff\xee")
    r.update_usage()
    r.decommit(fr)
    r.read(mapping, (fr[0] + 8, fr[0] + 14))
    r.update_usage()


@scenario(
    "decommit/punch-fails",
    "When fallocate(PUNCH_HOLE) fails, decommit returns its error and changes nothing.",
    faults=PUNCH_FAILS,
)
def _decommit_fails(r: Recorder) -> None:
    fr = r.allocate(PAGE)
    assert fr is not None
    r.touch(fr)
    r.update_usage()
    r.decommit(fr)


# --- Mappings -------------------------------------------------------------------------------


@scenario("map/write-read", "Bytes written through a mapping read back, across a page boundary.")
def _write_read(r: Recorder) -> None:
    fr = r.allocate(2 * PAGE)
    assert fr is not None
    mapping = r.map(fr)
    assert mapping is not None
    r.write(mapping, fr[0] + PAGE - 3, bytes.fromhex("0102030405060708"))
    r.read(mapping, (fr[0] + PAGE - 4, fr[0] + PAGE + 6))
    r.write(mapping, fr[0], b"")
    r.map((fr[0] + 1, fr[0] + 100), READ)


@scenario(
    "map/across-chunks",
    "A mapping that crosses chunk boundaries has one block per chunk; writes span them.",
)
def _across_chunks(r: Recorder) -> None:
    fr = r.allocate(GIB + PAGE)  # huge-aligned below 2 GiB: it crosses the 1 GiB boundary
    assert fr is not None and fr[0] < GIB < fr[1]
    mapping = r.map((GIB - PAGE, GIB + PAGE))
    assert mapping is not None
    r.write(mapping, GIB - 2, b"\xaa\xbb\xcc\xdd")
    r.read(mapping, (GIB - 4, GIB + 4))
    r.map((PAGE, 2 * GIB))


@scenario("map/unallocated-reads-zero", "Any range inside the file may be mapped; holes read zero.")
def _unallocated(r: Recorder) -> None:
    r.allocate(PAGE)
    mapping = r.map((0, 2 * PAGE), READ)
    assert mapping is not None
    r.read(mapping, (PAGE - 8, PAGE + 8))


@scenario(
    "map/bad-calls",
    "Execute access is EACCES; empty, ill-formed or beyond-the-file ranges are out of contract.",
)
def _map_bad(r: Recorder) -> None:
    fr = r.allocate(PAGE)
    assert fr is not None
    r.map(fr, AccessType(read=True, execute=True))
    r.map((fr[0], fr[0]))
    r.map((fr[1], fr[0]))
    r.map((fr[0], GIB + 1))


# --- The reclaimer ---------------------------------------------------------------------------


@scenario("reclaim/idle", "The reclaimer with nothing to do reclaims nothing.")
def _reclaim_idle(r: Recorder) -> None:
    r.simple("reclaim")
    r.allocate(PAGE)
    r.simple("reclaim")


@scenario("reclaim/last-range-first", "The reclaimer takes the highest freed range first.")
def _last_first(r: Recorder) -> None:
    ranges = [r.allocate(PAGE) for _ in range(5)]
    for index in (0, 2, 4):
        fr = ranges[index]
        assert fr is not None
        r.dec_ref(fr)
    r.simple("reclaim")


@scenario("reclaim/merged", "Adjacent freed ranges are reclaimed as one.")
def _merged(r: Recorder) -> None:
    first = r.allocate(PAGE)
    second = r.allocate(2 * PAGE)
    assert first is not None and second is not None
    r.dec_ref(first)
    r.dec_ref(second)
    r.simple("reclaim")


@scenario(
    "reclaim/reused-reads-zero",
    "Reclaimed memory allocated again reads as zeroes, and the file holds none of it.",
)
def _reused_zero(r: Recorder) -> None:
    fr = r.allocate(PAGE)
    assert fr is not None
    r.touch(fr, b"\x5a" * 32)
    r.update_usage()
    r.dec_ref(fr)
    r.simple("reclaim")
    again = r.allocate(PAGE)
    assert again is not None
    mapping = r.map(again, READ)
    assert mapping is not None
    r.read(mapping, (again[0], again[0] + 32))


@scenario(
    "reclaim/manual-zeroing",
    "With manual zeroing the reclaimer does not punch; allocation zeroes the pages again.",
    ZEROING,
)
def _reclaim_zeroing(r: Recorder) -> None:
    fr = r.allocate(PAGE)
    assert fr is not None
    r.touch(fr, b"\x11\x22")
    r.dec_ref(fr)
    r.simple("reclaim")
    again = r.allocate(PAGE)
    assert again is not None
    mapping = r.map(again, READ)
    assert mapping is not None
    r.read(mapping, (again[0], again[0] + 4))
    r.update_usage()


@scenario(
    "reclaim/punch-fails-zeroes",
    "When punching fails, the reclaimer zeroes the pages by hand instead.",
    faults=PUNCH_FAILS,
)
def _reclaim_fails(r: Recorder) -> None:
    fr = r.allocate(PAGE)
    assert fr is not None
    r.touch(fr, b"\x33")
    r.dec_ref(fr)
    r.simple("reclaim")
    again = r.allocate(PAGE)
    assert again is not None
    mapping = r.map(again, READ)
    assert mapping is not None
    r.read(mapping, (again[0], again[0] + 2))


# --- Failing kernel calls (faults other than a failing punch: feature kernel-faults) -------------
# What each leaves behind is the specification's (docs/spec.md, "Faults are inputs"); where
# it departs from the seed, docs/divergences.md says so (F1-F3).


@scenario(
    "faults/create-ftruncate-fails",
    "When ftruncate fails, creation fails with its errno and there is no file (invalid "
    "options are still EINVAL: they are checked first); a create without faults then works.",
    faults=TRUNCATE_FAILS,
)
def _create_truncate(r: Recorder) -> None:
    invalid = codec.options_json(None, invalid=True)
    r.call({"op": "create", "options": invalid, "faults": TRUNCATE_FAILS})
    r.call({"op": "create", "options": codec.options_json(None)})
    r.allocate(PAGE)


@scenario(
    "faults/allocate-ftruncate-fails",
    "With ftruncate failing, allocations that fit in the file still succeed; one that must "
    "grow the file (allocate or allocate_and_fill) fails with the errno and changes nothing. "
    "Cleared, the file grows again.",
)
def _allocate_truncate(r: Recorder) -> None:
    r.allocate(PAGE)
    r.set_faults(**TRUNCATE_FAILS)
    r.allocate(2 * PAGE)
    r.allocate(GIB)
    r.fill(GIB, b"\x01")
    r.simple("total_size")
    r.set_faults()
    r.allocate(GIB)


@scenario(
    "faults/allocate-zeroing-mmap-fails",
    "With manual zeroing and mmap failing, allocate fails with the errno after growing the "
    "file (as the seed sets fileSize before zeroing): the file has grown, nothing is "
    "allocated, nothing zeroed. Cleared, the same range is allocated; its chunk is mapped "
    "then, so a later allocation there needs no mmap and succeeds despite the fault.",
    ZEROING,
    faults=MAP_FAILS,
)
def _allocate_zeroing_map(r: Recorder) -> None:
    r.allocate(PAGE)
    r.simple("total_size")
    r.set_faults()
    r.allocate(PAGE)
    r.set_faults(**MAP_FAILS)
    r.allocate(PAGE)


@scenario(
    "faults/map-internal-mmap-fails",
    "With mmap failing, map_internal of a chunk not mapped yet fails with the errno and "
    "changes nothing, even if part of the range lies in a chunk already mapped. A chunk once "
    "mapped is never mapped again: with the fault set, mapping inside it still succeeds.",
)
def _map_fails(r: Recorder) -> None:
    fr = r.allocate(GIB + PAGE)  # huge-aligned below 2 GiB: it crosses the 1 GiB boundary
    assert fr is not None and fr[0] < GIB < fr[1]
    low = (fr[0], fr[0] + PAGE)
    r.set_faults(**MAP_FAILS)
    r.map(low)
    r.set_faults()
    mapping = r.map(low)
    assert mapping is not None
    r.write(mapping, low[0], b"\x0f")
    r.set_faults(**MAP_FAILS)
    r.map((fr[0], GIB + PAGE))
    again = r.map(low, READ)
    assert again is not None
    r.read(again, (low[0], low[0] + 2))


@scenario(
    "faults/fill-mmap-fails-releases",
    "allocate_and_fill whose mapping fails (mmap): the allocation is released at once "
    "(DecRef: freed, awaiting reclaim), the errno returned, nothing read. Cleared, the range "
    "is reclaimed and filled.",
    faults=MAP_FAILS,
)
def _fill_map(r: Recorder) -> None:
    r.fill(2 * PAGE, 2 * PAGE)
    r.set_faults()
    r.simple("reclaim")
    fr = r.fill(2 * PAGE, 2 * PAGE)
    assert fr is not None
    r.set_faults(**MAP_FAILS)
    r.fill(PAGE, PAGE)  # in the same chunk, mapped now: no mmap, no failure


@scenario(
    "faults/decommit-punch-fails-then-works",
    "Decommit returns fallocate's errno and changes nothing, whichever errno; the data is "
    "still there. Cleared, decommit works and the pages read as zeroes.",
)
def _decommit_punch(r: Recorder) -> None:
    fr = r.allocate(PAGE)
    assert fr is not None
    mapping = r.map(fr)
    assert mapping is not None
    r.write(mapping, fr[0], b"\x77\x66")
    r.update_usage()
    for code in ("EIO", "EOPNOTSUPP"):
        r.set_faults(punch_hole=code)
        r.decommit(fr)
    r.read(mapping, (fr[0], fr[0] + 2))
    r.set_faults()
    r.decommit(fr)
    r.read(mapping, (fr[0], fr[0] + 2))


@scenario(
    "faults/decommit-zeroing-mmap-mapped-chunk",
    "With manual zeroing, decommit zeroes by hand; the chunk was mapped when the pages were "
    "allocated (and zeroed), so a failing mmap does not matter. (Decommit failing on mmap is "
    "unreachable through the protocol: every allocated page under manual zeroing lies in a "
    "mapped chunk.)",
    ZEROING,
)
def _decommit_zeroing_map(r: Recorder) -> None:
    fr = r.allocate(PAGE)
    assert fr is not None
    r.touch(fr, b"\x99")
    r.set_faults(**MAP_FAILS, punch_hole="EIO")
    r.decommit(fr)
    mapping = r.map(fr, READ)
    assert mapping is not None
    r.read(mapping, (fr[0], fr[0] + 1))


@scenario(
    "faults/usage-mincore-fails",
    "update_usage with mincore failing returns the errno; the scan marked nothing, and its "
    "swap booking still ran (the committed bytes it could not attribute are System). "
    "Cleared, a scan a second later marks the page and drops the swap.",
)
def _usage_mincore(r: Recorder) -> None:
    fr = r.allocate(2 * PAGE)
    assert fr is not None
    r.touch(fr)
    r.set_faults(**MINCORE_FAILS)
    r.update_usage()
    r.set_faults()
    r.update_usage(advance=SECOND)


@scenario(
    "faults/usage-mmap-fails-mid-scan",
    "update_usage over a segment crossing a chunk boundary, the second chunk never mapped, "
    "with mmap failing: the slice in the first chunk is marked, the scan stops at the second, "
    "the swap is booked (the host says a page outside every segment is committed too), the "
    "errno returned. Cleared, a scan a second later goes through: still the same swap.",
)
def _usage_map(r: Recorder) -> None:
    fr = r.allocate(GIB + PAGE)
    assert fr is not None and fr[0] < GIB < fr[1]
    low = (fr[0], fr[0] + PAGE)
    r.touch(low, b"\x01")
    r.set_faults(**MAP_FAILS)
    r.update_usage(committed=[(0, PAGE), low])
    r.set_faults()
    r.update_usage(advance=SECOND, committed=[(0, PAGE), low])


@scenario(
    "faults/usage-mincore-fails-maps-no-more",
    "A scan stopped by a failing mincore does not map the segment's remaining chunks (the "
    "seed does: docs/divergences.md F3), so a later map_internal there still needs mmap, and "
    "fails while mmap does.",
)
def _usage_mincore_stops(r: Recorder) -> None:
    fr = r.allocate(GIB + PAGE)
    assert fr is not None and fr[0] < GIB < fr[1]
    r.touch((fr[0], fr[0] + PAGE), b"\x01")
    r.set_faults(**MINCORE_FAILS)
    r.update_usage()
    r.set_faults(**MAP_FAILS)
    r.map((GIB, GIB + PAGE))


@scenario(
    "faults/reclaimer-double-fault",
    "The reclaimer can neither punch (fallocate fails) nor zero by hand (the chunk is not "
    "mapped and mmap fails): reclaim returns mmap's errno; the range stays in the usage set, "
    "unreferenced and off the reclaim set, never handed out again; the reclaimer stops and "
    "reclaims nothing more, even with the faults cleared; destroy still works "
    "(docs/divergences.md F1: the seed panics).",
    faults={"punch_hole": "EIO", **MAP_FAILS},
)
def _double_fault(r: Recorder) -> None:
    fr = r.allocate(PAGE)
    assert fr is not None
    r.dec_ref(fr)
    r.simple("reclaim")
    r.simple("reclaim")
    r.set_faults()
    other = r.allocate(PAGE)
    assert other is not None and other != fr
    r.dec_ref(other)
    r.simple("reclaim")
    r.simple("destroy")
    r.set_faults(**MAP_FAILS)


@scenario(
    "faults/reclaim-zeroes-mapped-chunk",
    "With punch and mmap failing, the reclaimer still zeroes by hand a range whose chunk is "
    "already mapped; the range is reused and reads as zeroes.",
)
def _reclaim_mapped(r: Recorder) -> None:
    fr = r.allocate(PAGE)
    assert fr is not None
    r.touch(fr, b"\x44")
    r.set_faults(punch_hole="EIO", **MAP_FAILS)
    r.dec_ref(fr)
    r.simple("reclaim")
    again = r.allocate(PAGE)
    assert again == fr
    mapping = r.map(again, READ)
    assert mapping is not None
    r.read(mapping, (again[0], again[0] + 1))


@scenario(
    "faults/destroy-with-faults",
    "Destroy with every fault set: the freed range is not reclaimed, the file is closed; "
    "set_faults is still allowed after destroy, other calls are out of contract.",
    faults={"punch_hole": "EIO", **MAP_FAILS, **MINCORE_FAILS},
)
def _destroy_faults(r: Recorder) -> None:
    fr = r.allocate(PAGE)
    assert fr is not None
    r.dec_ref(fr)
    r.set_faults(**TRUNCATE_FAILS, punch_hole="EIO", **MAP_FAILS, **MINCORE_FAILS)
    r.simple("destroy")
    r.set_faults()
    r.allocate(PAGE)


# --- Eviction ----------------------------------------------------------------------------------


@scenario(
    "evict/enabled-when-reclaimer-idle",
    "Enabled without memcg: evictions start when the reclaimer runs out of work; each user's "
    "last range is evicted first.",
    ENABLED,
)
def _enabled(r: Recorder) -> None:
    r.mark_evictable("a", (0, 16))
    r.mark_evictable("a", (32, 48))
    r.simple("run_evictions")
    r.simple("reclaim")
    r.simple("run_evictions")


@scenario(
    "evict/default-is-enabled",
    "Default behaves as Enabled: marking signals the reclaimer, which starts evictions.",
)
def _default(r: Recorder) -> None:
    r.simple("reclaim")
    r.mark_evictable("a", (0, 8))
    r.simple("reclaim")
    r.simple("run_evictions")


@scenario("evict/disabled-at-once", "Disabled: marking starts eviction at once.", DISABLED)
def _disabled(r: Recorder) -> None:
    r.mark_evictable("a", (0, 16))
    r.mark_evictable("a", (100, 116))
    r.simple("run_evictions")
    r.mark_evictable("a", (200, 216))
    r.simple("run_evictions")


@scenario(
    "evict/manual-only-when-started",
    "Manual: nothing is evicted until start_evictions.",
    MANUAL,
)
def _manual(r: Recorder) -> None:
    r.mark_evictable("a", (0, 16))
    r.simple("reclaim")
    r.simple("run_evictions")
    r.simple("start_evictions")
    r.simple("start_evictions")
    r.simple("run_evictions")


@scenario(
    "evict/memcg-pressure",
    "Enabled with memcg pressure: only a pressure notification starts evictions.",
    MEMCG,
)
def _memcg(r: Recorder) -> None:
    r.simple("memcg_pressure")
    r.mark_evictable("a", (0, 16))
    r.simple("reclaim")
    r.simple("memcg_pressure")
    r.simple("memcg_pressure")
    r.simple("run_evictions")


@scenario(
    "evict/memcg-ignored-without-option",
    "Without use_host_memcg_pressure, pressure notifications change nothing.",
    MANUAL,
)
def _memcg_ignored(r: Recorder) -> None:
    r.mark_evictable("a", (0, 16))
    r.simple("memcg_pressure")


@scenario("evict/unmark-splits", "mark_unevictable removes part of a range.", MANUAL)
def _unmark(r: Recorder) -> None:
    r.mark_evictable("a", (0, 64))
    r.mark_evictable("a", (32, 96))
    r.mark_unevictable("a", (16, 32))
    r.mark_unevictable("a", (80, 200))
    r.mark_unevictable("nobody", (0, 10))
    r.mark_unevictable("a", (0, 80))


@scenario("evict/unmark-all", "mark_all_unevictable forgets a user.", MANUAL)
def _unmark_all(r: Recorder) -> None:
    r.mark_evictable("a", (0, 64))
    r.mark_evictable("b", (0, 64))
    r.mark_all_unevictable("a")
    r.mark_all_unevictable("nobody")


@scenario(
    "evict/unmark-while-evicting",
    "A user whose eviction has started keeps its entry until the eviction ends.",
    MANUAL,
)
def _unmark_evicting(r: Recorder) -> None:
    r.mark_evictable("a", (0, 64))
    r.mark_evictable("b", (0, 64))
    r.simple("start_evictions")
    r.mark_all_unevictable("a")
    r.mark_unevictable("b", (0, 64))
    r.mark_evictable("b", (8, 16))
    r.simple("run_evictions")


@scenario("evict/two-users", "Each user's ranges are evicted last first.", MANUAL)
def _two_users(r: Recorder) -> None:
    r.mark_evictable("b", (0, 16))
    r.mark_evictable("a", (0, 16))
    r.mark_evictable("b", (32, 48))
    r.mark_evictable("a", (64, 80))
    r.simple("start_evictions")
    r.simple("run_evictions")


@scenario(
    "evict/empty-range",
    "Marking an empty range creates an entry with no ranges, as the seed does.",
)
def _empty(r: Recorder) -> None:
    r.mark_evictable("a", (5, 5))
    r.mark_unevictable("a", (0, 0))
    r.simple("reclaim")
    r.simple("run_evictions")


@scenario(
    "evict/unmark-empty-inside",
    "Unmarking an empty range inside an evictable range removes nothing; the seed removes the "
    "rest of the range (docs/divergences.md D4, feature unmark-empty).",
)
def _unmark_empty_inside(r: Recorder) -> None:
    r.mark_evictable("b", (0, 32))
    r.mark_unevictable("b", (16, 16))
    r.simple("start_evictions")
    r.simple("run_evictions")


@scenario(
    "evict/unmark-empty-boundaries",
    "Empty ranges at a range's ends or in a gap, the gap between two ranges, and a whole range: "
    "the seed's loop and ours agree on each.",
    MANUAL,
)
def _unmark_boundaries(r: Recorder) -> None:
    r.mark_evictable("a", (16, 48))
    r.mark_evictable("a", (64, 80))
    for er in ((16, 16), (48, 48), (8, 8), (56, 56), (96, 96), (48, 64)):
        r.mark_unevictable("a", er)
    r.mark_unevictable("a", (64, 80))
    r.mark_unevictable("nobody", (4, 4))
    r.mark_unevictable("a", (16, 48))


@scenario(
    "evict/mark-empty-or-touching",
    "Marking an empty range, inside a range or not, adds nothing (though Disabled starts an "
    "eviction goroutine, which finds nothing); touching and overlapping ranges merge.",
    DISABLED,
)
def _mark_touching(r: Recorder) -> None:
    r.mark_evictable("a", (8, 8))
    r.simple("run_evictions")
    r.mark_evictable("b", (0, 16))
    r.mark_evictable("b", (16, 32))
    r.mark_evictable("b", (8, 8))
    r.mark_evictable("b", (24, 40))
    r.mark_evictable("b", (40, 40))
    r.simple("run_evictions")


@scenario("evict/bad-range", "An ill-formed evictable range is out of contract.", MANUAL)
def _evict_bad(r: Recorder) -> None:
    r.mark_evictable("a", (9, 3))
    r.mark_evictable("a", (0, 3))
    r.mark_unevictable("a", (9, 3))


# --- Usage accounting with explicit host answers ------------------------------------------------


@scenario(
    "usage/marks-touched-pages",
    "update_usage marks exactly the committed pages of live allocations, by kind.",
)
def _touched(r: Recorder) -> None:
    fr = r.allocate(4 * PAGE, "Anonymous")
    other = r.allocate(PAGE, "PageCache")
    assert fr is not None and other is not None
    r.touch((fr[0] + PAGE, fr[1]))
    r.touch(other)
    r.update_usage()
    r.update_usage(advance=SECOND)


@scenario(
    "usage/swap-booking",
    "Committed bytes update_usage cannot attribute are booked as swap (System); the booking "
    "follows the host: rescanned after 1 s, reduced, then dropped.",
)
def _swap(r: Recorder) -> None:
    fr = r.allocate(4 * PAGE)
    assert fr is not None
    r.touch(fr)
    r.update_usage()
    extra = [(0, 3 * PAGE), (fr[0], fr[0] + PAGE)]
    r.update_usage(committed=extra)
    r.update_usage(advance=500 * MILLISECOND, committed=extra)
    r.update_usage(advance=SECOND, committed=extra)
    r.update_usage(advance=SECOND, committed=[(0, PAGE), (fr[0], fr[0] + PAGE)])
    r.update_usage(advance=SECOND, committed=[(fr[0], fr[0] + PAGE)])


@scenario(
    "usage/rescan-interval",
    "A scan is skipped within 10 ms of the previous one, whatever the host says.",
)
def _interval(r: Recorder) -> None:
    fr = r.allocate(2 * PAGE)
    assert fr is not None
    r.touch(fr)
    r.touch((fr[0] + PAGE, fr[1]))
    r.update_usage(committed=[(fr[0], fr[0] + PAGE)])
    r.update_usage(advance=9 * MILLISECOND, committed=[(fr[0], fr[1])])
    r.update_usage(advance=MILLISECOND, committed=[(fr[0], fr[1])])


@scenario(
    "usage/rescan-boundaries",
    "The skip rules at their edges: 10 ms less a nanosecond after a scan is skipped, 10 ms is "
    "not; with swap booked, a second less a nanosecond is skipped, a second is not.",
)
def _rescan_boundaries(r: Recorder) -> None:
    fr = r.allocate(3 * PAGE)
    assert fr is not None
    pages = [(fr[0] + n * PAGE, fr[0] + (n + 1) * PAGE) for n in range(3)]
    for page in pages:
        r.touch(page)
    one, two, three = ((fr[0], fr[0] + n * PAGE) for n in (1, 2, 3))
    r.update_usage(committed=[one])
    r.update_usage(advance=10 * MILLISECOND - 1, committed=[two])
    r.update_usage(advance=1, committed=[two])
    r.update_usage(committed=[(0, PAGE), two])
    # The file holds what is known plus the swap booked: only the second rule decides.
    r.update_usage(advance=SECOND - 1, committed=[three])
    r.update_usage(advance=1, committed=[three])


@scenario(
    "usage/freed-pages-not-marked",
    "Committed pages without references are not marked; they count as swap until reclaimed.",
)
def _freed_not_marked(r: Recorder) -> None:
    fr = r.allocate(2 * PAGE)
    assert fr is not None
    r.touch(fr)
    r.dec_ref((fr[0], fr[0] + PAGE))
    r.update_usage()
    r.simple("reclaim")
    r.update_usage(advance=SECOND)


@scenario(
    "usage/multi-chunk-segment",
    "A segment spanning chunks is scanned chunk by chunk.",
)
def _multi_chunk(r: Recorder) -> None:
    fr = r.allocate(GIB + PAGE)
    assert fr is not None
    r.touch((fr[0], fr[0] + PAGE))
    r.touch((GIB, GIB + PAGE))
    r.touch((fr[1] - PAGE, fr[1]))
    r.update_usage()


@scenario(
    "usage/adjacent-segment-not-marked",
    "A segment that merely ends where committed pages begin is not marked (the seed's "
    "off-by-one, corrected: docs/divergences.md).",
)
def _adjacent(r: Recorder) -> None:
    high = r.allocate(PAGE, "Anonymous")
    low = r.allocate(PAGE, "PageCache")
    assert high is not None and low is not None
    r.touch(high)
    r.update_usage()


@scenario("usage/manual-zeroing-commits", "Manual zeroing commits what it zeroes.", ZEROING)
def _zeroing_commits(r: Recorder) -> None:
    r.allocate(2 * PAGE)
    r.update_usage()


# --- The real host (feature host) ----------------------------------------------------------------


@scenario(
    "host/total-usage",
    "total_usage follows the pages touched, decommitted and reclaimed.",
)
def _total_usage(r: Recorder) -> None:
    r.simple("total_usage")
    fr = r.allocate(4 * PAGE)
    assert fr is not None
    r.simple("total_usage")
    mapping = r.map(fr)
    assert mapping is not None
    r.write(mapping, fr[0] + 5, b"\x01")
    r.read(mapping, (fr[0] + PAGE, fr[0] + PAGE + 1))
    r.simple("total_usage")
    r.decommit((fr[0], fr[0] + PAGE))
    r.simple("total_usage")
    r.dec_ref(fr)
    r.simple("reclaim")
    r.simple("total_usage")


@scenario("host/update-usage", "update_usage asking the real host after touches.")
def _host_update(r: Recorder) -> None:
    fr = r.allocate(3 * PAGE)
    assert fr is not None
    r.touch((fr[0] + PAGE, fr[1]))
    r.update_usage(committed=HOST)
    r.dec_ref(fr)
    r.simple("reclaim")
    r.update_usage(advance=SECOND, committed=HOST)


@scenario("host/manual-zeroing", "With manual zeroing, allocation commits the pages.", ZEROING)
def _host_zeroing(r: Recorder) -> None:
    r.allocate(2 * PAGE)
    r.simple("total_usage")
    r.update_usage(committed=HOST)


# --- Options, queries, destroy --------------------------------------------------------------------


@scenario(
    "options/invalid-eviction",
    "An unknown DelayedEvictionType makes creation fail with EINVAL.",
    invalid_options=True,
)
def _invalid(r: Recorder) -> None:
    del r


for _name, _opts in [
    ("default", MemoryFileOpts()),
    ("disabled", DISABLED),
    ("enabled", ENABLED),
    ("manual", MANUAL),
    ("enabled-memcg", MEMCG),
    ("disabled-memcg", MemoryFileOpts(DelayedEviction.DISABLED, use_host_memcg_pressure=True)),
    ("manual-memcg", MemoryFileOpts(DelayedEviction.MANUAL, use_host_memcg_pressure=True)),
]:

    @scenario(
        f"options/should-cache-evictable-{_name}",
        f"should_cache_evictable with {_name} options (memcg only counts with Enabled).",
        _opts,
    )
    def _should_cache(r: Recorder) -> None:
        r.simple("should_cache_evictable")
        r.simple("memcg_pressure")


@scenario(
    "destroy/then-out-of-contract",
    "After destroy every method is out of contract; destroying again is allowed.",
)
def _destroyed(r: Recorder) -> None:
    fr = r.allocate(PAGE)
    assert fr is not None
    r.dec_ref(fr)
    r.simple("destroy")
    r.allocate(PAGE)
    r.fill(PAGE, b"")
    for op in ("inc_ref", "dec_ref", "decommit"):
        r.call({"op": op, "range": [str(fr[0]), str(fr[1])]})
    r.map(fr)
    r.mark_evictable("a", (0, 1))
    r.mark_unevictable("a", (0, 1))
    r.mark_all_unevictable("a")
    for op in ("start_evictions", "total_size", "should_cache_evictable"):
        r.simple(op)
    r.update_usage()
    r.simple("destroy")


@scenario("destroy/host-queries", "total_usage after destroy is out of contract.")
def _destroyed_host(r: Recorder) -> None:
    r.simple("destroy")
    r.simple("total_usage")


@scenario(
    "destroy/with-evictions-pending", "Destroy ends eviction: nothing is delivered.", DISABLED
)
def _destroy_evicting(r: Recorder) -> None:
    r.mark_evictable("a", (0, 16))
    r.simple("destroy")

"""The checked system: scenarios, the spec transitions they run, and the checked state.

A :class:`Scenario` fixes the bounds of one exploration: each client's
program, the file's options, which seed defects are restored, and whether the
reclaimer's punch may fail. A :class:`Node` is one state of the whole system:
the specification's :class:`spec.state.State` (which already holds the
reclaimer's, the eviction goroutines' and update_usage's local variables)
plus each client's local state.

The spec functions are reached through a :class:`Transitions` bundle rather
than imported directly, so that tests can run the checker over deliberately
broken variants of single transitions and see them caught.

States are *normalised* before they are stored (:func:`normalize`), a sound
abstraction that keeps the state space finite without merging states that
behave differently:

* ``usage_last`` is dropped: the checker's clock puts every update_usage call
  more than a second after the previous scan, so only the first skip rule
  (usage exactly as expected, nothing swapped) can apply, and it does not
  read the clock. A time-based skip would only be a step that changes
  nothing, which adds no reachable state;
* ``decommit_generation`` only ever matters through equality with the
  generation an update_usage scan recorded when it asked mincore, so it is
  renumbered: 0 with no scan in progress, else 2 for the current generation
  and 1 for an older one.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace

from models.explore.program import ClientState, Program
from spec import allocator, eviction, reclaimer, usage
from spec.state import SeedDefects, State
from spec.vocabulary import (
    SECOND,
    AccessType,
    EvictableRange,
    FileRange,
    MemoryFileOpts,
    MemoryKind,
)

NOW = 10 * SECOND
"""The clock every update_usage call reads (see the module docstring)."""


@dataclass(frozen=True, slots=True)
class Transitions:
    """The specification's transitions the checker drives, replaceable one by one."""

    allocate: Callable[[State, int, MemoryKind], tuple[State, FileRange]] = allocator.allocate
    map_internal: Callable[[State, FileRange, AccessType], tuple[State, tuple[FileRange, ...]]] = (
        allocator.map_internal
    )
    write_mapped: Callable[[State, int, bytes], State] = allocator.write_mapped
    inc_ref: Callable[[State, FileRange], State] = allocator.inc_ref
    dec_ref: Callable[[State, FileRange], State] = allocator.dec_ref
    decommit_punch: Callable[[State, FileRange], State] = allocator.decommit_punch
    decommit_mark: Callable[[State, FileRange], State] = allocator.decommit_mark
    begin_update_usage: Callable[[State, int], State] = usage.begin_update_usage
    query_committed: Callable[[State], State] = usage.query_committed
    apply_committed: Callable[[State], State] = usage.apply_committed
    mark_evictable: Callable[[State, Hashable, EvictableRange], State] = eviction.mark_evictable
    mark_unevictable: Callable[[State, Hashable, EvictableRange], State] = eviction.mark_unevictable
    start_evictions: Callable[[State], tuple[State, bool]] = eviction.start_evictions
    take_eviction: Callable[[State, Hashable], State] = eviction.take_eviction
    deliver_eviction: Callable[[State, Hashable], tuple[State, EvictableRange]] = (
        eviction.deliver_eviction
    )
    find_reclaimable: Callable[[State], State] = reclaimer.find_reclaimable
    decommit_file: Callable[[State, int | None], State] = reclaimer.decommit_file
    mark_range_decommitted: Callable[[State], State] = reclaimer.mark_range_decommitted
    mark_reclaimed: Callable[[State], State] = reclaimer.mark_reclaimed
    exit_reclaimer: Callable[[State], State] = reclaimer.exit_reclaimer
    destroy: Callable[[State], State] = allocator.destroy


SPEC = Transitions()
"""The specification as written."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """The bounds of one exploration."""

    name: str
    programs: tuple[Program, ...]
    """One per client thread; client ``i`` is named ``c{i+1}`` (also its evictable-user name)."""
    opts: MemoryFileOpts = MemoryFileOpts()
    defects: SeedDefects = SeedDefects()
    punch_failures: bool = False
    """The reclaimer's punch may also fail (it then zeroes the pages by hand)."""
    transitions: Transitions = field(default=SPEC, compare=False)

    def describe(self) -> str:
        """The scenario in a few lines: its options, then each client's program."""
        opts, defects = self.opts, self.defects
        notes = [f"delayed eviction {opts.delayed_eviction.name}"]
        notes += ["memcg pressure"] * opts.use_host_memcg_pressure
        notes += ["manual zeroing"] * opts.manual_zeroing
        notes += ["the reclaimer's punch may fail"] * self.punch_failures
        restored = [name for name in SeedDefects.__dataclass_fields__ if getattr(defects, name)]
        notes += [f"seed defects {', '.join(restored)}"] if restored else []
        lines = [f"scenario {self.name} ({'; '.join(notes)}):"]
        lines += [f"  {client_name(i)}: {p}" for i, p in enumerate(self.programs)]
        return "\n".join(lines)


def client_name(index: int) -> str:
    return f"c{index + 1}"


def client_index(name: Hashable) -> int | None:
    """The index of the client named ``name``, or None if it is not a client's name."""
    if isinstance(name, str) and name.startswith("c") and name[1:].isdigit():
        return int(name[1:]) - 1
    return None


@dataclass(frozen=True, slots=True)
class Node:
    """One state of the whole system."""

    state: State
    clients: tuple[ClientState, ...]
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Hashing a state walks all of it; a node is hashed at least twice.
        object.__setattr__(self, "_hash", hash((self.state, self.clients)))

    def __hash__(self) -> int:
        return self._hash


def initial_node(scenario: Scenario) -> Node:
    state = allocator.new_memory_file(scenario.opts, scenario.defects)
    return Node(normalize(state), tuple(ClientState() for _ in scenario.programs))


def normalize(state: State) -> State:
    """``state`` with the clock and the decommit counter abstracted (module docstring)."""
    scan = state.scan
    if scan is None:
        if state.usage_last is None and state.decommit_generation == 0:
            return state
        return replace(state, usage_last=None, decommit_generation=0)
    current = state.decommit_generation
    scan = replace(
        scan,
        queried_generation=(2 if scan.queried_generation == current else 1)
        if scan.committed is not None
        else 0,
    )
    return replace(state, usage_last=None, decommit_generation=2, scan=scan)

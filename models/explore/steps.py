"""Every step any thread can take from a node: the checker's transition relation.

Threads are the clients (one operation, or one part of a split operation, per
step), the reclaimer goroutine (one of its lock-delimited steps), and one
eviction goroutine per user being evicted (take a range under the lock;
deliver it to ``Evict`` without the lock). Each step is atomic: it is one
stretch of the seed's code between two lock operations, or an unlocked
action that touches only the host or thread-local state.

A client's ``Evict`` callback is run by the eviction goroutine in the same
step as the delivery: the delivery itself only clears the goroutine's local
variable, invisible to other threads, so nothing can interleave meaningfully
between the two. The callback releases (``dec_ref``) every holding of the
client that is still marked evictable and lies inside the evicted range, as
a well-behaved user does; it waits while the client is decommitting
overlapping pages (the user's own lock would serialise the two).

A step whose spec transition raises is still a step, carrying the error: the
seed would panic there, so the search reports it as a violation.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from typing import assert_never

from models.explore.model import NOW, Node, Scenario, client_index, client_name, normalize
from models.explore.program import (
    Allocate,
    ClientState,
    Decommit,
    DecommitInProgress,
    DecRef,
    Destroy,
    Holding,
    HoldingOp,
    IncRef,
    MarkEvictable,
    MarkUnevictable,
    Op,
    ScanInProgress,
    StartEvictions,
    UpdateUsage,
    Write,
)
from spec.state import ReclaimerStep, State, user_info
from spec.vocabulary import PAGE_SIZE, WRITE, EvictableRange, FileRange


@dataclass(frozen=True, slots=True)
class Step:
    """One transition: who did what, and where it led (or the error it raised)."""

    thread: str
    action: str
    node: Node | None
    """None if the transition raised."""
    error: str = ""
    allocated: FileRange | None = None
    """The range an allocate step returned (checked for freshness and overlap)."""
    scan_ended: bool = False
    """An update_usage scan ran to its end in this step (the swap booking is checked)."""

    def __str__(self) -> str:
        return f"{self.thread}: {self.action}"


def successors(scenario: Scenario, node: Node) -> Iterator[Step]:
    """Every step enabled in ``node``."""
    for index in range(len(scenario.programs)):
        yield from _client_steps(scenario, node, index)
    yield from _reclaimer_steps(scenario, node)
    yield from _eviction_steps(scenario, node)


def _attempt(thread: str, action: str | Callable[[], str], run: Callable[[], Step]) -> Step:
    """``run()``, or a step carrying the error a spec transition raised.

    ``action`` describes the step if it raises (a callable, if costly to describe).
    """
    try:
        return run()
    except Exception as error:  # any raise inside the spec is a seed panic: report it
        described = action if isinstance(action, str) else action()
        return Step(thread, described, None, error=f"{type(error).__name__}: {error}")


def _step(thread: str, action: str, state: State, node: Node) -> Step:
    return Step(thread, action, Node(normalize(state), node.clients))


def _replaced(
    clients: tuple[ClientState, ...], index: int, local: ClientState
) -> tuple[ClientState, ...]:
    return (*clients[:index], local, *clients[index + 1 :])


# --- Clients ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Client:
    """A client about to act: its scenario, the node, its index."""

    scenario: Scenario
    node: Node
    index: int

    @property
    def name(self) -> str:
        return client_name(self.index)

    @property
    def local(self) -> ClientState:
        return self.node.clients[self.index]

    @property
    def state(self) -> State:
        return self.node.state

    def step(
        self,
        action: str,
        state: State,
        local: ClientState,
        allocated: FileRange | None = None,
        scan_ended: bool = False,
    ) -> Step:
        node = Node(normalize(state), _replaced(self.node.clients, self.index, local))
        return Step(self.name, action, node, allocated=allocated, scan_ended=scan_ended)

    def started(self) -> ClientState:
        """The client's local state with one more operation started."""
        local = self.local
        return ClientState(local.done + 1, local.holdings, local.pending)


def _client_steps(scenario: Scenario, node: Node, index: int) -> Iterator[Step]:
    client = _Client(scenario, node, index)
    pending = client.local.pending
    if isinstance(pending, DecommitInProgress):
        yield _decommit_mark(client, pending.fr)
    elif isinstance(pending, ScanInProgress):
        yield _scan_step(client)
    else:
        for op in scenario.programs[index].next_ops(client.local.done):
            yield from _op_steps(client, op)


def _op_steps(client: _Client, op: Op) -> Iterator[Step]:
    if isinstance(op, Allocate):
        yield _attempt(client.name, str(op), lambda: _allocate(client, op))
        return
    if isinstance(op, UpdateUsage):
        if client.state.scan is None:  # calls are serialised (see UpdateUsage)
            yield _attempt(client.name, str(op), lambda: _begin_update_usage(client))
        return
    if isinstance(op, StartEvictions):
        yield _attempt(client.name, str(op), lambda: _start_evictions(client))
        return
    if isinstance(op, Destroy):
        if _may_destroy(client):
            yield _attempt(client.name, str(op), lambda: _destroy(client))
        return
    targets = [h for h in client.local.holding(op.label) if _applies(op, h)]
    if not targets and not client.scenario.programs[client.index].choose:
        # A script's holding may have been evicted meanwhile: the client skips the operation.
        yield client.step(f"{op}: skipped, no such holding", client.state, client.started())
    for holding in targets:
        yield _attempt(
            client.name, partial(op.on, holding.label), partial(_act, client, op, holding)
        )


def _applies(op: HoldingOp, holding: Holding) -> bool:
    """Whether a well-behaved client performs ``op`` on ``holding``."""
    if isinstance(op, DecRef | MarkEvictable):
        return not holding.evictable  # it frees a holding only once unevictable again
    if isinstance(op, MarkUnevictable):
        return holding.evictable
    return True


def _act(client: _Client, op: HoldingOp, holding: Holding) -> Step:
    t, state, local = client.scenario.transitions, client.state, client.started()
    shown = op.on(holding.label)
    if isinstance(op, Write):
        fr = op.part.of(holding.fr)
        state, _ = t.map_internal(state, fr, WRITE)
        marker = bytes([client.index + 1])  # non-zero, and says who wrote it
        for page in range(fr.start, fr.end, PAGE_SIZE):
            state = t.write_mapped(state, page, marker)
        return client.step(f"{shown} {fr}", state, local)
    if isinstance(op, IncRef):
        fr = op.part.of(holding.fr)
        state = t.inc_ref(state, fr)
        new = Holding(fr, op.as_label or holding.label)
        return client.step(f"{shown} {fr}", state, local.with_holding(new))
    if isinstance(op, DecRef):
        state = t.dec_ref(state, holding.fr)
        return client.step(f"{shown} {holding.fr}", state, local.without_holding(holding))
    if isinstance(op, Decommit):
        fr = op.part.of(holding.fr)
        state = t.decommit_punch(state, fr)
        local = ClientState(local.done, local.holdings, DecommitInProgress(fr))
        return client.step(f"{shown}: punches {fr} (unlocked)", state, local)
    if isinstance(op, MarkEvictable):
        state = t.mark_evictable(state, client.name, EvictableRange(*holding.fr))
        marked = replace(holding, evictable=True)
        return client.step(
            f"{shown} {holding.fr}", state, local.without_holding(holding).with_holding(marked)
        )
    if isinstance(op, MarkUnevictable):
        state = t.mark_unevictable(state, client.name, EvictableRange(*holding.fr))
        kept = replace(holding, evictable=False)
        return client.step(
            f"{shown} {holding.fr}", state, local.without_holding(holding).with_holding(kept)
        )
    assert_never(op)


def _allocate(client: _Client, op: Allocate) -> Step:
    state, fr = client.scenario.transitions.allocate(client.state, op.pages * PAGE_SIZE, op.kind)
    local = client.started().with_holding(Holding(fr, op.label))
    return client.step(f"{op} -> {fr}", state, local, allocated=fr)


def _may_destroy(client: _Client) -> bool:
    """Whether every page is released and every other client is done."""
    programs = client.scenario.programs
    return all(
        not local.holdings
        and (i == client.index or (local.done >= programs[i].length() and local.pending is None))
        for i, local in enumerate(client.node.clients)
    )


def _destroy(client: _Client) -> Step:
    state = client.scenario.transitions.destroy(client.state)
    return client.step("destroy()", state, client.started())


def _start_evictions(client: _Client) -> Step:
    state, started = client.scenario.transitions.start_evictions(client.state)
    action = "start_evictions()" + ("" if started else ": nothing to start")
    return client.step(action, state, client.started())


def _decommit_mark(client: _Client, fr: FileRange) -> Step:
    def run() -> Step:
        state = client.scenario.transitions.decommit_mark(client.state, fr)
        local = client.local
        return client.step(
            f"decommit: markDecommitted {fr}", state, ClientState(local.done, local.holdings)
        )

    return _attempt(client.name, f"decommit: markDecommitted {fr}", run)


def _begin_update_usage(client: _Client) -> Step:
    state = client.scenario.transitions.begin_update_usage(client.state, NOW)
    local = client.started()
    if state.scan is None:
        if state.usage_last is None:
            return client.step("update_usage(): skipped, usage as expected", state, local)
        return client.step(
            f"update_usage(): nothing to scan; {_booking(state)}", state, local, scan_ended=True
        )
    scan = state.scan
    local = ClientState(local.done, local.holdings, ScanInProgress())
    action = f"update_usage(): fstat says {scan.current_usage:#x} bytes; scans {scan.segment}"
    return client.step(action, state, local)


def _scan_step(client: _Client) -> Step:
    t, before = client.scenario.transitions, client.state
    scan = before.scan
    if scan is None:
        return Step(client.name, "update_usage", None, error="its scan vanished from the state")
    if scan.committed is None:

        def query() -> Step:
            state = t.query_committed(before)
            seen = state.scan.committed if state.scan is not None else None
            committed = ", ".join(str(fr) for fr in seen.ranges()) if seen else "nothing"
            action = f"update_usage: mincore {scan.slice} (unlocked) sees {committed} committed"
            return client.step(action, state, client.local)

        return _attempt(client.name, "update_usage: mincore", query)

    def apply() -> Step:
        state = t.apply_committed(before)
        local = client.local
        if state.scan is None:
            action = f"update_usage: records mincore, scan ends; {_booking(state)}"
            done = ClientState(local.done, local.holdings)
            return client.step(action, state, done, scan_ended=True)
        if state.scan.committed is None and state.scan.slice == scan.slice:
            action = "update_usage: pages were decommitted meanwhile; asks mincore again"
        else:
            action = f"update_usage: records mincore, goes on to {state.scan.slice}"
        return client.step(action, state, local)

    return _attempt(client.name, "update_usage: records mincore", apply)


def _booking(state: State) -> str:
    return f"usage_expected={state.usage_expected:#x} usage_swapped={state.usage_swapped:#x}"


# --- The reclaimer ----------------------------------------------------------------------


def _reclaimer_steps(scenario: Scenario, node: Node) -> Iterator[Step]:
    t, state = scenario.transitions, node.state
    step, fr = state.reclaimer.step, state.reclaimer.range
    name = "reclaimer"
    if step is ReclaimerStep.RUNNING:

        def find() -> Step:
            after = t.find_reclaimable(state)
            taken = after.reclaimer
            if taken.step is ReclaimerStep.DECOMMITTING:
                action = f"findReclaimable takes {taken.range}"
            elif taken.step is ReclaimerStep.EXITING:
                action = "findReclaimable sees destroyed"
            else:
                started = [u for u, i in after.evictable if i.evicting and not _evicting(state, u)]
                action = "findReclaimable finds nothing" + (
                    f", starts evicting {', '.join(map(str, started))}" if started else ""
                )
                action += ", waits"
            return _step(name, action, after, node)

        yield _attempt(name, "findReclaimable", find)
    elif step is ReclaimerStep.DECOMMITTING:
        yield _attempt(
            name,
            f"punches {fr} (unlocked)",
            lambda: _step(name, f"punches {fr} (unlocked)", t.decommit_file(state, None), node),
        )
        if scenario.punch_failures:
            action = f"punching {fr} fails (EIO): zeroes it by hand (unlocked)"
            yield _attempt(
                name, action, lambda: _step(name, action, t.decommit_file(state, errno.EIO), node)
            )
    elif step is ReclaimerStep.MARKING_DECOMMITTED:
        action = f"markDecommitted {fr}"
        yield _attempt(
            name, action, lambda: _step(name, action, t.mark_range_decommitted(state), node)
        )
    elif step is ReclaimerStep.MARKING_RECLAIMED:
        action = f"markReclaimed {fr}"
        yield _attempt(name, action, lambda: _step(name, action, t.mark_reclaimed(state), node))
    elif step is ReclaimerStep.EXITING:
        yield _attempt(name, "exits", lambda: _step(name, "exits", t.exit_reclaimer(state), node))


def _evicting(state: State, user: Hashable) -> bool:
    info = user_info(state, user)
    return info is not None and info.evicting


# --- Eviction goroutines ----------------------------------------------------------------


def _eviction_steps(scenario: Scenario, node: Node) -> Iterator[Step]:
    for user, info in node.state.evictable:
        if not info.evicting:
            continue
        name = f"evictor({user})"
        if info.in_flight is None:
            yield _attempt(name, "takes a range", partial(_take, scenario, node, user, name))
        else:
            index = client_index(user)
            if index is not None and _decommitting(node.clients[index], info.in_flight):
                continue  # Evict waits for the user's own decommit of those pages
            yield _attempt(
                name, f"Evict({info.in_flight})", partial(_deliver, scenario, node, user, name)
            )


def _decommitting(client: ClientState, er: EvictableRange) -> bool:
    pending = client.pending
    return isinstance(pending, DecommitInProgress) and FileRange(*er).overlaps(pending.fr)


def _take(scenario: Scenario, node: Node, user: Hashable, name: str) -> Step:
    """The goroutine's locked step: take the user's last evictable range, or finish."""
    after = scenario.transitions.take_eviction(node.state, user)
    taken = user_info(after, user)
    if taken is not None and taken.in_flight is not None:
        return _step(name, f"takes {taken.in_flight}", after, node)
    return _step(name, "no ranges left: finishes", after, node)


def _deliver(scenario: Scenario, node: Node, user: Hashable, name: str) -> Step:
    """Deliver the range in flight to ``user``'s Evict, which releases what it finds evictable."""
    t = scenario.transitions
    state, er = t.deliver_eviction(node.state, user)
    index = client_index(user)
    if index is None:
        return _step(name, f"Evict({er})", state, node)
    local = node.clients[index]
    evicted = FileRange(*er)
    released = [h for h in local.holdings if h.evictable and evicted.is_superset_of(h.fr)]
    for holding in released:
        state = t.dec_ref(state, holding.fr)
        local = local.without_holding(holding)
    action = f"Evict({er}): {user} " + (
        f"releases {', '.join(map(str, released))}" if released else "has nothing evictable there"
    )
    return Step(name, action, Node(normalize(state), _replaced(node.clients, index, local)))

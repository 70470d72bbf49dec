"""What the model checker's client threads do: operations, programs and local state.

A client is a thread calling ``MemoryFile`` methods. It is well behaved: it
releases only references it holds, decommits only pages it holds, marks its
holdings evictable by their own file offsets (so each client is also an
``EvictableMemoryUser``), and frees a holding only after marking it
unevictable again.

A client's **program** is either a script (its operations in order) or a
choice (any ``length`` operations from an alphabet, in any order, each any
number of times; the checker explores every choice). Operations name the
holding they act on by label; :data:`ANY` means every holding the client has,
one branch each.

A client's local state (:class:`ClientState`) is part of the checked state:
how many operations it has started, the references it holds, and the
operation it is in the middle of, if that operation drops the lock (decommit
punches without it; update_usage asks mincore without it).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from spec.vocabulary import PAGE_SIZE, FileRange, MemoryKind

ANY = "*"
"""A label matching every holding of the client."""


class Part(enum.Enum):
    """Which pages of a holding an operation touches."""

    ALL = "all"
    FIRST = "first page"
    LAST = "last page"

    def of(self, fr: FileRange) -> FileRange:
        if self is Part.FIRST:
            return FileRange(fr.start, fr.start + PAGE_SIZE)
        if self is Part.LAST:
            return FileRange(fr.end - PAGE_SIZE, fr.end)
        return fr


@dataclass(frozen=True, slots=True)
class Allocate:
    """Allocate ``pages`` pages; the new holding is labelled ``label``."""

    pages: int = 1
    label: str = "a"
    kind: MemoryKind = MemoryKind.ANONYMOUS

    def __str__(self) -> str:
        return f"{self.label} = allocate({self.pages} page{'s' if self.pages > 1 else ''})"


@dataclass(frozen=True, slots=True)
class Write:
    """Map the holding and write non-zero bytes to each page of ``part`` of it."""

    label: str = ANY
    part: Part = Part.ALL

    def __str__(self) -> str:
        return self.on(self.label)

    def on(self, label: str) -> str:
        return f"write({label}, {self.part.value})"


@dataclass(frozen=True, slots=True)
class IncRef:
    """Take another reference on ``part`` of the holding: a new holding, ``as_label``."""

    label: str = ANY
    part: Part = Part.ALL
    as_label: str | None = None
    """The new holding's label; None: the same as the holding's."""

    def __str__(self) -> str:
        return self.on(self.label)

    def on(self, label: str) -> str:
        target = f"{self.as_label} = " if self.as_label else ""
        return f"{target}inc_ref({label}, {self.part.value})"


@dataclass(frozen=True, slots=True)
class DecRef:
    """Release the holding (one reference on all of it)."""

    label: str = ANY

    def __str__(self) -> str:
        return self.on(self.label)

    def on(self, label: str) -> str:
        return f"dec_ref({label})"


@dataclass(frozen=True, slots=True)
class Decommit:
    """Decommit ``part`` of the holding: punch without the lock, then mark under it."""

    label: str = ANY
    part: Part = Part.ALL

    def __str__(self) -> str:
        return self.on(self.label)

    def on(self, label: str) -> str:
        return f"decommit({label}, {self.part.value})"


@dataclass(frozen=True, slots=True)
class UpdateUsage:
    """UpdateUsage: begin, then mincore (unlocked) and apply (locked) per chunk slice.

    Calls are serialised: a client waits while another's scan is in progress
    (the specification holds one scan at a time).
    """

    def __str__(self) -> str:
        return "update_usage()"


@dataclass(frozen=True, slots=True)
class MarkEvictable:
    """Mark the holding evictable, at its own file offsets."""

    label: str = ANY

    def __str__(self) -> str:
        return self.on(self.label)

    def on(self, label: str) -> str:
        return f"mark_evictable({label})"


@dataclass(frozen=True, slots=True)
class MarkUnevictable:
    label: str = ANY

    def __str__(self) -> str:
        return self.on(self.label)

    def on(self, label: str) -> str:
        return f"mark_unevictable({label})"


@dataclass(frozen=True, slots=True)
class StartEvictions:
    def __str__(self) -> str:
        return "start_evictions()"


@dataclass(frozen=True, slots=True)
class Destroy:
    """Destroy the file; waits until every other client has finished and nothing is held.

    (Destroy's precondition: every page allocated has been freed, and no
    method is called afterwards.)
    """

    def __str__(self) -> str:
        return "destroy()"


HoldingOp = Write | IncRef | DecRef | Decommit | MarkEvictable | MarkUnevictable
"""The operations on one of the client's holdings; ``op.on(label)`` describes one applied."""

Op = (
    Allocate
    | Write
    | IncRef
    | DecRef
    | Decommit
    | UpdateUsage
    | MarkEvictable
    | MarkUnevictable
    | StartEvictions
    | Destroy
)


@dataclass(frozen=True, slots=True)
class Program:
    """A client's program: ``ops`` in order, or any ``choose`` of them (repeats allowed)."""

    ops: tuple[Op, ...]
    choose: int = 0
    """0: a script; else how many operations the client performs, each from ``ops``."""

    def length(self) -> int:
        return self.choose or len(self.ops)

    def next_ops(self, done: int) -> tuple[Op, ...]:
        """The operations the client may start after ``done`` of them."""
        if done >= self.length():
            return ()
        return self.ops if self.choose else (self.ops[done],)

    def __str__(self) -> str:
        ops = "; ".join(str(op) for op in self.ops)
        return f"any {self.choose} of {{{ops}}}" if self.choose else ops


def script(*ops: Op) -> Program:
    return Program(ops)


def choice(length: int, *ops: Op) -> Program:
    return Program(ops, choose=length)


# --- Local state -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class Holding:
    """One reference the client holds on every page of ``fr``."""

    fr: FileRange
    label: str
    evictable: bool = False
    """The client has marked it evictable (and not unevictable since)."""

    def __str__(self) -> str:
        return f"{self.label}{self.fr}"


@dataclass(frozen=True, slots=True)
class DecommitInProgress:
    """Punched ``fr`` without the lock; markDecommitted comes next."""

    fr: FileRange


@dataclass(frozen=True, slots=True)
class ScanInProgress:
    """In update_usage: the scan's own state is ``State.scan``."""


Pending = DecommitInProgress | ScanInProgress


@dataclass(frozen=True, slots=True)
class ClientState:
    done: int = 0
    """Operations started."""
    holdings: tuple[Holding, ...] = ()
    """Sorted, so that equal holdings make equal states (duplicates are separate references)."""
    pending: Pending | None = None

    def holding(self, label: str) -> tuple[Holding, ...]:
        """The distinct holdings ``label`` names, in order."""
        matching = (h for h in self.holdings if label in (ANY, h.label))
        return tuple(dict.fromkeys(matching))

    def with_holding(self, holding: Holding) -> ClientState:
        return _with(self, tuple(sorted((*self.holdings, holding))))

    def without_holding(self, holding: Holding) -> ClientState:
        """One instance of ``holding`` removed."""
        holdings = list(self.holdings)
        holdings.remove(holding)
        return _with(self, tuple(holdings))


def _with(client: ClientState, holdings: tuple[Holding, ...]) -> ClientState:
    return ClientState(client.done, holdings, client.pending)

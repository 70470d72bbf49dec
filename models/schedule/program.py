"""What the clients of a scheduled run do: small programs over named holdings.

A :class:`Program` gives each client thread a script of operations on the
ranges it holds, by name (``Alloc("a", 2)``, ``Write("a", LAST)``,
``IncRef("a", FIRST, "b")``, ``MarkEvictable("a")``: the client's user gives
the holding back when an eviction thread asks, and takes back at the end what
was not evicted). An operation naming a holding the client
does not have (or an ``IncRef`` to a name it has) is skipped, so random
programs need no planning. Clients
check what they read (with ``pread``, which commits no page): a new
allocation reads zero (zero on reuse), and a range reads what its holder
wrote (or zero once decommitted) when freed.
Every call is recorded for the linearizability search.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from impl import MemoryFile
from models.explore.program import Part as Part  # noqa: PLC0414 (the checker's, re-exported)
from models.linearizability.history import Recorder
from spec.vocabulary import PAGE_SIZE, WRITE, EvictableRange, FileRange, MemoryKind


@dataclass(frozen=True, slots=True)
class Alloc:
    name: str
    pages: int = 1
    kind: MemoryKind = MemoryKind.ANONYMOUS

    def __str__(self) -> str:
        return f"{self.name} = allocate({self.pages} pages)"


@dataclass(frozen=True, slots=True)
class Write:
    name: str
    part: Part = Part.ALL

    def __str__(self) -> str:
        return f"write {self.part.value} of {self.name}"


@dataclass(frozen=True, slots=True)
class IncRef:
    name: str
    part: Part
    new: str

    def __str__(self) -> str:
        return f"{self.new} = inc_ref({self.part.value} of {self.name})"


@dataclass(frozen=True, slots=True)
class DecRef:
    name: str

    def __str__(self) -> str:
        return f"dec_ref({self.name})"


@dataclass(frozen=True, slots=True)
class Decommit:
    name: str

    def __str__(self) -> str:
        return f"decommit({self.name})"


@dataclass(frozen=True, slots=True)
class MarkEvictable:
    """The holding becomes evictable: the client's user gives it back when asked."""

    name: str

    def __str__(self) -> str:
        return f"mark_evictable({self.name})"


@dataclass(frozen=True, slots=True)
class UpdateUsage:
    def __str__(self) -> str:
        return "update_usage()"


Op = Alloc | Write | IncRef | DecRef | Decommit | MarkEvictable | UpdateUsage


@dataclass(frozen=True, slots=True)
class Program:
    """One script per client thread."""

    name: str
    clients: tuple[tuple[Op, ...], ...]

    def describe(self) -> str:
        return "; ".join(
            f"client-{i}: " + ", ".join(map(str, ops)) for i, ops in enumerate(self.clients)
        )


def random_program(seed: int, clients: int = 2, length: int = 4) -> Program:
    """``clients`` scripts of ``length`` operations drawn from ``seed``, over a few names."""
    rnd = random.Random(seed)
    scripts: list[tuple[Op, ...]] = []
    for _ in range(clients):
        names: list[str] = []
        ops: list[Op] = []
        for _ in range(length):
            if not names or rnd.random() < 0.3:
                name = f"{chr(ord('a') + len(scripts))}{len(names)}"
                names.append(name)
                ops.append(Alloc(name, rnd.choice((1, 1, 2))))
                continue
            name = rnd.choice(names)
            kind = rnd.choice(
                ("write", "write", "inc_ref", "dec_ref", "decommit", "evictable", "update")
            )
            if kind == "write":
                ops.append(Write(name, rnd.choice(list(Part))))
            elif kind == "inc_ref":
                new = f"{name}'{len(names)}"
                names.append(new)
                ops.append(IncRef(name, rnd.choice(list(Part)), new))
            elif kind == "dec_ref":
                ops.append(DecRef(name))
            elif kind == "decommit":
                ops.append(Decommit(name))
            elif kind == "evictable":
                ops.append(MarkEvictable(name))
            else:
                ops.append(UpdateUsage())
        scripts.append(tuple(ops))
    return Program(f"random-{seed}", tuple(scripts))


@dataclass
class Holding:
    fr: FileRange
    pages: dict[int, bytes | None] = field(default_factory=dict)
    """Page address -> the 8-byte token it must hold repeated (None: zero)."""


class Client:
    """One client thread's state: its holdings, what they must read, what went wrong."""

    def __init__(
        self, index: int, ops: tuple[Op, ...], file: MemoryFile, recorder: Recorder
    ) -> None:
        self.index = index
        self.ops = ops
        self.file = file
        self.recorder = recorder
        self.held: dict[str, Holding] = {}
        self.evictable: dict[EvictableRange, Holding] = {}
        """Holdings handed to the file as evictable: the client no longer touches them;
        an eviction releases one, and the client takes the rest back at the end."""
        self.problems: list[str] = []
        self.done = 0
        self.doing: Callable[[str], None] = lambda what: None
        """Told of each operation as it starts (the scheduler labels its points with it)."""

    def run(self) -> None:
        for op in self.ops:
            self.doing(str(op))
            self.step(op)
            self.done += 1

    def call(self, name: str, *args: object) -> object:
        method: Callable[..., object] = getattr(self.file, name)
        return self.recorder.call(name, method, *args)

    def step(self, op: Op) -> None:
        if isinstance(op, UpdateUsage):
            self.call("update_usage")
            return
        if isinstance(op, Alloc):
            fr = self.call("allocate", op.pages * PAGE_SIZE, op.kind)
            assert isinstance(fr, FileRange)
            if any(self._read(fr)):
                self.problems.append(f"client-{self.index}: new allocation {fr} does not read zero")
            self.held[op.name] = Holding(fr, dict.fromkeys(range(fr.start, fr.end, PAGE_SIZE)))
            return
        holding = self.held.get(op.name)
        if holding is None:
            return
        if isinstance(op, Write):
            part = op.part.of(holding.fr)
            token = f"{self.index}:{op.name}:{part.start:x}".encode().ljust(8, b".")[:8]
            self._write(part, token)
            self._expect(part, token)
        elif isinstance(op, IncRef) and op.new not in self.held:
            part = op.part.of(holding.fr)
            self.call("inc_ref", part)
            self.held[op.new] = Holding(part, {p: holding.pages[p] for p in _pages(part)})
        elif isinstance(op, DecRef):
            self.release(op.name)
        elif isinstance(op, Decommit):
            self.call("decommit", holding.fr)
            self._expect(holding.fr, None)
        elif isinstance(op, MarkEvictable):
            er = EvictableRange(holding.fr.start, holding.fr.end)
            if er not in self.evictable:
                self.evictable[er] = self.held.pop(op.name)
                self.call("mark_evictable", self, er)

    def __repr__(self) -> str:
        return f"user-{self.index}"

    def evict(self, er: EvictableRange) -> None:
        """As an ``EvictableMemoryUser`` (on an eviction thread): give the holding back."""
        holding = self.evictable.pop(er, None)
        if holding is not None:  # else taken back meanwhile: nothing to do (the seed's race)
            self._release(str(er), holding)

    def release(self, name: str) -> None:
        """Check what ``name`` reads, then drop its reference."""
        self._release(name, self.held.pop(name))

    def take_back(self) -> None:
        """Every holding still evictable is the client's again (after mark_all_unevictable)."""
        for er, holding in list(self.evictable.items()):
            del self.evictable[er]
            self.held[str(er)] = holding

    def holdings(self) -> list[FileRange]:
        return [h.fr for h in (*self.held.values(), *self.evictable.values())]

    def _release(self, name: str, holding: Holding) -> None:
        data = self._read(holding.fr)
        for page, token in holding.pages.items():
            offset = page - holding.fr.start
            want = bytes(PAGE_SIZE) if token is None else token * (PAGE_SIZE // 8)
            if data[offset : offset + PAGE_SIZE] != want:
                self.problems.append(
                    f"client-{self.index}: page {page:#x} of {name} reads "
                    f"{data[offset : offset + 8]!r}..., not {want[:8]!r}..."
                )
        self.call("dec_ref", holding.fr)

    def _expect(self, fr: FileRange, token: bytes | None) -> None:
        for holding in (*self.held.values(), *self.evictable.values()):
            for page in _pages(fr):
                if page in holding.pages:
                    holding.pages[page] = token

    def _read(self, fr: FileRange) -> bytes:
        # pread, not the mappings: reading a hole of a memfd commits nothing, so a
        # check does not change what a concurrent update_usage scan sees.
        return os.pread(self.file.fd(), fr.length(), fr.start)

    def _write(self, fr: FileRange, token: bytes) -> None:
        views = self.file.map_internal(fr, WRITE)
        try:
            for view in views:
                view[:] = token * (len(view) // 8)
        finally:
            for view in views:
                view.release()


def _pages(fr: FileRange) -> range:
    return range(fr.start, fr.end, PAGE_SIZE)

"""The specification as a port: what ``pgalloc driver spec`` serves and the generator records.

With ``checked`` (the generator's and the conform runner's reference side),
every request is followed by :func:`spec.invariants.check_invariants`, and
every allocation by the check that it reads as zeroes: a vector is never
recorded from a state the specification itself considers broken.
"""

from __future__ import annotations

from models.conformance.codec import Json
from models.conformance.port import Mapping, MemoryFilePort, Response
from spec.invariants import check_fresh_allocation, check_invariants
from spec.memory_file import SpecMemoryFile
from spec.rangemap import range_set
from spec.state import SeedDefects
from spec.vocabulary import FileRange, HostFaults, MemoryFileOpts

Blocks = tuple[FileRange, ...]
"""What the specification's ``map_internal`` returns: the file range of each block."""


class SpecPort(MemoryFilePort[Blocks]):
    name = "pgalloc-spec"

    def __init__(self, *, checked: bool = False, defects: SeedDefects = SeedDefects()) -> None:
        super().__init__()
        self.checked = checked
        self.defects = defects
        """The seed's defects restored in every file this port creates."""

    @property
    def spec(self) -> SpecMemoryFile:
        """The specification's memory file (the session must have created one)."""
        assert isinstance(self.file, SpecMemoryFile)
        return self.file

    def create_file(self, opts: MemoryFileOpts, faults: HostFaults) -> SpecMemoryFile:
        return SpecMemoryFile(opts, defects=self.defects, faults=faults)

    def set_faults(self, faults: HostFaults) -> None:
        self.spec.faults = faults

    def update_usage(self, now: int, committed: list[FileRange] | None) -> None:
        self.spec.update_usage(now, None if committed is None else range_set(committed))

    def blocks(self, blocks: Blocks, fr: FileRange) -> list[tuple[int, int]]:
        return [(block.start, block.end) for block in blocks]

    def write_mapped(self, mapping: Mapping[Blocks], offset: int, data: bytes) -> None:
        self.spec.write(offset, data)

    def read_mapped(self, mapping: Mapping[Blocks], fr: FileRange) -> bytes:
        return self.spec.read(fr)

    def handle(self, request: dict[str, Json]) -> Response:
        response = super().handle(request)
        if self.checked and isinstance(self.file, SpecMemoryFile):
            check_invariants(self.spec.state)
            if request.get("op") == "allocate" and response["ok"]:
                start, end = response["result"]
                check_fresh_allocation(self.spec.state, FileRange(int(start), int(end)))
        return response

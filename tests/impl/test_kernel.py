"""The kernel seam on a real memfd: punching, mincore and its decoding, fault injection."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from impl.kernel import ChunkMapping, Kernel, ResidencyVector, committed_runs
from spec.vocabulary import PAGE_SIZE, HostFaults

LENGTH = 64 * PAGE_SIZE


@pytest.fixture
def mapped() -> Iterator[tuple[Kernel, int, ChunkMapping]]:
    kernel = Kernel()
    fd = kernel.memfd_create("pgalloc-test")
    kernel.ftruncate(fd, LENGTH)
    mapping = kernel.map_chunk(fd, 0, LENGTH)
    yield kernel, fd, mapping
    assert kernel.unmap_chunk(mapping)
    kernel.close(fd)


def runs_by_loop(vector: bytes) -> list[tuple[int, int]]:
    """The obvious per-page decoding, to check the fast one against."""
    runs: list[tuple[int, int]] = []
    for page, byte in enumerate(vector):
        if byte & 1:
            if runs and runs[-1][1] == page:
                runs[-1] = (runs[-1][0], page + 1)
            else:
                runs.append((page, page + 1))
    return runs


@given(st.binary(max_size=300), st.binary(max_size=20), st.booleans())
def test_committed_runs_decode_bit_zero_only(vector: bytes, tail: bytes, binary: bool) -> None:
    if binary:  # what Linux writes: only 0 and 1
        vector = bytes(b & 1 for b in vector)
    buffer = bytearray(vector + tail)  # bytes past the count are ignored
    assert committed_runs(buffer, len(vector)) == runs_by_loop(vector)


def test_committed_runs_edges() -> None:
    assert committed_runs(bytearray()) == []
    assert committed_runs(bytearray(b"\x00\x00")) == []
    assert committed_runs(bytearray(b"\x01" * 5)) == [(0, 5)]
    assert committed_runs(bytearray(b"\x01" * 5), 3) == [(0, 3)]
    assert committed_runs(bytearray(b"\xfe\x03\x02\x01")) == [(1, 2), (3, 4)]
    assert committed_runs(bytearray(b"\x00\x01\x01\x00\x01")) == [(1, 3), (4, 5)]


def test_mincore_sees_touched_pages_and_punch_frees_them(
    mapped: tuple[Kernel, int, ChunkMapping],
) -> None:
    kernel, fd, mapping = mapped
    vector = ResidencyVector(LENGTH // PAGE_SIZE)

    def resident() -> list[tuple[int, int]]:
        kernel.mincore(mapping.address, LENGTH, vector)
        return committed_runs(vector.bytes)

    assert resident() == []
    mapping.view[3 * PAGE_SIZE : 5 * PAGE_SIZE] = b"\x07" * (2 * PAGE_SIZE)
    mapping.view[10 * PAGE_SIZE] = 1
    assert resident() == [(3, 5), (10, 11)]
    assert kernel.committed_bytes(fd) == 3 * PAGE_SIZE
    kernel.punch_hole(fd, 3 * PAGE_SIZE, PAGE_SIZE)
    assert resident() == [(4, 5), (10, 11)]
    assert kernel.committed_bytes(fd) == 2 * PAGE_SIZE
    assert bytes(mapping.view[3 * PAGE_SIZE : 4 * PAGE_SIZE]) == bytes(PAGE_SIZE)
    assert mapping.view[4 * PAGE_SIZE] == 7


def test_zero_writes_zeroes_and_commits(mapped: tuple[Kernel, int, ChunkMapping]) -> None:
    kernel, fd, mapping = mapped
    mapping.view[0:PAGE_SIZE] = b"\xff" * PAGE_SIZE
    kernel.zero(mapping.address, 2 * PAGE_SIZE)
    assert bytes(mapping.view[0 : 2 * PAGE_SIZE]) == bytes(2 * PAGE_SIZE)
    assert kernel.committed_bytes(fd) == 2 * PAGE_SIZE


def test_punch_errors_carry_errno(mapped: tuple[Kernel, int, ChunkMapping]) -> None:
    kernel, fd, _ = mapped
    with pytest.raises(OSError) as raised:
        kernel.punch_hole(-1, 0, PAGE_SIZE)
    assert raised.value.errno == errno.EBADF
    failing = Kernel(HostFaults(punch=errno.EIO))
    with pytest.raises(OSError) as injected:
        failing.punch_hole(fd, 0, PAGE_SIZE)
    assert injected.value.errno == errno.EIO


def test_mincore_of_unmapped_memory_is_enomem(mapped: tuple[Kernel, int, ChunkMapping]) -> None:
    kernel, _, mapping = mapped
    vector = ResidencyVector(2)
    with pytest.raises(OSError) as raised:
        kernel.mincore(PAGE_SIZE, PAGE_SIZE, vector)  # the zero page is never mapped
    assert raised.value.errno == errno.ENOMEM
    with pytest.raises(ValueError):
        kernel.mincore(mapping.address, 3 * PAGE_SIZE, vector)  # the vector is too short


def test_unmap_waits_for_views(mapped: tuple[Kernel, int, ChunkMapping]) -> None:
    kernel, fd, _ = mapped
    other = kernel.map_chunk(fd, 0, LENGTH)
    view = other.view[0:10]
    assert not kernel.unmap_chunk(other)  # a view is still exported: no dangling memory
    view[0] = 1  # still mapped
    view.release()
    assert kernel.unmap_chunk(other)
    assert other.mm.closed


def test_premap_exec_on_an_empty_file() -> None:
    kernel = Kernel()
    fd = kernel.memfd_create("pgalloc-test")
    null = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    try:
        kernel.premap_exec(fd)  # must not raise: mapping past EOF is allowed
        with pytest.raises(OSError):
            kernel.premap_exec(null)  # /dev/null cannot be mapped executable and shared
    finally:
        kernel.close(fd)
        os.close(null)

"""Every class of bad input, through the real allocator: the spec's error, and nothing changed.

Each case of :mod:`tests.bad_input_cases` runs on an ``impl.MemoryFile``
(a real memfd) and on a ``SpecMemoryFile`` set up identically. Both must
raise the case's exception type (and errno), the same type; the impl's
observation and its kernel view (size, ``fstat`` blocks, ``mincore``, the
bytes of the file, the chunks mapped) must be as they were, and still equal
the spec's. The table runs once without threads and once with them, the
reclaimer held inside its punch of the freed pages.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import pytest

from impl import MemoryAccounting, MemoryFile
from impl.kernel import Kernel
from spec import SpecMemoryFile
from spec.errors import InvalidArgument, InvalidOptions
from spec.vocabulary import (
    DelayedEviction,
    FileRange,
    MemoryFileOpts,
)
from tests.bad_input_cases import (
    CASES,
    OPTION_CASES,
    Case,
    Changed,
    assert_unchanged,
    bad,
    impl_snapshot,
    prepare,
    quiet_file,
    run,
)
from tests.figures import FIGURES
from tests.impl.leaks import open_fds, pgalloc_threads

MakeFile = Callable[[], MemoryFile]


def check_impl_case(make: MakeFile, case: Case) -> None:
    """The case on a prepared impl file and a prepared spec file: same error, nothing changed."""
    spec = SpecMemoryFile()
    impl = make()
    try:
        prepare(impl, case)
        before = impl_snapshot(impl, case.destroyed)
        impl_error = run(impl, case)
        assert_unchanged(case.name, before, impl_snapshot(impl, case.destroyed))
        if not case.impl_only:
            prepare(spec, case)
            spec_error = run(spec, case)
            assert type(impl_error) is type(spec_error), f"{case.name}: {impl_error!r}"
            assert impl.observation() == spec.observation(), f"{case.name}: differs from the spec"
    finally:
        impl.destroy()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_raises_what_the_spec_raises_and_changes_nothing(case: Case) -> None:
    check_impl_case(quiet_file, case)
    FIGURES["bad inputs tried (impl, no threads)"] += 1


class HeldReclaimKernel(Kernel):
    """Holds the reclaimer thread inside its punch until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.reached = threading.Event()
        self.release = threading.Event()

    def punch_hole(self, fd: int, offset: int, length: int) -> None:
        if threading.current_thread().name == "pgalloc-reclaimer":
            self.reached.set()
            self.release.wait(timeout=60)
        super().punch_hole(fd, offset, length)


def check_background_case(case: Case, file_class: type[MemoryFile] = MemoryFile) -> None:
    """The case on a file with threads, its freed pages taken by a reclaimer held mid-punch."""
    kernel = HeldReclaimKernel()
    f = file_class(accounting=MemoryAccounting(), kernel=kernel)
    try:
        if case.destroyed:
            kernel.release.set()  # destroy joins the reclaimer
        prepare(f, case)
        if not case.destroyed:
            assert kernel.reached.wait(timeout=10), "the reclaimer never took the freed pages"
        before = impl_snapshot(f, case.destroyed)
        spec = SpecMemoryFile()
        if not case.impl_only:
            prepare(spec, case)
        error = run(f, case)
        assert_unchanged(case.name, before, impl_snapshot(f, case.destroyed))
        if not case.impl_only:
            assert type(error) is type(run(spec, case))
    finally:
        kernel.release.set()
        f.destroy()


def test_the_table_holds_with_threads_and_the_reclaimer_mid_punch() -> None:
    threads = pgalloc_threads()
    failures = []
    for case in CASES:
        try:
            check_background_case(case)
        except AssertionError as failure:
            failures.append(str(failure))
    assert failures == []
    FIGURES["bad inputs tried (impl, threads, reclaimer mid-punch)"] += len(CASES)
    left = {t.name for t in pgalloc_threads() - threads}
    assert not left, f"threads of the files outlived them: {sorted(left)}"


@pytest.mark.parametrize("opts", [o for _, o in OPTION_CASES], ids=[n for n, _ in OPTION_CASES])
def test_bad_options_are_invalid_options_and_make_nothing(opts: object) -> None:
    fds, threads = open_fds(), set(threading.enumerate())
    with pytest.raises(InvalidOptions):
        SpecMemoryFile(bad(opts))
    with pytest.raises(InvalidOptions):
        MemoryFile(bad(opts))
    FIGURES["bad inputs tried (impl, no threads)"] += 1
    assert open_fds() == fds
    assert set(threading.enumerate()) <= threads


@pytest.mark.parametrize("file", [True, -1, 3.0, "3", os.devnull])
def test_a_file_that_is_not_a_descriptor_is_refused_before_anything_is_made(file: object) -> None:
    # (True was taken as fd 1: the constructor truncated standard output.)
    fds, threads = open_fds(), set(threading.enumerate())
    with pytest.raises(InvalidArgument, match="file descriptor"):
        MemoryFile(file=bad(file))
    FIGURES["bad inputs tried (impl, no threads)"] += 1
    assert open_fds() == fds
    assert set(threading.enumerate()) <= threads


def test_a_pressure_source_without_memcg_pressure_is_refused_before_anything_is_made() -> None:
    fds, threads = open_fds(), set(threading.enumerate())
    with pytest.raises(ValueError, match="pressure source"):
        MemoryFile(MemoryFileOpts(DelayedEviction.MANUAL), pressure=bad(object()))
    assert open_fds() == fds
    assert set(threading.enumerate()) <= threads


def test_options_are_normalised_as_the_spec_does() -> None:
    for mode in DelayedEviction:
        for memcg in (False, True):
            opts = MemoryFileOpts(mode, use_host_memcg_pressure=memcg)
            with MemoryFile(opts, background=False) as f:
                assert f.opts == SpecMemoryFile(opts).state.opts
                assert f.should_cache_evictable() == SpecMemoryFile(opts).should_cache_evictable()


# --- The checks catch broken builds ----------------------------------------------------------


class IncRefBeforeChecking(MemoryFile):
    """Broken as the seed: inc_ref increments the first segment, then validates."""

    def inc_ref(self, fr: FileRange) -> None:
        state = self._state
        with state.mu:
            for start, end, _ in state.usage.segments(fr.start, fr.end)[:1]:
                state.usage.update(start, end, lambda u: u._replace(refs=u.refs + 1))
        super().inc_ref(fr)


class DecommitBeforeChecking(MemoryFile):
    """Broken as the seed: decommit punches the hole, then validates."""

    def decommit(self, fr: FileRange) -> None:
        self._state.kernel.punch_hole(self._state.fd, fr.start, fr.end - fr.start)
        super().decommit(fr)


def case_named(name: str) -> Case:
    return next(case for case in CASES if case.name == name)


def test_the_check_catches_an_inc_ref_that_changes_refs_before_rejecting() -> None:
    case = case_named("inc_ref: partly beyond the file")
    check_impl_case(quiet_file, case)
    with pytest.raises(Changed) as failure:
        check_impl_case(lambda: IncRefBeforeChecking(background=False), case)
    assert failure.value.parts == ["observation"]


def test_the_threaded_check_catches_an_inc_ref_that_changes_refs_before_rejecting() -> None:
    case = case_named("inc_ref: partly beyond the file")
    check_background_case(case)
    with pytest.raises(Changed) as failure:
        check_background_case(case, IncRefBeforeChecking)
    assert failure.value.call == case.name
    assert failure.value.parts == ["observation"]


def test_the_check_catches_a_decommit_that_punches_before_rejecting() -> None:
    """The observation stays the same (nothing was marked): only the kernel's view shows it."""
    case = case_named("decommit: partly beyond the file")
    check_impl_case(quiet_file, case)
    with pytest.raises(Changed) as failure:
        check_impl_case(lambda: DecommitBeforeChecking(background=False), case)
    assert failure.value.parts == ["total usage", "committed ranges", "file contents"]

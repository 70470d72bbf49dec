"""Memory-pressure notifications: the watcher, the sources, and a real child memory cgroup."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest

from impl import (
    AnyPressure,
    MemcgPressureLevel,
    MemcgUsageThreshold,
    MemoryAccounting,
    MemoryFile,
    PressureSource,
    PressureUnavailable,
    PsiTrigger,
    current_memcg_pressure,
)
from impl.kernel import Kernel
from impl.pressure import (
    PressureWatcher,
    _mounts,
    current_cgroup_v2_dir,
    current_memcg_v1_dir,
)
from models.profiles import selected_profile
from spec.vocabulary import DelayedEviction, EvictableRange, MemoryFileOpts
from tests.impl.leaks import ManualSource, open_fds

REPO = Path(__file__).resolve().parents[2]
MEMCG = MemoryFileOpts(DelayedEviction.ENABLED, use_host_memcg_pressure=True)


def wait_until(condition: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.005)
    return False


# --- The watcher and the sources, without cgroups ----------------------------------------------


def test_watcher_calls_back_on_each_notification_and_stops_cleanly() -> None:
    before = open_fds()
    source = ManualSource()
    calls: list[int] = []
    watcher = PressureWatcher(source, lambda: calls.append(1))
    source.fire()
    assert wait_until(lambda: len(calls) == 1)
    source.fire()
    assert wait_until(lambda: len(calls) == 2)
    watcher.stop()
    watcher.stop()  # idempotent
    source.close()
    assert not any(t.name == "pgalloc-pressure" for t in threading.enumerate())
    assert open_fds() == before  # the source's eventfd and the stop eventfd are closed


def test_a_memory_file_with_a_pressure_source_evicts_when_it_fires() -> None:
    source = ManualSource()

    class User:
        def __init__(self) -> None:
            self.evicted: list[EvictableRange] = []

        def evict(self, er: EvictableRange) -> None:
            self.evicted.append(er)

    user = User()
    with MemoryFile(MEMCG, pressure=source, accounting=MemoryAccounting()) as f:
        f.mark_evictable(user, EvictableRange(0, 8))
        f.reclaim()  # the reclaimer went idle: it does not evict under memcg pressure
        assert user.evicted == []
        source.fire()
        assert wait_until(lambda: user.evicted == [EvictableRange(0, 8)])
    source.close()


def test_a_pressure_source_needs_options_that_use_it() -> None:
    with pytest.raises(ValueError, match="pressure source"):
        MemoryFile(MemoryFileOpts(DelayedEviction.MANUAL), pressure=ManualSource())


def test_creation_fails_clearly_when_no_pressure_source_is_available() -> None:
    before = open_fds()
    with pytest.raises(PressureUnavailable, match="no-such-cgroup"):
        MemoryFile(MEMCG, pressure=MemcgPressureLevel(directory="/no-such-cgroup"))
    with pytest.raises(PressureUnavailable):
        MemoryFile(MEMCG, pressure=PsiTrigger(directory="/no-such-cgroup"))
    assert open_fds() == before  # the memfd was closed again


def fake_memcg(directory: Path, usage: int, limit: int) -> None:
    """Files shaped like a cgroup v1 memory cgroup (writes register nothing, of course)."""
    (directory / "cgroup.event_control").write_text("")
    (directory / "memory.usage_in_bytes").write_text(f"{usage}\n")
    (directory / "memory.limit_in_bytes").write_text(f"{limit}\n")
    (directory / "memory.stat").write_text(f"cache 0\nhierarchical_memory_limit {2 * limit}\n")


def test_usage_threshold_registration_and_direction(tmp_path: Path) -> None:
    fake_memcg(tmp_path, usage=10 << 20, limit=100 << 20)
    source = MemcgUsageThreshold(fraction=0.8, directory=str(tmp_path))
    (registration,) = source.register(Kernel())
    try:
        efd, usage_fd = registration.fds
        line = (tmp_path / "cgroup.event_control").read_text()
        assert line == f"{efd} {usage_fd} {80 << 20}"  # 0.8 of the effective (lower) limit
        assert registration.consume() is False  # nothing notified
        os.eventfd_write(efd, 1)
        assert registration.consume() is False  # crossed downwards: usage is below
        (tmp_path / "memory.usage_in_bytes").write_text(f"{90 << 20}\n")
        os.eventfd_write(efd, 1)
        assert registration.consume() is True
    finally:
        for fd in registration.fds:
            os.close(fd)


def test_usage_threshold_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        MemcgUsageThreshold()
    with pytest.raises(ValueError):
        MemcgUsageThreshold(fraction=0.5, threshold=1)
    with pytest.raises(ValueError):
        MemcgUsageThreshold(fraction=1.5)
    fake_memcg(tmp_path, usage=0, limit=1 << 62)
    with pytest.raises(PressureUnavailable, match="no limit"):
        MemcgUsageThreshold(fraction=0.5, directory=str(tmp_path)).register(Kernel())
    assert MemcgUsageThreshold(threshold=123).threshold_in(str(tmp_path)) == 123


# --- The real kernel ---------------------------------------------------------------------------


def test_the_default_source_is_the_current_memory_cgroup() -> None:
    if current_memcg_v1_dir() is not None:
        assert current_memcg_pressure() == MemcgPressureLevel("low")
    elif current_cgroup_v2_dir() is not None:
        assert isinstance(current_memcg_pressure(), PsiTrigger)
    else:
        with pytest.raises(PressureUnavailable):
            current_memcg_pressure()


def test_a_psi_trigger_registers_on_cgroup_v2() -> None:
    roots = [mount for _, mount in _mounts("cgroup2", None)]
    directory = next((d for d in roots if os.path.exists(f"{d}/memory.pressure")), None)
    if directory is None:
        pytest.skip("no cgroup v2 hierarchy with memory.pressure on this machine")
    before = open_fds()
    watcher = PressureWatcher(PsiTrigger(directory=directory), lambda: None)
    watcher.stop()
    assert open_fds() == before


# --- A real child memory cgroup ----------------------------------------------------------------
#
# Each test below moves a child process (tests/impl/memcg_child.py) into a fresh
# child memory cgroup with a 96 MiB limit and has it write 40 evictable 4 MiB
# pieces (160 MiB): without evictions that free memory it cannot finish. The
# host has no swap (see /proc/swaps), so memfd pages can leave only by a punch.

LIMIT = 96 << 20
PIECES = 40
PIECE = 4 << 20
AT_THE_LIMIT = 1 << 20
"""Slack for "usage was at the limit": the kernel batches charges per CPU."""
TEST_CGROUP_PREFIX = "pgalloc-test-"
REPEATS = 10 if selected_profile() == "thorough" else 1
"""How many times the thorough profile repeats each child run (they race the kernel)."""


def swap_in_use() -> bool:
    with open("/proc/swaps") as f:
        return len(f.read().splitlines()) > 1


no_swap = pytest.mark.skipif(
    swap_in_use(), reason="this test records what happens without swap; this host has swap"
)


def disk_backed(directory: Path) -> bool:
    """Whether files in ``directory`` live in reclaimable page cache (not tmpfs)."""
    best = ""
    kind = ""
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            fields = line.split(" - ")
            mount_point = fields[0].split()[4]
            inside = str(directory).startswith(mount_point.rstrip("/") + "/")
            if inside and len(mount_point) > len(best):
                best, kind = mount_point, fields[1].split()[0]
    return kind not in ("", "tmpfs", "ramfs")


def _tasks(cgroup: Path) -> list[int]:
    try:
        return [int(pid) for pid in (cgroup / "cgroup.procs").read_text().split()]
    except FileNotFoundError:
        return []


def remove_cgroup(cgroup: Path) -> None:
    """Move any task left in ``cgroup`` to its parent, then rmdir it (retrying while it drains)."""
    for _ in range(100):
        for pid in _tasks(cgroup):
            with suppress(ProcessLookupError):  # it exited meanwhile
                (cgroup.parent / "cgroup.procs").write_text(str(pid))
        try:
            cgroup.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.05)
    assert not cgroup.exists(), f"could not remove {cgroup}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_test_cgroups(base: Path) -> list[Path]:
    """Remove test cgroups left by runs that died (their creator's pid is gone); the removed.

    Those of live processes are left alone: another test run may be using them.
    """
    removed = []
    for cgroup in sorted(base.glob(f"{TEST_CGROUP_PREFIX}*")):
        owner = cgroup.name[len(TEST_CGROUP_PREFIX) :].split("-")[0]
        if cgroup.is_dir() and owner.isdigit() and not _alive(int(owner)):
            remove_cgroup(cgroup)
            removed.append(cgroup)
    return removed


def our_test_cgroups(base: Path) -> list[Path]:
    return list(base.glob(f"{TEST_CGROUP_PREFIX}{os.getpid()}-*"))


def memcg_base() -> Path:
    base = current_memcg_v1_dir()
    if base is None:
        pytest.skip("no cgroup v1 memory controller for this process: the memcg tests need one")
    return Path(base)


@dataclass
class ChildRun:
    """What one child did: its JSON records by event, and the cgroup's own counters after."""

    returncode: int
    records: dict[str, dict[str, float]]
    """By event (notified, evicted, done): figures at that moment (see memcg_child)."""
    oom_kills: int
    failcnt: int
    max_usage: int
    limit: int
    stderr: str

    def summary(self) -> str:
        return json.dumps({**vars(self), "stderr": self.stderr[-300:]})


class ChildCgroup:
    """A fresh child of this process's memory cgroup, in which children run one at a time."""

    def __init__(self, base: Path) -> None:
        self.path = base / f"{TEST_CGROUP_PREFIX}{os.getpid()}-{time.monotonic_ns()}"
        self.path.mkdir()

    def oom_kills(self) -> int:
        """How many tasks the OOM killer has killed in this cgroup (it cannot be reset)."""
        fields = (self.path / "memory.oom_control").read_text().split()
        return int(fields[fields.index("oom_kill") + 1])

    def run(
        self, mode: str, limit: int = LIMIT, pieces: int = PIECES, *extra: str, timeout: float = 60
    ) -> ChildRun:
        """Run the child in ``mode`` under ``limit``; it is killed and reaped whatever happens."""
        (self.path / "memory.limit_in_bytes").write_text(str(limit))
        (self.path / "memory.max_usage_in_bytes").write_text("0")  # reset
        (self.path / "memory.failcnt").write_text("0")
        oom_kills_before = self.oom_kills()
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.impl.memcg_child", mode, str(pieces), *extra],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        try:
            (self.path / "cgroup.procs").write_text(str(child.pid))
            out, err = child.communicate("go\n", timeout=timeout)
        finally:
            child.kill()
            child.wait()
        records = {r.pop("event"): r for r in map(json.loads, out.splitlines())}
        return ChildRun(
            returncode=child.returncode,
            records=records,
            oom_kills=self.oom_kills() - oom_kills_before,
            failcnt=int((self.path / "memory.failcnt").read_text()),
            max_usage=int((self.path / "memory.max_usage_in_bytes").read_text()),
            limit=limit,
            stderr=err,
        )


@contextmanager
def child_cgroup() -> Iterator[ChildCgroup]:
    """A child memory cgroup, removed on exit however the body ends, strays moved out.

    Stale test cgroups of earlier runs that died are removed first.
    """
    base = memcg_base()
    remove_stale_test_cgroups(base)
    try:
        cgroup = ChildCgroup(base)
    except OSError as error:
        pytest.skip(f"memory cgroups are not writable here: {error}")
    try:
        yield cgroup
    finally:
        remove_cgroup(cgroup.path)
        assert our_test_cgroups(base) == [], "a test memory cgroup was left behind"


@pytest.fixture
def child_memcg() -> Iterator[ChildCgroup]:
    with child_cgroup() as cgroup:
        yield cgroup


def check_evicted_before_the_limit(run: ChildRun) -> None:
    """The early warning's claims, from the child's record and the cgroup's counters.

    Evictions start before the limit (the cgroup's usage when the first range
    reached the user is below it, and no charge had failed); they free enough
    (every evicted piece was punched: the file's committed bytes are exactly
    the pieces still held, and never reached the limit); the child survives
    (exit 0, no OOM kill, every piece written); the limit was never hit.
    """
    context = run.summary()
    first = run.records.get("evicted")
    assert first is not None, f"no eviction before the limit (none at all): {context}"
    assert first["failcnt"] == 0, f"no eviction before the limit (it was hit first): {context}"
    assert first["usage"] < run.limit, f"no eviction before the limit: {context}"
    assert run.returncode == 0, f"the child died: {context}"
    assert run.oom_kills == 0, f"the OOM killer ran: {context}"
    done = run.records["done"]
    assert done["pieces"] == PIECES, context
    held = PIECES - done["evicted"]
    assert done["committed"] == held * PIECE, f"evicted pieces are still committed: {context}"
    assert done["evicted"] * PIECE >= PIECES * PIECE - run.limit, f"too little freed: {context}"
    assert done["peak_committed"] < run.limit, context
    assert run.failcnt == 0 and run.max_usage < run.limit, f"the limit was hit: {context}"


def test_usage_threshold_in_a_child_cgroup_evicts_before_the_limit(
    child_memcg: ChildCgroup,
) -> None:
    """The early warning at half the limit: evictions start at about half of it,
    punching keeps the cgroup below the limit, and the child writes all 160 MiB.

    Measured on Linux 6.18 (40 runs, 10 of them beside three CPU hogs): the
    first eviction after 9 or 10 pieces at about 50 MiB of usage, peak usage
    49 to 58 MiB of the 96, no failed charge, 31 to 40 of the 40 pieces evicted.
    """
    for _ in range(REPEATS):
        run = child_memcg.run("threshold")
        check_evicted_before_the_limit(run)
        assert run.records["evicted"]["usage"] >= run.limit // 2  # not before the threshold
        print("threshold run:", run.summary())


@no_swap
@pytest.mark.parametrize(
    ("broken", "defect"),
    [
        ("ignore", "no eviction before the limit"),
        ("nopunch", "the child died"),  # its evictions came early, but freed nothing
    ],
)
def test_the_threshold_check_fails_against_a_broken_build(
    child_memcg: ChildCgroup, broken: str, defect: str
) -> None:
    """A file that ignores pressure, or a reclaimer that skips the punch, fails the check."""
    run = child_memcg.run(broken)
    with pytest.raises(AssertionError, match=defect):
        check_evicted_before_the_limit(run)
    # Without memory freed the child cannot write 160 MiB into 96: the OOM killer ends it.
    assert run.returncode == -signal.SIGKILL and run.oom_kills >= 1, run.summary()
    assert run.failcnt > 0 and run.max_usage >= run.limit - AT_THE_LIMIT, run.summary()
    print(f"{broken} run:", run.summary())


def check_low_came_only_at_the_limit(run: ChildRun) -> None:
    """The seed's "low" level without swap: no notification before the limit was hit."""
    assert run.failcnt > 0 and run.max_usage >= run.limit - AT_THE_LIMIT, run.summary()
    notified = run.records.get("notified")
    if notified is not None:
        assert notified["failcnt"] > 0, f"notified before the limit: {run.summary()}"
        assert notified["usage"] >= run.limit - AT_THE_LIMIT, run.summary()


@no_swap
def test_low_pressure_without_swap_comes_only_at_the_limit(child_memcg: ChildCgroup) -> None:
    """The seed's "low" level over memfd memory alone, with no swap: no early warning.

    vmpressure is computed only in reclaim, which starts when a charge fails at
    the limit, and memfd pages cannot be reclaimed without swap. Measured on
    Linux 6.18 (no swap), 40 pieces of 4 MiB into 96 MiB: on an idle host the
    OOM killer ended the child in 140 of 140 runs, 0.1 s in, after 21 pieces;
    "low" arrived before the kill in about 60% of them, always within 256 KiB
    of the limit after 11 or more failed charges, and an eviction reached the
    user in 4%, too late. With three busy CPU hogs the slower OOM path let the
    late evictions win in 1 of 10 runs. (Rescue needs memory too: a new
    eviction thread's stack is charged to the same full cgroup.) So asserted:
    nothing before the limit; then either the memcg OOM killer ended the child
    before it finished, or it finished only because evictions that started
    after the limit freed memory.
    """
    for _ in range(REPEATS):
        run = child_memcg.run("low")
        check_low_came_only_at_the_limit(run)
        if run.returncode == 0:
            assert run.oom_kills == 0 and run.records["evicted"]["failcnt"] > 0, run.summary()
            assert run.records["done"]["pieces"] == PIECES, run.summary()
        else:
            assert run.returncode == -signal.SIGKILL and run.oom_kills == 1, run.summary()
            assert "done" not in run.records, run.summary()
        print("low run without page cache:", run.summary())


def test_low_pressure_with_page_cache_starts_evictions_at_the_limit(
    child_memcg: ChildCgroup, tmp_path: Path
) -> None:
    """The seed's path where it works: with reclaimable page cache in the cgroup.

    Measured on Linux 6.18 (no swap; 32 runs, 8 of them beside three CPU
    hogs): the kernel reclaims page cache at the limit and reports "low"
    (usage within 256 KiB of the limit, about 500 to 800 failed charges
    already), evictions start and keep pace, and the child survives, writing
    all 160 MiB in every run; the limit is hit thousands of times.
    """
    directory = next((d for d in (tmp_path, Path("/var/tmp")) if disk_backed(d)), None)
    if directory is None:
        pytest.skip("no disk-backed directory for reclaimable page cache")
    cache = directory / f"pgalloc-page-cache-{os.getpid()}"
    try:
        with open(cache, "wb") as f:
            f.write(bytes(64 << 20))
            f.flush()
            os.fsync(f.fileno())
        for _ in range(REPEATS):
            with open(cache, "rb") as f:  # uncached, so that the child's reads charge it
                os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            run = child_memcg.run("low", LIMIT, PIECES, str(cache))
            check_low_came_only_at_the_limit(run)
            assert run.records["notified"]["failcnt"] > 0, run.summary()
            assert run.returncode == 0 and run.oom_kills == 0, run.summary()
            done = run.records["done"]
            assert done["pieces"] == PIECES and done["started"] >= 1, run.summary()
            assert done["committed"] == (PIECES - done["evicted"]) * PIECE, run.summary()
            assert done["evicted"] * PIECE >= PIECES * PIECE - run.limit, run.summary()
            print("low run with page cache:", run.summary())
    finally:
        cache.unlink(missing_ok=True)


@pytest.mark.parametrize(
    "source",
    [
        lambda d: MemcgPressureLevel("low", directory=d),
        lambda d: MemcgUsageThreshold(threshold=1, directory=d),
    ],
    ids=["low", "threshold"],
)
def test_removing_a_watched_cgroup_is_not_pressure_and_the_watcher_lives_on(
    source: Callable[[str], PressureSource], caplog: pytest.LogCaptureFixture
) -> None:
    """Removing a v1 cgroup signals its eventfds once: that is no pressure (it
    was, for "low"), and the watcher goes on with its other sources (it died,
    for the threshold, whose usage read then fails with ENODEV)."""
    base = memcg_base()
    before = open_fds()
    manual = ManualSource()
    calls: list[int] = []
    caplog.set_level(logging.WARNING, logger="impl.pressure")
    with child_cgroup() as cgroup:
        watcher = PressureWatcher(
            AnyPressure((source(str(cgroup.path)), manual)), lambda: calls.append(1)
        )
    try:
        gone = watcher._registrations[0].fd  # the removed cgroup's eventfd

        def dropped() -> bool:
            return any(
                record.name == "impl.pressure"
                and ("is gone" in record.msg or "no longer watched" in record.msg)
                and isinstance(record.args, tuple)
                and record.args[0] == gone
                for record in caplog.records
            )

        # The kernel signals removal from a work item: wait until the watcher dropped the source.
        assert wait_until(dropped), "the watcher never saw the cgroup's removal"
        assert calls == [], "the removal was taken for pressure"
        manual.fire()
        assert wait_until(lambda: calls == [1]), "the watcher stopped watching its other source"
    finally:
        watcher.stop()
        manual.close()
    assert calls == [1]  # the watcher has ended: nothing else came
    assert open_fds() == before
    assert our_test_cgroups(base) == []


def test_a_stray_cgroup_of_a_dead_run_is_removed_with_its_tasks_moved_out() -> None:
    """An earlier run that crashed left its cgroup, with a task still in it."""
    base = memcg_base()
    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid now names a run that is gone
    stray = base / f"{TEST_CGROUP_PREFIX}{dead.pid}-0"
    stray.mkdir()
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        (stray / "cgroup.procs").write_text(str(sleeper.pid))
        live = ChildCgroup(base)  # one of a live run (ours) is left alone
        try:
            assert stray in remove_stale_test_cgroups(base)
            assert not stray.exists() and live.path.exists()
            assert sleeper.poll() is None  # moved, not killed
            assert str(sleeper.pid) in (base / "cgroup.procs").read_text().split()
        finally:
            remove_cgroup(live.path)
    finally:
        sleeper.kill()
        sleeper.wait()
        remove_cgroup(stray)
    assert our_test_cgroups(base) == []


def test_the_cgroup_is_removed_when_the_test_fails_midway() -> None:
    """A failure while a task is in the cgroup still removes it (the task moves to the parent)."""
    base = memcg_base()
    stray = subprocess.Popen(["sleep", "30"])
    try:
        with pytest.raises(RuntimeError), child_cgroup() as cgroup:
            (cgroup.path / "cgroup.procs").write_text(str(stray.pid))
            raise RuntimeError("the test failed")
        assert not cgroup.path.exists()
        assert stray.poll() is None  # moved, not killed
    finally:
        stray.kill()
        stray.wait()
    assert our_test_cgroups(base) == []


def test_a_child_that_overruns_is_killed_and_leaves_no_task_behind(
    child_memcg: ChildCgroup,
) -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        child_memcg.run("threshold", timeout=0.001)
    assert _tasks(child_memcg.path) == []

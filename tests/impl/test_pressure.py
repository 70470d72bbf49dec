"""Memory-pressure notifications: the watcher, the sources, and a real child memory cgroup."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from impl import (
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
    Registration,
    _mounts,
    current_cgroup_v2_dir,
    current_memcg_v1_dir,
)
from spec.vocabulary import DelayedEviction, EvictableRange, MemoryFileOpts

REPO = Path(__file__).resolve().parents[2]
MEMCG = MemoryFileOpts(DelayedEviction.ENABLED, use_host_memcg_pressure=True)


class ManualSource(PressureSource):
    """A source the test triggers by writing to an eventfd."""

    def __init__(self) -> None:
        self.efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)

    def register(self, kernel: Kernel) -> list[Registration]:
        def consume() -> bool:
            os.eventfd_read(self.efd)
            return True

        return [Registration(self.efd, select.POLLIN, consume, (self.efd,))]

    def fire(self) -> None:
        os.eventfd_write(self.efd, 1)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


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


@pytest.fixture
def child_memcg() -> Iterator[Path]:
    """A fresh child of this process's memory cgroup; removed afterwards."""
    base = current_memcg_v1_dir()
    if base is None:
        pytest.skip("no cgroup v1 memory controller: the memcg tests need one")
    path = Path(base) / f"pgalloc-test-{os.getpid()}-{time.monotonic_ns()}"
    try:
        path.mkdir()
    except OSError as error:
        pytest.skip(f"memory cgroups are not writable here: {error}")
    try:
        yield path
    finally:
        for _ in range(100):
            try:
                path.rmdir()
                break
            except OSError:
                time.sleep(0.05)
        assert not path.exists(), f"could not remove {path}"


def run_child(cgroup: Path, limit: int, *args: str) -> dict[str, int]:
    (cgroup / "memory.limit_in_bytes").write_text(str(limit))
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.impl.memcg_child", *args],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        (cgroup / "cgroup.procs").write_text(str(child.pid))
        out, _ = child.communicate("go\n", timeout=120)
    finally:
        child.kill()
        child.wait()
    oom_kills = int((cgroup / "memory.oom_control").read_text().split("oom_kill ")[1].split()[0])
    assert child.returncode == 0, f"the child died ({child.returncode}); OOM kills: {oom_kills}"
    assert oom_kills == 0
    result: dict[str, int] = json.loads(out)
    result["failcnt"] = int((cgroup / "memory.failcnt").read_text())
    result["max_usage"] = int((cgroup / "memory.max_usage_in_bytes").read_text())
    return result


def test_low_pressure_in_a_child_cgroup_starts_evictions(child_memcg: Path, tmp_path: Path) -> None:
    """The seed's path: "low" fires when the kernel reclaims at the limit (page cache here)."""
    directory = next((d for d in (tmp_path, Path("/var/tmp")) if disk_backed(d)), None)
    if directory is None:
        pytest.skip("no disk-backed directory for reclaimable page cache")
    cache = directory / f"pgalloc-page-cache-{os.getpid()}"
    with open(cache, "wb") as f:
        f.write(bytes(64 << 20))
        f.flush()
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)  # the child charges it
    try:
        limit = 96 << 20
        result = run_child(child_memcg, limit, "low", "40", str(cache))  # 160 MiB in all
    finally:
        cache.unlink()
    assert result["started"] >= 1  # pressure notifications started evictions
    assert result["evicted"] > 0
    assert result["failcnt"] > 0  # "low" only comes at the limit


def test_usage_threshold_in_a_child_cgroup_evicts_before_the_limit(child_memcg: Path) -> None:
    """The early warning: evictions start at half the limit; the limit is never reached."""
    limit = 96 << 20
    result = run_child(child_memcg, limit, "threshold", "40")  # 160 MiB in all
    assert result["started"] >= 1
    assert result["evicted"] > 0
    assert result["failcnt"] == 0
    assert result["max_usage"] < limit

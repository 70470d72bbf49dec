"""Memory-cgroup pressure notifications, and the thread that turns them into evictions.

A ``MemoryFile`` created with ``DelayedEviction.ENABLED`` and
``use_host_memcg_pressure`` starts evictions when the host says memory is
short. A :class:`PressureSource` says where that news comes from:

* :class:`MemcgPressureLevel` — cgroup v1, the seed's choice
  (gVisor's ``hostmm.NotifyCurrentMemcgPressureCallback``): an eventfd
  registered through ``cgroup.event_control`` on ``memory.pressure_level``
  (``"<eventfd> <pressure_level fd> low"``);
* :class:`PsiTrigger` — cgroup v2: a PSI trigger written to ``memory.pressure``
  and polled for ``POLLPRI``;
* :class:`MemcgUsageThreshold` — beyond the seed, opt-in early warning: an
  eventfd registered on ``memory.usage_in_bytes`` (``"<eventfd> <usage fd>
  <bytes>"``) at a fraction of the cgroup's limit. Without swap, memfd pages
  cannot be reclaimed, so ``low`` fires only at the limit, milliseconds before
  the OOM killer; a usage threshold fires within a millisecond of crossing
  (in both directions: a notification counts only if usage is above it);
* :class:`AnyPressure` — several of these at once.

:func:`current_memcg_pressure` is the default: the current process's memory
cgroup, v1 if the memory controller is mounted there, else v2, else
:class:`PressureUnavailable`.

A :class:`PressureWatcher` registers a source and runs one thread that polls
its file descriptors (and a private stop eventfd) and calls back on pressure;
``stop`` ends the thread and closes everything. Removing a v1 memory cgroup
signals every eventfd registered on it once: the v1 sources tell that from
pressure (the cgroup's usage file then fails with ENODEV), and the watcher
stops watching a source that is gone instead of calling back (or dying).
"""

from __future__ import annotations

import logging
import os
import select
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from impl.kernel import DEFAULT_KERNEL, Kernel

log = logging.getLogger(__name__)

UNLIMITED = 1 << 62
"""cgroup v1 reports "no limit" as a huge page-rounded number; anything above this is none."""


class PressureUnavailable(OSError):
    """The requested memory-pressure notification cannot be set up here."""


# --- Finding the current memory cgroup ----------------------------------------------


def _current_cgroup_paths() -> tuple[str | None, str | None]:
    """(v1 memory cgroup path, v2 cgroup path) of this process, from /proc/self/cgroup."""
    v1 = v2 = None
    with open("/proc/self/cgroup") as f:
        for line in f:
            hierarchy, controllers, path = line.rstrip("\n").split(":", 2)
            if hierarchy == "0" and controllers == "":
                v2 = path
            elif "memory" in controllers.split(","):
                v1 = path
    return v1, v2


def _mounts(fstype: str, option: str | None) -> list[tuple[str, str]]:
    """(root within the hierarchy, mount point) of every ``fstype`` mount with ``option``."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            before, after = line.split(" - ", 1)
            fields = before.split()
            kind, _source, super_options = after.split()[:3]
            if kind == fstype and (option is None or option in super_options.split(",")):
                found.append((fields[3], fields[4]))
    return found


def _resolve(mounts: list[tuple[str, str]], path: str) -> str | None:
    for root, mount_point in mounts:
        if root in ("/", path) or path.startswith(root.rstrip("/") + "/"):
            relative = path[len(root) :] if root != "/" else path
            return os.path.join(mount_point, relative.lstrip("/"))
    return None


def current_memcg_v1_dir() -> str | None:
    """The directory of this process's cgroup v1 memory cgroup, if the controller is mounted."""
    path, _ = _current_cgroup_paths()
    if path is None:
        return None
    directory = _resolve(_mounts("cgroup", "memory"), path)
    return directory if directory and os.path.isdir(directory) else None


def current_cgroup_v2_dir() -> str | None:
    """The directory of this process's cgroup v2 cgroup, if it offers ``memory.pressure``."""
    _, path = _current_cgroup_paths()
    if path is None:
        return None
    directory = _resolve(_mounts("cgroup2", None), path)
    if directory and os.path.exists(os.path.join(directory, "memory.pressure")):
        return directory
    return None


# --- Registrations ------------------------------------------------------------------


@dataclass
class Registration:
    """One armed notification: a descriptor to poll, and how to read an event from it."""

    fd: int
    events: int
    """The poll events that mean "notified" (POLLIN for an eventfd, POLLPRI for PSI)."""
    consume: Callable[[], bool]
    """Read the event; whether it means pressure now. OSError: the source is gone."""
    fds: tuple[int, ...]
    """Every descriptor to close when done (``fd`` included)."""


def _write_control(directory: str, line: str) -> None:
    """One unbuffered write to ``cgroup.event_control`` (the kernel parses a single write)."""
    control = os.open(os.path.join(directory, "cgroup.event_control"), os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(control, line.encode())
    finally:
        os.close(control)


def _drain(fd: int) -> bool:
    try:
        os.eventfd_read(fd)
    except BlockingIOError:
        return False
    return True


def _usage(usage_fd: int) -> int:
    """The cgroup's usage; OSError (ENODEV) once the cgroup has been removed.

    Removing a v1 memory cgroup signals every eventfd registered on it once,
    so each notification is checked against this before it counts.
    """
    return int(os.pread(usage_fd, 64, 0))


def _open_usage(directory: str, efd: int) -> int:
    """Open ``memory.usage_in_bytes`` (closing ``efd`` if that fails)."""
    try:
        return os.open(os.path.join(directory, "memory.usage_in_bytes"), os.O_RDONLY | os.O_CLOEXEC)
    except OSError as error:
        os.close(efd)
        raise PressureUnavailable(f"cannot open memory.usage_in_bytes: {error}") from error


def _close_all(fds: tuple[int, ...]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError as error:
            log.warning("closing pressure descriptor %d: %s", fd, error)


class PressureSource(ABC):
    """Somewhere memory-pressure news comes from."""

    @abstractmethod
    def register(self, kernel: Kernel) -> list[Registration]:
        """Arm the notifications; raise :class:`PressureUnavailable` if impossible."""


@dataclass(frozen=True)
class MemcgPressureLevel(PressureSource):
    """cgroup v1 ``memory.pressure_level`` notifications at ``level`` (low, medium, critical)."""

    level: str = "low"
    directory: str | None = None
    """The memory cgroup; default: the current process's."""

    def register(self, kernel: Kernel) -> list[Registration]:
        directory = self.directory or current_memcg_v1_dir()
        if directory is None:
            raise PressureUnavailable("no cgroup v1 memory controller for this process")
        efd = kernel.eventfd()
        usage_fd = _open_usage(directory, efd)
        try:
            level_fd = os.open(
                os.path.join(directory, "memory.pressure_level"), os.O_RDONLY | os.O_CLOEXEC
            )
            try:
                _write_control(directory, f"{efd} {level_fd} {self.level}")
            finally:
                os.close(level_fd)
        except OSError as error:
            _close_all((efd, usage_fd))
            raise PressureUnavailable(
                f"cannot register for {self.level!r} memory pressure in {directory}: {error}"
            ) from error

        def notified() -> bool:
            if not _drain(efd):
                return False
            _usage(usage_fd)  # the cgroup's removal also signals: then this raises
            return True

        return [Registration(efd, select.POLLIN, notified, (efd, usage_fd))]


@dataclass(frozen=True)
class PsiTrigger(PressureSource):
    """A cgroup v2 PSI trigger: ``kind`` tasks stalled ``stall_us`` within ``window_us``.

    The default window is 2 s because without ``CAP_SYS_RESOURCE`` the kernel
    only accepts multiples of 2 s.
    """

    kind: str = "some"
    stall_us: int = 150_000
    window_us: int = 2_000_000
    directory: str | None = None
    """The cgroup v2 directory; default: the current process's."""

    def register(self, kernel: Kernel) -> list[Registration]:
        directory = self.directory or current_cgroup_v2_dir()
        if directory is None:
            raise PressureUnavailable("no cgroup v2 memory.pressure for this process")
        path = os.path.join(directory, "memory.pressure")
        try:
            fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as error:
            raise PressureUnavailable(f"cannot open {path}: {error}") from error
        try:
            os.write(fd, f"{self.kind} {self.stall_us} {self.window_us}".encode())
        except OSError as error:
            os.close(fd)
            raise PressureUnavailable(f"cannot set a PSI trigger on {path}: {error}") from error
        return [Registration(fd, select.POLLPRI, lambda: True, (fd,))]


def memcg_limit(directory: str) -> int | None:
    """The effective memory limit of a v1 memory cgroup (its own or an ancestor's), or None."""
    limits = []
    with open(os.path.join(directory, "memory.limit_in_bytes")) as f:
        limits.append(int(f.read()))
    with open(os.path.join(directory, "memory.stat")) as f:
        for line in f:
            name, value = line.split()
            if name == "hierarchical_memory_limit":
                limits.append(int(value))
    limit = min(limits)
    return limit if limit < UNLIMITED else None


@dataclass(frozen=True)
class MemcgUsageThreshold(PressureSource):
    """Early warning (beyond the seed): usage of the v1 memory cgroup crossing a threshold.

    Give ``fraction`` (of the cgroup's effective limit) or ``threshold`` (bytes).
    """

    fraction: float | None = None
    threshold: int | None = None
    directory: str | None = None
    """The memory cgroup; default: the current process's."""

    def __post_init__(self) -> None:
        if (self.fraction is None) == (self.threshold is None):
            raise ValueError("give exactly one of fraction and threshold")
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], not {self.fraction}")

    def threshold_in(self, directory: str) -> int:
        if self.threshold is not None:
            return self.threshold
        assert self.fraction is not None
        limit = memcg_limit(directory)
        if limit is None:
            raise PressureUnavailable(f"the memory cgroup {directory} has no limit")
        return int(limit * self.fraction)

    def register(self, kernel: Kernel) -> list[Registration]:
        directory = self.directory or current_memcg_v1_dir()
        if directory is None:
            raise PressureUnavailable("no cgroup v1 memory controller for this process")
        threshold = self.threshold_in(directory)
        efd = kernel.eventfd()
        usage_fd = _open_usage(directory, efd)
        try:
            _write_control(directory, f"{efd} {usage_fd} {threshold}")
        except OSError as error:
            _close_all((efd, usage_fd))
            raise PressureUnavailable(
                f"cannot register a usage threshold in {directory}: {error}"
            ) from error

        def above() -> bool:
            # The threshold fires on crossings both ways: only upward ones are pressure.
            return _drain(efd) and _usage(usage_fd) >= threshold

        return [Registration(efd, select.POLLIN, above, (efd, usage_fd))]


@dataclass(frozen=True)
class AnyPressure(PressureSource):
    """Pressure from any of ``sources`` (e.g. the seed's ``low`` plus an early warning)."""

    sources: tuple[PressureSource, ...]

    def register(self, kernel: Kernel) -> list[Registration]:
        registered: list[Registration] = []
        try:
            for source in self.sources:
                registered += source.register(kernel)
        except BaseException:
            for registration in registered:
                _close_all(registration.fds)
            raise
        return registered


def current_memcg_pressure(level: str = "low") -> PressureSource:
    """The default source: this process's memory cgroup at ``level``, v1 else v2 (PSI)."""
    if current_memcg_v1_dir() is not None:
        return MemcgPressureLevel(level)
    if current_cgroup_v2_dir() is not None:
        return PsiTrigger()
    raise PressureUnavailable(
        "failed to configure memcg pressure level notifications: this process has neither a "
        "cgroup v1 memory controller nor a cgroup v2 memory.pressure file"
    )


# --- The watcher thread ---------------------------------------------------------------


class PressureWatcher:
    """Registers ``source`` and calls ``callback`` on its thread at each pressure notification."""

    def __init__(
        self,
        source: PressureSource,
        callback: Callable[[], object],
        kernel: Kernel = DEFAULT_KERNEL,
    ) -> None:
        self._registrations = source.register(kernel)
        self._callback = callback
        self._stop_fd = kernel.eventfd()
        self._stopped = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="pgalloc-pressure", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        poller = select.poll()
        by_fd = {r.fd: r for r in self._registrations}
        for registration in self._registrations:
            poller.register(registration.fd, registration.events)
        poller.register(self._stop_fd, select.POLLIN)
        while True:
            pressure = False
            for fd, events in poller.poll():
                if fd == self._stop_fd:
                    return
                said = self._read(by_fd[fd], events)
                if said is None:  # the cgroup went away: this source will say nothing more
                    poller.unregister(fd)
                pressure = pressure or said is True
            if pressure:
                try:
                    self._callback()
                except Exception:
                    log.exception("memory pressure callback failed")

    @staticmethod
    def _read(registration: Registration, events: int) -> bool | None:
        """Whether ``events`` on ``registration`` mean pressure; None if its source is gone."""
        if events & registration.events:
            try:
                return registration.consume()
            except OSError as error:
                log.warning("memory pressure source %d is gone: %s", registration.fd, error)
                return None
        if events & (select.POLLERR | select.POLLHUP | select.POLLNVAL):
            log.warning("memory pressure descriptor %d failed; no longer watched", registration.fd)
            return None
        return False

    def stop(self) -> None:
        """End the thread and close every descriptor; idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        os.eventfd_write(self._stop_fd, 1)
        if self._thread is not threading.current_thread():
            self._thread.join()
        for registration in self._registrations:
            _close_all(registration.fds)
        _close_all((self._stop_fd,))

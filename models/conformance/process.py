"""The runner's side of a driver: a subprocess spoken to in JSON lines, or a port in-process.

:class:`SubprocessDriver` starts the porter's command (in its own process
group), says hello, then sends one request per line and waits for one
response line with a per-request timeout. Whatever goes wrong — the driver
exits, hangs, writes something that is not JSON, answers with the wrong id
or a message its schema forbids — raises :class:`DriverFailure` naming the
request that caused it and the tail of the driver's stderr; the process is
then killed and the next request starts a fresh one. The runner never
blocks without a deadline: reads and writes go through ``select``.

:class:`InProcessDriver` answers through a :class:`Port` object directly,
for speed where the port is our own.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shlex
import signal
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import IO

from models.conformance.codec import Json
from models.conformance.port import Port
from models.conformance.protocol import DEFAULT_TIMEOUT, PROTOCOL_VERSION
from models.conformance.schema import SchemaError, validate_response

MAX_LINE = 256 << 20
"""A response line longer than this is malformed (a driver printing without end)."""

STDERR_TAIL = 2000
"""How many trailing characters of the driver's stderr a failure report shows."""


class DriverFailure(Exception):
    """The driver crashed, hung or broke the protocol while answering ``request``.

    ``kind`` is ``crashed`` (it ended its output, or could not start),
    ``timeout`` or ``malformed``.
    """

    def __init__(self, kind: str, request: dict[str, Json] | None, detail: str) -> None:
        self.kind = kind
        self.request = request
        self.detail = detail
        what = json.dumps(request) if request is not None else "(startup)"
        super().__init__(f"driver {kind} on request {what}: {detail}")


class Driver(ABC):
    """Something that answers protocol requests."""

    name: str = "?"
    features: frozenset[str] = frozenset()

    @abstractmethod
    def request(self, request: dict[str, Json]) -> dict[str, Json]:
        """The response to ``request`` (sent without an id; the driver adds its own)."""

    def close(self) -> None:  # noqa: B027 - in-process drivers hold nothing
        """End the session."""

    def __enter__(self) -> Driver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcessDriver(Driver):
    """A :class:`Port` answering directly (our own ports, for speed)."""

    def __init__(self, port: Port) -> None:
        self.port = port
        self.name = port.name
        self.features = frozenset(port.features())

    def request(self, request: dict[str, Json]) -> dict[str, Json]:
        return self.port.handle(request)

    def close(self) -> None:
        self.port.close()


def check_envelope(request: dict[str, Json], response: Json, request_id: int) -> None:
    """Raise :class:`DriverFailure` (malformed) unless ``response`` answers ``request_id``.

    Only the envelope: a response equal to the expected one is valid by
    construction, and :func:`models.conformance.compare.compare` validates
    any other against the schema before reporting a difference.
    """
    if not isinstance(response, dict) or type(response.get("ok")) is not bool:
        raise DriverFailure("malformed", request, f"not a response object: {response!r:.200}")
    if response.get("id") != request_id:
        raise DriverFailure(
            "malformed",
            request,
            f"the response carries id {response['id']!r}, not {request_id}"
            if "id" in response
            else f"the response carries no id (it must echo the request's id, {request_id})",
        )


class SubprocessDriver(Driver):
    """A porter's driver command, restarted after any failure (see the module docstring)."""

    def __init__(self, command: str | Sequence[str], *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.argv = shlex.split(command) if isinstance(command, str) else list(command)
        if not self.argv:
            raise ValueError("empty driver command")
        self.timeout = timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.stderr: IO[bytes] | None = None
        self.buffer = b""
        self.next_id = 0
        self.starts = 0
        self._hello()

    # --- Lifecycle --------------------------------------------------------------------

    def _start(self) -> None:
        # The driver's stderr goes to a file (read back for failure reports): a pipe
        # could fill up and block a chatty driver. Closed by kill().
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.stderr,
                start_new_session=True,  # its own process group, so a kill reaches its children
            )
        except OSError as failure:
            self.kill()
            raise DriverFailure("crashed", None, f"cannot start {self.argv}: {failure}") from None
        self.buffer = b""
        self.starts += 1

    def _hello(self) -> None:
        self._start()
        hello = {"op": "hello", "protocol": PROTOCOL_VERSION}
        response = self._exchange(hello)
        try:
            validate_response("hello", response)
        except SchemaError as failure:
            self.kill()
            raise DriverFailure("malformed", hello, str(failure)) from None
        if not response["ok"]:
            self.kill()
            raise DriverFailure("malformed", hello, f"hello refused: {response}")
        self.name = str(response["result"]["name"])
        self.features = frozenset(response["result"]["features"])

    def kill(self) -> None:
        """Kill the driver's process group (if it runs) and forget it."""
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()
        if self.stderr is not None:
            self.stderr.close()
            self.stderr = None

    def close(self) -> None:
        """End the session: close stdin, give the driver a moment to exit, then kill it."""
        process = self.process
        if process is not None and process.stdin is not None:
            try:
                process.stdin.close()
                process.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()

    # --- Requests -------------------------------------------------------------------------

    def request(self, request: dict[str, Json]) -> dict[str, Json]:
        if self.process is None:
            self._hello()
        return self._exchange(request)

    def _exchange(self, request: dict[str, Json]) -> dict[str, Json]:
        request_id = self.next_id
        self.next_id += 1
        line = json.dumps({"id": request_id, **request}, separators=(",", ":")) + "\n"
        deadline = time.monotonic() + self.timeout
        try:
            self._write(line.encode(), request, deadline)
            raw = self._read_line(request, deadline)
        except DriverFailure:
            self.kill()
            raise
        try:
            response = json.loads(raw)
        except ValueError:
            self.kill()
            shown = raw[:200].decode(errors="replace")
            raise DriverFailure("malformed", request, f"not JSON: {shown!r}") from None
        try:
            check_envelope(request, response, request_id)
        except DriverFailure:
            self.kill()
            raise
        return dict(response)

    def _write(self, data: bytes, request: dict[str, Json], deadline: float) -> None:
        assert self.process is not None and self.process.stdin is not None
        fd = self.process.stdin.fileno()
        os.set_blocking(fd, False)
        while data:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._failure("timeout", request, "did not read its input in time")
            _, writable, _ = select.select([], [fd], [], remaining)
            if not writable:
                continue
            try:
                data = data[os.write(fd, data) :]
            except BrokenPipeError:
                raise self._failure("crashed", request, "closed its input") from None
            except BlockingIOError:
                continue

    def _read_line(self, request: dict[str, Json], deadline: float) -> bytes:
        assert self.process is not None and self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while b"\n" not in self.buffer:
            if len(self.buffer) > MAX_LINE:
                raise self._failure("malformed", request, f"a line longer than {MAX_LINE} bytes")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._failure("timeout", request, f"no answer within {self.timeout:g} s")
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise self._failure("crashed", request, "ended its output")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def _failure(self, kind: str, request: dict[str, Json], what: str) -> DriverFailure:
        """A failure report: what happened, the exit status if it ended, its stderr's tail."""
        process = self.process
        status = None
        if process is not None and kind == "crashed":
            try:
                status = process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                status = None
        detail = what
        if status is not None:
            detail += (
                f" (exit status {status})" if status >= 0 else f" (killed by signal {-status})"
            )
        tail = self._stderr_tail()
        if tail:
            detail += f"\n--- last lines of its stderr ---\n{tail}"
        return DriverFailure(kind, request, detail)

    def _stderr_tail(self) -> str:
        if self.stderr is None:
            return ""
        self.stderr.flush()
        size = self.stderr.seek(0, os.SEEK_END)
        self.stderr.seek(max(0, size - STDERR_TAIL))
        return self.stderr.read().decode(errors="replace").strip()

"""The schedules check's fine part in a child process running the pure-Python impl.

Fine mode preempts at every line of impl's source that a thread runs without
the lock; the compiled build runs those lines as machine code, with no line
to stop at. So when impl is loaded compiled, :func:`run_shared_in_pure_child`
runs that part (:func:`models.schedule.checks.run_shared`) in
``python -m models.schedule.pure_child SECONDS`` with ``PGALLOC_PURE=1``,
relaying its progress lines; the child's last line is its result as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from models.check import Progress

RESULT = "result: "


def run_shared_in_pure_child(seconds: float, progress: Progress) -> tuple[int, str | None]:
    """The fine part's schedules run and its failure (shrunk and explained), or None."""
    env = {**os.environ, "PGALLOC_PURE": "1"}
    command = [sys.executable, "-m", "models.schedule.pure_child", repr(seconds)]
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None
        result = None
        for line in child.stdout:
            if line.startswith(RESULT):
                result = json.loads(line[len(RESULT) :])
            else:
                progress(line.rstrip("\n"))
    if child.returncode or result is None:
        return 0, f"the pure-Python child running the fine part failed (exit {child.returncode})"
    return int(result["runs"]), result["detail"]


def main() -> int:
    import impl
    from models.schedule.checks import explain_failure, run_shared
    from models.schedule.run import Setup

    if impl.compiled():
        print(f"the child loaded {impl.build()}, not the pure build", file=sys.stderr)
        return 2
    setup = Setup(fine=True)
    found = run_shared(setup, float(sys.argv[1]), lambda line: print(line, flush=True))
    detail = None if found.failure is None else explain_failure(found, setup, print)
    print(RESULT + json.dumps({"runs": found.runs, "detail": detail}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

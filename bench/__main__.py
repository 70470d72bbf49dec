"""``python -m bench [--quick]``: every ``bench/bench_*.py`` under both builds of impl, one table.

impl runs compiled (mypyc) or as pure Python from the same source (impl/_build.py).
Each benchmark module runs in a child interpreter per build, the builds one
after the other for each module (``PGALLOC_PURE=1`` for the pure one), so both
columns come from the same run; a module's ``BUILDS`` may name only one
(``"pure"``: it measures the pure source itself; ``"any"``: it does not touch
impl, and runs once). The exit status is 0 when every figure of the compiled
build meets its target (of the pure build when nothing is compiled): the pure
build's figures are its reference, printed with the targets of issue 3.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import pkgutil
import subprocess
import sys

import bench
from bench.harness import Figure, table

BUILDS = ("pure", "compiled")


def child(module: str, quick: bool) -> int:
    """In a child: run ``bench.module`` and print its figures as JSON (one line)."""
    figures = importlib.import_module(f"bench.{module}").run(quick)
    print(json.dumps([dataclasses.asdict(f) for f in figures]))
    return 0


def measure(module: str, build: str, quick: bool) -> list[Figure]:
    """``module``'s figures under ``build``, measured in a child interpreter."""
    env = {k: v for k, v in os.environ.items() if k != "PGALLOC_PURE"}
    if build == "pure":
        env["PGALLOC_PURE"] = "1"
    command = [sys.executable, "-m", "bench", "--child", module, *(["--quick"] if quick else [])]
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"bench.{module} under the {build} build failed (exit {done.returncode})")
    return [Figure(**fields) for fields in json.loads(done.stdout.splitlines()[-1])]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    parser.add_argument(
        "--only", action="append", default=[], help="run only bench_NAME (repeatable)"
    )
    parser.add_argument("--child", metavar="MODULE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.quick)
    import impl

    builds = BUILDS if impl.compiled() else ("pure",)
    if len(builds) == 1:
        print(f"impl is not compiled here ({impl.build()}): the pure build only", file=sys.stderr)
    rows: list[tuple[str, Figure]] = []
    for module in sorted(m.name for m in pkgutil.iter_modules(bench.__path__)):
        if not module.startswith("bench_") or (args.only and module[6:] not in args.only):
            continue
        wanted = getattr(importlib.import_module(f"bench.{module}"), "BUILDS", BUILDS)
        for build in wanted:
            if build in builds or build == "any":
                print(f"running {module} ({build})...", file=sys.stderr, flush=True)
                rows += [(build, f) for f in measure(module, build, args.quick)]
    if not rows:
        names = ", ".join(args.only)
        print(f"python -m bench: no benchmark measured (no bench_NAME for --only {names})")
        return 2
    print(table(rows))
    judged = builds[-1]  # the compiled build, when there is one
    return 0 if all(f.met for build, f in rows if build in (judged, "any")) else 1


if __name__ == "__main__":
    sys.exit(main())

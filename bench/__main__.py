"""``python -m bench [--quick]``: run every ``bench/bench_*.py`` and print one table."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import bench
from bench.harness import Figure, table


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    parser.add_argument(
        "--only", action="append", default=[], help="run only bench_NAME (repeatable)"
    )
    args = parser.parse_args()
    figures: list[Figure] = []
    for module in sorted(m.name for m in pkgutil.iter_modules(bench.__path__)):
        if not module.startswith("bench_") or (args.only and module[6:] not in args.only):
            continue
        print(f"running {module}...", file=sys.stderr, flush=True)
        figures += importlib.import_module(f"bench.{module}").run(args.quick)
    print(table(figures))
    return 0 if all(f.met for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())

"""The ``pgalloc`` command line: one small function per subcommand, each importing its work lazily.

``pgalloc check`` is the main job: it runs every check of the evidence (the
registry in ``models/check.py``) within a time budget, shows progress on
stderr, prints a summary table and exits non-zero if anything failed.

The conformance commands (``models/conformance/commands.py``) serve porters:
``pgalloc vectors generate | replay | coverage`` for the corpus,
``pgalloc conform`` for randomized differential runs against a port's
driver, and ``pgalloc driver spec | impl`` for the drivers we ship.

Only ``argparse`` is imported to parse the command line: each subcommand's
``run`` imports what it needs when it runs, so ``pgalloc --help`` is quick
and the drivers, ``replay`` and ``conform`` never load z3 or the proofs.
Adding a subcommand is adding one ``_add_*`` function to :data:`SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeAlias

from models.conformance.protocol import DEFAULT_MAX_FAILURES, DEFAULT_TIMEOUT

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Run = Callable[[argparse.Namespace], int]
"""What a subcommand does with its parsed arguments; returns the exit status."""

DEFAULT_BUDGET = 60.0
"""Seconds ``pgalloc check`` and ``pgalloc conform`` spend by default."""
DEFAULT_PICTURES = "pgalloc-divergences"
"""Where replaying the installed corpus draws its failures (in the current folder)."""
CORPUS_HELP = "the corpus this installation carries: vectors/ of a source checkout, or the wheel's"


def _positive(value: str) -> float:
    """An argparse type: a positive number (of seconds)."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {value}")
    return number


def _positive_int(value: str) -> int:
    """An argparse type: a positive whole number."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return number


def _part(value: str) -> tuple[int, int]:
    """An argparse type: ``K/M``, part K (from 1) of M."""
    part, _, parts = value.partition("/")
    try:
        k, m = int(part), int(parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not K/M: {value!r}") from None
    if not 1 <= k <= m:
        raise argparse.ArgumentTypeError(f"K/M needs 1 <= K <= M, not {value}")
    return k - 1, m


def _add_examples(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--examples",
        type=Path,
        metavar="FOLDER",
        help="hypothesis's example database for the fuzzing (may be shared storage): "
        "failures are saved there and replayed first by every later run",
    )


def _use_examples(args: argparse.Namespace) -> None:
    """Name the example database in the environment, which the workers inherit."""
    if args.examples is not None:
        import os

        from models.profiles import EXAMPLES_VARIABLE

        os.environ[EXAMPLES_VARIABLE] = str(args.examples)


def _cores() -> int:
    from models.parallel import available_cores

    return available_cores()


# --- pgalloc check --------------------------------------------------------------------


def _add_check(commands: Subcommands) -> None:
    check = commands.add_parser(
        "check", help="run every check: spec, proofs, model checker, stateful machines"
    )
    check.add_argument(
        "--budget",
        type=_positive,
        default=DEFAULT_BUDGET,
        metavar="SECONDS",
        help="total time to spend, shared among the checks (default: %(default)g)",
    )
    check.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this check (repeatable)",
    )
    check.add_argument(
        "--jobs",
        type=_positive_int,
        default=None,
        metavar="N",
        help="processes to run checks and shards of the randomized ones in "
        "(default: the cores available)",
    )
    check.add_argument(
        "--shard",
        type=_part,
        default="1/1",
        metavar="K/M",
        help="this machine's part K of a campaign on M machines, each running the same "
        "command with the same --jobs (default: %(default)s)",
    )
    _add_examples(check)
    check.add_argument("--list", action="store_true", help="list the checks and exit")
    check.set_defaults(run=_run_check)


def _run_check(args: argparse.Namespace) -> int:
    from models import check

    if args.list:
        for entry in check.REGISTRY:
            print(f"{entry.name}: {check.find(entry.name).description}")
        return 0
    try:
        names = [check.entry(name).name for name in args.only] or [
            entry.name for entry in check.REGISTRY
        ]
    except check.UnknownCheck as unknown:
        print(f"pgalloc check: {unknown}", file=sys.stderr)
        return 2
    from models.check_run import run_checks

    _use_examples(args)
    return run_checks(args.budget, names, args.jobs or _cores(), args.shard)


# --- pgalloc vectors generate | replay | coverage ---------------------------------------


def _add_driver_options(parser: argparse.ArgumentParser, failures: str) -> None:
    parser.add_argument("--driver", required=True, metavar="CMD", help="the driver command")
    parser.add_argument(
        "--timeout",
        type=_positive,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="per request (default: %(default)g)",
    )
    parser.add_argument(
        "--max-failures",
        type=_positive_int,
        default=DEFAULT_MAX_FAILURES,
        metavar="N",
        help=f"stop after this many {failures} (default: %(default)d)",
    )


def _add_vectors(commands: Subcommands) -> None:
    vectors = commands.add_parser("vectors", help="the conformance vectors: generate, replay")
    actions = vectors.add_subparsers(dest="action", metavar="ACTION")
    vectors.set_defaults(
        run=lambda args: _usage(vectors, "choose generate, replay, coverage or mutation")
    )

    generate = actions.add_parser("generate", help="derive the corpus from the specification")
    generate.add_argument(
        "--dir",
        type=Path,
        metavar="FOLDER",
        help="where to write (default: vectors/ of this source checkout; with --check, "
        "the installed corpus)",
    )
    generate.add_argument(
        "--check", action="store_true", help="compare with the corpus on disk instead of writing"
    )
    generate.set_defaults(run=_run_generate)

    replay = actions.add_parser("replay", help="replay vectors through a port's driver")
    coverage = actions.add_parser(
        "coverage", help="line and branch coverage of spec/ while replaying the vectors"
    )
    mutation = actions.add_parser(
        "mutation", help="replay the vectors through each mutant of the spec: is each killed?"
    )
    mutation.add_argument("mutants", nargs="*", help="only these (default: the catalogue)")
    for sub in (replay, coverage, mutation):
        sub.add_argument(
            "--vectors", type=Path, metavar="PATH", help=f"a vector file or folder ({CORPUS_HELP})"
        )
    _add_driver_options(replay, "vectors in a row on which the driver crashed or timed out")
    replay.add_argument("--quiet", action="store_true", help="print only failures")
    replay.add_argument(
        "--pictures",
        type=Path,
        metavar="FOLDER",
        help="where to draw each failing vector (default: beside the vector given with "
        f"--vectors; for the corpus this installation carries, {DEFAULT_PICTURES}/)",
    )
    replay.set_defaults(run=_run_replay)
    coverage.set_defaults(run=_run_coverage)
    mutation.set_defaults(run=_run_mutation)


def _corpus(args: argparse.Namespace) -> Path:
    from models.conformance.replay import default_corpus

    location: Path | None = args.vectors
    return location if location is not None else default_corpus()


def _run_generate(args: argparse.Namespace) -> int:
    from models.conformance import commands
    from models.conformance.replay import SOURCE_CORPUS, default_corpus

    directory: Path | None = args.dir
    if directory is None and args.check:
        directory = default_corpus()
    elif directory is None:
        if not (SOURCE_CORPUS.parent / "pyproject.toml").is_file():
            print(
                "pgalloc vectors generate: not run from a source checkout: give --dir FOLDER",
                file=sys.stderr,
            )
            return 2
        directory = SOURCE_CORPUS
    return commands.vectors_generate(directory, args.check)


def _run_replay(args: argparse.Namespace) -> int:
    from models.conformance import commands

    pictures: Path | None = args.pictures
    if pictures is None and args.vectors is None:
        pictures = Path(DEFAULT_PICTURES)  # never into the corpus itself
    return commands.vectors_replay(
        args.driver,
        _corpus(args),
        args.timeout,
        args.quiet,
        max_failures=args.max_failures,
        pictures=pictures,
    )


def _run_coverage(args: argparse.Namespace) -> int:
    from models.conformance import commands

    return commands.vectors_coverage(_corpus(args))


def _run_mutation(args: argparse.Namespace) -> int:
    from models.conformance import commands

    return commands.vectors_mutation(_corpus(args), args.mutants)


# --- pgalloc conform --------------------------------------------------------------------


def _add_conform(commands: Subcommands) -> None:
    conform = commands.add_parser(
        "conform", help="random sequences through a port's driver and the spec side by side"
    )
    conform.add_argument(
        "--budget",
        type=_positive,
        default=DEFAULT_BUDGET,
        metavar="SECONDS",
        help="how long to draw sequences (default: %(default)g)",
    )
    conform.add_argument(
        "--save", type=Path, metavar="FILE", help="also write a divergence's trace here"
    )
    conform.add_argument(
        "--jobs",
        type=_positive_int,
        default=None,
        metavar="N",
        help="driver processes, each with a spec worker of its own (default: the cores available)",
    )
    conform.add_argument(
        "--seed",
        type=int,
        metavar="N",
        help="draw the sequences from this seed (default: a random one, printed)",
    )
    _add_examples(conform)
    _add_driver_options(conform, "requests timed out")
    conform.set_defaults(run=_run_conform)


def _run_conform(args: argparse.Namespace) -> int:
    from models.conformance import commands

    _use_examples(args)
    return commands.conform(
        args.driver,
        args.budget,
        args.timeout,
        args.save,
        max_failures=args.max_failures,
        jobs=args.jobs or _cores(),
        seed=args.seed,
    )


# --- pgalloc show -----------------------------------------------------------------------


def _add_show(commands: Subcommands) -> None:
    show = commands.add_parser(
        "show", help="draw a vector (or a counterexample) step by step: HTML, or --text"
    )
    show.add_argument("vector", nargs="?", type=Path, help="the vector file to draw")
    show.add_argument(
        "-o", "--output", type=Path, metavar="OUT.html", help="where (default: beside it)"
    )
    show.add_argument("--text", action="store_true", help="print one line per step instead")
    show.add_argument(
        "--counterexample",
        metavar="SCENARIO",
        help="draw the model checker's counterexample of this scenario (e.g. stale-mincore)",
    )
    show.set_defaults(run=lambda args: _run_show(show, args))


def _run_show(show: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if (args.vector is None) == (args.counterexample is None):
        show.error("give a vector file or --counterexample SCENARIO (one of them)")
    from models.picture.show import show as draw

    return draw(args.vector, args.output, args.text, args.counterexample)


# --- pgalloc driver ---------------------------------------------------------------------


def _add_driver(commands: Subcommands) -> None:
    driver = commands.add_parser("driver", help="serve a shipped driver on stdin/stdout")
    driver.add_argument("port", choices=["spec", "impl"])
    driver.add_argument(
        "--mutant",
        metavar="NAME",
        help="a deliberately wrong spec driver (models/conformance/mutants.py)",
    )
    driver.set_defaults(run=_run_driver)


def _run_driver(args: argparse.Namespace) -> int:
    from models.conformance import commands

    return commands.driver(args.port, args.mutant)


# --- The parser -------------------------------------------------------------------------

SUBCOMMANDS: tuple[Callable[[Subcommands], None], ...] = (
    _add_check,
    _add_vectors,
    _add_conform,
    _add_driver,
    _add_show,
)
"""Each adds one subcommand, with ``run`` set to the function that carries it out."""


def _usage(parser: argparse.ArgumentParser, message: str) -> int:
    parser.error(message)  # exits with status 2


class _Version(argparse.Action):
    """``--version``: the package's version and the build of impl it loads (imported then)."""

    def __init__(self, option_strings: Sequence[str], dest: str) -> None:
        super().__init__(
            option_strings, dest, nargs=0, help="print the version and impl's build, then exit"
        )

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from importlib.metadata import version

        import impl

        print(f"pgalloc {version('pgalloc')}; impl: {impl.build()}")
        parser.exit()


def parser() -> argparse.ArgumentParser:
    """The ``pgalloc`` argument parser (building it imports nothing but argparse)."""
    root = argparse.ArgumentParser(
        prog="pgalloc", description="A model-checked reference of gVisor's page allocator."
    )
    root.add_argument("--version", action=_Version)
    commands = root.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    root = parser()
    # Known arguments first, so that an unknown flag is named even before a subcommand.
    args, unknown = root.parse_known_args(argv)
    if unknown:
        root.error(f"unrecognized arguments: {' '.join(unknown)}")
    run: Run | None = getattr(args, "run", None)
    if run is None:
        root.error("choose a command: check, vectors, conform, driver or show (see pgalloc --help)")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())

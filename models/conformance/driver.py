"""Serving a port over the driver protocol: JSON lines in on stdin, JSON lines out on stdout.

This is the whole driver loop a porter writes in their own language (see
``docs/conformance.md``): read a line, decode the request, answer it,
echo its ``id``, write exactly one line, flush. Logs go to stderr. A line
that is not a valid request is answered ``bad-request``; end of input ends
the session.

``python -m models.conformance.driver spec|impl [--mutant NAME]`` starts
one of our drivers without loading the rest of the ``pgalloc`` command
(``pgalloc driver`` is the same thing).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import IO

from models.conformance.codec import Json
from models.conformance.port import Port, Response, error
from models.conformance.schema import SchemaError, validate_request


def answer(port: Port, line: str) -> Response:
    """The response to one input line (its id echoed when it has one)."""
    try:
        request: Json = json.loads(line)
        validate_request(request)
    except (ValueError, SchemaError) as failure:
        response = error("bad-request", f"not a valid request: {failure}")
        if isinstance(request_id := _id(line), int):
            response["id"] = request_id
        return response
    response = port.handle(request)
    if "id" in request:
        response = {"id": request["id"], **response}
    return response


def _id(line: str) -> object:
    try:
        return json.loads(line).get("id")
    except (ValueError, AttributeError):
        return None


def serve(port: Port, stdin: IO[str] = sys.stdin, stdout: IO[str] = sys.stdout) -> int:
    """Answer every request line of ``stdin`` on ``stdout`` until end of input."""
    try:
        for line in stdin:
            if not line.strip():
                continue
            stdout.write(json.dumps(answer(port, line), separators=(",", ":")) + "\n")
            stdout.flush()
    finally:
        port.close()
    return 0


def make_port(which: str, mutant: str | None = None) -> Port:
    """One of the ports we ship: the specification (or a mutant of it), or impl."""
    if which == "impl":
        from models.conformance.impl_port import ImplPort

        return ImplPort()
    if mutant is not None:
        from models.conformance.mutants import MUTANTS

        return MUTANTS[mutant]()
    from models.conformance.spec_port import SpecPort

    return SpecPort()


def main(
    argv: Sequence[str] | None = None, prog: str = "python -m models.conformance.driver"
) -> int:
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("port", choices=["spec", "impl"])
    parser.add_argument(
        "--mutant", help="a deliberately wrong spec driver (models/conformance/mutants.py)"
    )
    args = parser.parse_args(argv)
    if args.mutant is not None:
        from models.conformance.mutants import MUTANTS

        if args.port != "spec":
            parser.error("--mutant applies to the spec driver")
        if args.mutant not in MUTANTS:
            parser.error(f"no mutant named {args.mutant} (there are: {', '.join(sorted(MUTANTS))})")
    return serve(make_port(args.port, args.mutant))


if __name__ == "__main__":
    sys.exit(main())

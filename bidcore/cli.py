"""The ``bidcore`` command.

``bidcore validate FILE...`` checks bid requests with the native parser: one line per request,
``OK`` or the error with its JSON path; the exit status is 1 if any request fails, 2 if a file
cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

from bidcore._core import Limits, RequestParser
from bidcore.errors import InvalidRequestError

__all__ = ["main"]

_LINE_SUFFIXES = {".jsonl", ".ndjson"}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    status: int = args.run(args, sys.stdout)
    return status


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bidcore", description="bidcore's command line.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    validate = commands.add_parser(
        "validate",
        help="check OpenRTB bid requests (JSON or JSON lines) with the native parser",
        description="Check bid requests: one line per request with OK or the error and its "
        "JSON path. Files ending in .jsonl/.ndjson, and standard input (-), hold one request "
        "per line; other files hold one request. Exit status 1 if any request fails.",
    )
    validate.add_argument("files", nargs="+", metavar="FILE", help="a file, or - for stdin")
    validate.add_argument(
        "--lines", action="store_true", help="read every file as JSON lines, whatever its name"
    )
    validate.add_argument("-q", "--quiet", action="store_true", help="print failures only")
    validate.add_argument("--max-body-bytes", type=int, default=Limits().max_body_bytes)
    validate.add_argument("--max-depth", type=int, default=Limits().max_depth)
    validate.add_argument("--max-imps", type=int, default=Limits().max_imps)
    validate.add_argument("--max-string-bytes", type=int, default=Limits().max_string_bytes)
    validate.set_defaults(run=_validate)
    return parser


def _validate(args: argparse.Namespace, out: TextIO) -> int:
    request_parser = RequestParser(
        Limits(
            max_body_bytes=args.max_body_bytes,
            max_depth=args.max_depth,
            max_imps=args.max_imps,
            max_string_bytes=args.max_string_bytes,
        )
    )
    checked = failed = 0
    unreadable = False
    for where, body in _requests(args.files, force_lines=args.lines):
        if body is None:
            unreadable = True
            continue
        checked += 1
        try:
            request_parser.validate(body)
        except InvalidRequestError as err:
            failed += 1
            print(f"{where}: ERROR {err}", file=out)
        else:
            if not args.quiet:
                print(f"{where}: OK", file=out)
    print(f"{checked} checked, {checked - failed} OK, {failed} failed", file=sys.stderr)
    if unreadable:
        return 2
    return 1 if failed else 0


def _requests(files: Sequence[str], *, force_lines: bool) -> Iterator[tuple[str, bytes | None]]:
    """``(location, body)`` for every request in the files, in order; ``(file, None)`` (after
    saying why on stderr) for a file that cannot be read."""
    for name in files:
        try:
            data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        except OSError as err:
            print(f"bidcore validate: {name}: {err.strerror or err}", file=sys.stderr)
            yield name, None
            continue
        if name == "-" or force_lines or Path(name).suffix in _LINE_SUFFIXES:
            for number, line in enumerate(data.splitlines(), start=1):
                if line.strip():
                    yield f"{name}:{number}", line
        else:
            yield name, data


if __name__ == "__main__":
    sys.exit(main())

"""Entry point of the ``sturdysearch`` command.

Each subcommand lives in its own module exposing ``register(subparsers)``; that function adds
its parser and sets ``func`` to a callable taking the parsed namespace and returning an exit
code. One error boundary here turns expected failures into one actionable line.

Nothing imported here needs an optional extra: a command that can use rich (the ``cli``
extra) imports it when it runs and falls back to plain output without it, so the console
script works from a bare ``pip install sturdysearch``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sturdysearch import __version__
from sturdysearch.cli import bulk_cmd, cluster_cmd, demo_cmd, doctor_cmd, lint_cmd
from sturdysearch.cli.errors import CliError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

DESCRIPTION = """\
A client for Elasticsearch and OpenSearch that is hard to use wrong.

Start with `sturdysearch demo`; `sturdysearch COMMAND --help` explains each command.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sturdysearch",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sturdysearch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (bulk_cmd, cluster_cmd, demo_cmd, doctor_cmd, lint_cmd):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except CliError as exc:
        print(f"sturdysearch {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

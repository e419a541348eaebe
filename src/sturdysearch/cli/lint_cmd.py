"""`sturdysearch lint PATH...`: the seed's pitfalls found in Python and Go code.

Exit codes follow ruff: 0 when clean, 1 when there are findings, 2 on usage errors (a path that
does not exist, an unknown rule code, Go files without the ``lint`` extra).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "lint",
        help="find the classic search-client mistakes in Python and Go code",
        description=(
            "Check Python (elasticsearch-py, opensearch-py, elastic-transport, sturdysearch) "
            "and Go (go-elasticsearch, opensearch-go, olivere/elastic) code for the seed's "
            "pitfalls. Suppress a finding with '# noqa: CODE' or '//nolint:CODE' on its line."
        ),
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or directories")
    parser.add_argument(
        "--format", choices=("text", "json", "sarif"), default="text", help="output format"
    )
    parser.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="CODES",
        help="only these codes or prefixes, comma-separated (e.g. SSP1,SSG201)",
    )
    parser.add_argument(
        "--ignore", action="append", default=[], metavar="CODES", help="skip these codes"
    )
    parser.add_argument(
        "--exclude", action="append", default=[], metavar="GLOB", help="skip matching paths"
    )
    parser.add_argument("--list-rules", action="store_true", help="print the rules and exit")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sturdysearch import __version__
    from sturdysearch.lint import RULES, LintUsageError, lint_paths, resolve_codes
    from sturdysearch.lint.output import as_json, as_sarif, as_text

    if args.list_rules:
        for rule in RULES:
            related = f" [{', '.join(rule.related)}]" if rule.related else ""
            print(f"{rule.code} {rule.name} (pitfall {rule.pitfall}){related}: {rule.summary}")
        return EXIT_CLEAN
    if not args.paths:
        print("sturdysearch lint: name at least one PATH", file=sys.stderr)
        return EXIT_USAGE
    try:
        select = resolve_codes(args.select) if args.select else None
        ignore = resolve_codes(args.ignore) if args.ignore else None
        result = lint_paths(args.paths, select=select, ignore=ignore, exclude=args.exclude)
    except (ValueError, LintUsageError) as exc:
        print(f"sturdysearch lint: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for note in result.skipped:
        print(f"sturdysearch lint: warning: {note}", file=sys.stderr)
    if args.format == "json":
        sys.stdout.write(as_json(result.findings))
    elif args.format == "sarif":
        sys.stdout.write(as_sarif(result.findings, __version__))
    else:
        sys.stdout.write(as_text(result.findings))
    return EXIT_FINDINGS if result.findings else EXIT_CLEAN

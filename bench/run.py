"""Runs the benchmarks and prints their tables: what `make bench` calls.

    python bench/run.py [--calls N] [--rounds R] [--warmup W] [--pin same|split|none]
                         [--retry-budget SECONDS] [--time-limit SECONDS] [--json FILE|-]

Benchmarks (each compares sturdysearch against its peers within the same run):

* seq_search: sequential `search` calls against a canned nginx answer (bench/seq_search.py).
* async_search: 32 concurrent asyncio tasks against the same answer (bench/async_search.py;
  `--async-seconds 0` skips it).

bench/bulk_load.py (about 20 minutes, a real OpenSearch node) is run on its own.

Exit status: 0 when every contender that could run ran; 1 when a contender failed (the peers
and the `raw` floor failing aborts the run with a traceback instead, since that means the
harness itself is broken). sturdysearch not being importable is not a failure.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import async_search
import seq_search


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--calls",
        type=int,
        default=seq_search.DEFAULT_CALLS,
        help=f"timed calls per round ({seq_search.DEFAULT_CALLS})",
    )
    ap.add_argument("--rounds", type=int, default=5, help="rounds per contender (5)")
    ap.add_argument("--warmup", type=int, default=1_000, help="checked warm-up calls (1000)")
    ap.add_argument(
        "--pin",
        choices=seq_search.PIN_MODES,
        default="same",
        help="CPU placement of client and nginx (same: one shared CPU; see seq_search.py)",
    )
    ap.add_argument(
        "--retry-budget",
        type=float,
        default=seq_search.DEFAULT_RETRY_BUDGET,
        metavar="SECONDS",
        help="time allowed for redoing runs disturbed by other processes "
        f"({seq_search.DEFAULT_RETRY_BUDGET:.0f})",
    )
    ap.add_argument(
        "--time-limit",
        type=float,
        default=seq_search.DEFAULT_TIME_LIMIT,
        metavar="SECONDS",
        help="seq_search skips rounds beyond 3 that would end later than this "
        f"({seq_search.DEFAULT_TIME_LIMIT:.0f})",
    )
    ap.add_argument(
        "--async-seconds",
        type=float,
        default=5.0,
        help="async_search: timed seconds per contender per round, 0 skips it (5)",
    )
    ap.add_argument("--json", metavar="FILE", help="also write all results as JSON ('-': stdout)")
    args = ap.parse_args(argv)
    seq_search.exit_on_sigterm()

    print(
        f"sturdysearch benchmarks: Python {platform.python_version()} on {platform.machine()}, "
        f"{len(seq_search.usable_cpus()) or '?'} usable CPUs",
        flush=True,
    )
    started = time.monotonic()
    results: dict[str, Any] = {}

    print(f"\n== seq_search ({args.calls:,} calls x {args.rounds} rounds)", flush=True)
    results["seq_search"] = seq_search.run(
        calls=args.calls,
        rounds=args.rounds,
        warmup=args.warmup,
        pin=args.pin,
        retry_budget=args.retry_budget,
        time_limit=args.time_limit,
    )

    if args.async_seconds > 0:
        print(f"\n== async_search ({args.async_seconds:g} s x 3 rounds)", flush=True)
        results["async_search"] = async_search.run(seconds=args.async_seconds, rounds=3)

    print(f"\n{'=' * 100}")
    for name, rep in results.items():
        print(
            async_search.format_table(rep)
            if name == "async_search"
            else seq_search.format_table(rep)
        )
        print()
    print(f"total {time.monotonic() - started:.0f}s")

    if args.json:
        text = orjson.dumps(results, option=orjson.OPT_INDENT_2).decode()
        if args.json == "-":
            print(text)
        else:
            out = Path(args.json)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text + "\n")
    failed = [
        f"{bench}/{name}"
        for bench, rep in results.items()
        for name, e in rep["contenders"].items()
        if e.get("status") == "failed"
    ]
    if failed:
        print(f"FAILED contenders: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

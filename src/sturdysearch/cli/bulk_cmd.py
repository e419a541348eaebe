"""``sturdysearch bulk-load FILE.jsonl`` and ``sturdysearch replay DLQ.jsonl``.

``bulk-load`` streams a JSON-lines file (``-`` for stdin) through a :class:`BulkIndexer`, with a
progress bar on a terminal; a line that is not a JSON object is dead-lettered, never fatal.
``replay`` sends a dead-letter file again and writes what still fails to a new one.

Both print one summary line and exit 0 when every document was indexed, 3 when some were
dead-lettered (the file named in the summary holds them), 1 on a failure that stopped the run.
The cluster comes from ``--url`` (repeatable) or ``$STURDYSEARCH_URL`` (comma-separated);
credentials from ``--api-key``/``$STURDYSEARCH_API_KEY`` or
``--user``/``$STURDYSEARCH_USER`` (``name:password``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from sturdysearch.cli.errors import CliError

EXIT_OK = 0
EXIT_DEAD_LETTERED = 3
URL_ENV = "STURDYSEARCH_URL"
API_KEY_ENV = "STURDYSEARCH_API_KEY"
USER_ENV = "STURDYSEARCH_USER"


@dataclass(frozen=True)
class Settings:
    """What a run needs, resolved from flags and environment."""

    urls: list[str]
    api_key: str | None = None
    basic_auth: tuple[str, str] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    """BulkIndexer options (workers, batch sizes...)."""
    progress: bool = True


def register(sub: Any) -> None:
    load: argparse.ArgumentParser = sub.add_parser(
        "bulk-load",
        help="index a JSON-lines file, with retries and a dead-letter file",
        description="Index every line of a JSON-lines file (one document per line; - reads "
        "stdin). Lines that fail go to a dead-letter file; replay it with `sturdysearch replay`.",
    )
    load.add_argument("file", help="JSON-lines file, or - for stdin")
    load.add_argument("--index", required=True, help="target index (or alias, data stream)")
    load.add_argument(
        "--id-field", help="take each document's id from this field (makes retries safe)"
    )
    load.add_argument(
        "--op",
        choices=("index", "create"),
        default="index",
        help="index (overwrite) or create (fail on existing ids); default index",
    )
    _common(load)
    load.set_defaults(func=run_load)

    replay = sub.add_parser(
        "replay",
        help="send a dead-letter file again; what still fails goes to a new one",
        description="Send the actions of a dead-letter file again, each to the index it names. "
        "What still fails is written to a new dead-letter file; the old one is left alone.",
    )
    replay.add_argument("file", help="dead-letter file written by bulk-load or BulkIndexer")
    replay.add_argument(
        "--skip-unknown",
        action="store_true",
        help="do not resend actions whose outcome was unknown (they may have been applied)",
    )
    _common(replay)
    replay.set_defaults(func=run_replay)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", action="append", default=[], help=f"node URL, repeatable (env {URL_ENV})"
    )
    parser.add_argument("--api-key", help=f"API key (env {API_KEY_ENV})")
    parser.add_argument("--user", help=f"basic auth as name:password (env {USER_ENV})")
    parser.add_argument("--dead-letter", help="dead-letter file to write (default: generated)")
    parser.add_argument("--workers", type=int, help="concurrent requests")
    parser.add_argument("--batch-mb", type=float, help="batch size in MiB")
    parser.add_argument("--batch-actions", type=int, help="batch size in actions")
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar (also when not a terminal)"
    )


def settings_from(args: argparse.Namespace, env: dict[str, str] | None = None) -> Settings:
    """Flags first, then the environment; raises ``CliError`` with what to pass."""
    env = dict(os.environ) if env is None else env
    urls = list(args.url) or [u.strip() for u in env.get(URL_ENV, "").split(",") if u.strip()]
    if not urls:
        raise CliError(f"no cluster given: pass --url http://host:9200 or set {URL_ENV}")
    user = args.user or env.get(USER_ENV)
    basic_auth = None
    if user:
        name, sep, password = user.partition(":")
        if not sep:
            raise CliError("--user must be name:password")
        basic_auth = (name, password)
    options: dict[str, Any] = {}
    if args.workers is not None:
        options["workers"] = args.workers
    if args.batch_mb is not None:
        options["max_bytes"] = int(args.batch_mb * 1024 * 1024)
    if args.batch_actions is not None:
        options["max_actions"] = args.batch_actions
    if args.dead_letter:
        options["dead_letter"] = args.dead_letter
    return Settings(
        urls=urls,
        api_key=args.api_key or env.get(API_KEY_ENV),
        basic_auth=basic_auth,
        options=options,
        progress=not args.no_progress and sys.stderr.isatty(),
    )


def _client(settings: Settings) -> Any:
    from sturdysearch import Client

    auth: dict[str, Any] = {}
    if settings.api_key:
        auth["api_key"] = settings.api_key
    if settings.basic_auth:
        auth["basic_auth"] = settings.basic_auth
    return Client(settings.urls, **auth)


def _lines(stream: IO[bytes], on_bytes: Callable[[int], None]) -> Iterator[bytes]:
    for line in stream:
        on_bytes(len(line))
        if line.strip():
            yield line


def run_load(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    try:
        stream: IO[bytes] = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from None
    size = None if args.file == "-" else os.fstat(stream.fileno()).st_size
    with stream:
        return load(settings, stream, args.index, args.id_field, args.op, size)


def load(
    settings: Settings,
    stream: IO[bytes],
    index: str,
    id_field: str | None,
    op: str,
    size: int | None,
) -> int:
    """Index every line of ``stream``; returns the exit code."""
    from sturdysearch import BulkIndexer
    from sturdysearch.errors import DeadLetterError, SturdySearchError

    started = time.monotonic()
    options = dict(settings.options)
    with _progress(settings.progress, size, "loading") as bar:
        try:
            with (
                _client(settings) as client,
                BulkIndexer(client, index, on_progress=bar.stats, **options) as bulk,
            ):
                add = bulk.index if op == "index" else bulk.create
                for line in _lines(stream, bar.advance):
                    document: Any = line
                    doc_id = None
                    if id_field is not None:
                        try:
                            document = orjson.loads(line)
                            doc_id = document.get(id_field) if isinstance(document, dict) else None
                        except orjson.JSONDecodeError:
                            document = line  # dead-lettered as unserializable, with the reason
                    add(document, doc_id)
        except DeadLetterError as exc:
            raise CliError(f"{exc}") from None
        except (SturdySearchError, OSError) as exc:
            raise CliError(f"stopped: {exc}") from None
    return _summary(bulk.stats, bulk.dead_letter_path, time.monotonic() - started)


def run_replay(args: argparse.Namespace) -> int:
    from sturdysearch import BulkConfig, replay_dead_letters
    from sturdysearch.errors import SturdySearchError

    settings = settings_from(args)
    if not os.path.exists(args.file):
        raise CliError(f"no such dead-letter file: {args.file}")
    options = dict(settings.options)
    dead_letter = options.pop("dead_letter", None)
    if dead_letter is None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        dead_letter = f"{args.file}.replay-{stamp}.jsonl"
    started = time.monotonic()
    size = os.path.getsize(args.file)
    with _progress(settings.progress, size, "replaying") as bar:
        try:
            with _client(settings) as client:
                stats = replay_dead_letters(
                    client,
                    args.file,
                    dead_letter=dead_letter,
                    skip_outcomes={"unknown"} if args.skip_unknown else (),
                    on_progress=bar.stats,
                    config=BulkConfig(**options),
                )
        except (SturdySearchError, OSError) as exc:
            raise CliError(f"stopped: {exc}") from None
    return _summary(stats, dead_letter, time.monotonic() - started)


def _summary(stats: Any, dead_letter_path: str, seconds: float) -> int:
    rate = stats.succeeded / seconds if seconds > 0 else 0.0
    line = (
        f"indexed {stats.succeeded} of {stats.added} in {seconds:.1f} s ({rate:,.0f}/s), "
        f"{stats.retried} retried"
    )
    if stats.dead_lettered:
        print(f"{line}; {stats.dead_lettered} dead-lettered in {dead_letter_path}")
        return EXIT_DEAD_LETTERED
    print(f"{line}; nothing dead-lettered")
    return EXIT_OK


class _Bar:
    """The progress display: bytes of input read, and the indexer's counters."""

    def __init__(self, progress: Any, task: Any) -> None:
        self._progress = progress
        self._task = task

    def advance(self, nbytes: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, nbytes)

    def stats(self, stats: Any) -> None:
        if self._progress is not None:
            self._progress.update(
                self._task,
                added=stats.added,
                succeeded=stats.succeeded,
                dead=stats.dead_lettered,
                retried=stats.retried,
            )


def _progress(enabled: bool, total: int | None, what: str) -> AbstractContextManager[_Bar]:
    if not enabled:
        return nullcontext(_Bar(None, None))
    from contextlib import contextmanager

    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    @contextmanager
    def run() -> Iterator[_Bar]:
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn(
                "{task.fields[succeeded]:,} indexed, {task.fields[dead]:,} dead-lettered, "
                "{task.fields[retried]:,} retried"
            ),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, transient=False) as progress:
            task = progress.add_task(what, total=total, added=0, succeeded=0, dead=0, retried=0)
            yield _Bar(progress, task)

    return run()

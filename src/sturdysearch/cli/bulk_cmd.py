"""``sturdysearch bulk-load FILE`` and ``sturdysearch replay DLQ.jsonl``.

``bulk-load`` streams a file (JSON lines, a JSON array or CSV, gzipped or not; ``-`` for
stdin, see ``inputs``) through a :class:`BulkIndexer`, with a progress display on stderr; a
record that is not a JSON object is dead-lettered, never fatal. ``replay`` sends a dead-letter
file again and writes what still fails to a new one.

Both print one summary line on stdout and exit with one of :data:`EXIT_CODES`. Ctrl-C is
handled so that the summary stays true: the first stops reading and lets the indexer finish
what it holds, the second aborts (``sigint``); either way the summary says which input line to
resume from with ``--skip-lines``. The cluster comes from ``--url`` (repeatable) or
``$STURDYSEARCH_URL`` (comma-separated); credentials from ``--api-key``/``$STURDYSEARCH_API_KEY``
or ``--user``/``$STURDYSEARCH_USER`` (``name:password``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from sturdysearch.cli.display import Display, display_for
from sturdysearch.cli.errors import CliError
from sturdysearch.cli.inputs import FORMATS, InputError, Source, StopReading, Unusable, Watch
from sturdysearch.cli.sigint import Interrupts

if TYPE_CHECKING:
    from sturdysearch import BulkIndexer

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_DEAD_LETTERED = 3
EXIT_INTERRUPTED = 130
URL_ENV = "STURDYSEARCH_URL"
API_KEY_ENV = "STURDYSEARCH_API_KEY"
USER_ENV = "STURDYSEARCH_USER"
SHOWN_EVENTS = frozenset(
    {"bulk.unanswered", "node.ejected", "node.readmitted", "retry.budget_exhausted"}
)
"""Client events a run shows on stderr as they happen (the library only logs them, and the
command line configures no logging): a cluster that stopped answering, and why the load
slows down. Dead letters and the stop itself are in the summary."""
SHOWN_REFUSALS = 10
"""Input records that cannot become a request that are named one by one on stderr (all of
them are dead-lettered as ``invalid``)."""

EXIT_CODES = """\
exit codes:
  0    every document was indexed
  3    some were dead-lettered (the summary names the file)
  1    a failure stopped the run (the summary says how far it got)
  2    usage error
  130  interrupted by Ctrl-C (the summary says where to resume)
"""

LOAD_DESCRIPTION = """\
Index every record of FILE: JSON lines (one document per line), a JSON
array, or CSV with a header (values as strings); gzipped or not (seen from
the content); - reads stdin. Documents that fail go to a dead-letter file:
send it again with `sturdysearch replay`.

Ctrl-C stops reading and finishes the documents already read, then prints
the summary and the line to resume from (--skip-lines). A second Ctrl-C
aborts: what was not sent yet is dead-lettered.
"""

REPLAY_DESCRIPTION = """\
Send the actions of a dead-letter file again, each to the index it names.
What still fails is written to a new dead-letter file; the old one is left
alone.
"""


@dataclass(frozen=True)
class Settings:
    """What a run needs, resolved from flags and environment."""

    urls: list[str]
    api_key: str | None = None
    basic_auth: tuple[str, str] | None = None
    ca_certs: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    """BulkIndexer options (workers, batch sizes...)."""
    progress: bool = True


def register(sub: Any) -> None:
    load: argparse.ArgumentParser = sub.add_parser(
        "bulk-load",
        help="index a JSON-lines, JSON or CSV file, with retries and a dead-letter file",
        description=LOAD_DESCRIPTION,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    load.add_argument("file", help="input file (.gz too), or - for stdin")
    load.add_argument("--index", required=True, help="target index (or alias, data stream)")
    load.add_argument(
        "--format",
        choices=FORMATS,
        default="auto",
        help="input format; auto: .csv is CSV, a file starting with [ a JSON array, else JSON "
        "lines (default auto)",
    )
    load.add_argument(
        "--id-field",
        metavar="FIELD",
        help="take each document's id from this field (makes retries safe)",
    )
    load.add_argument(
        "--op",
        choices=("index", "create", "update"),
        default="index",
        help="index (overwrite), create (fail on existing ids) or update (merge each record "
        "into the document with its --id-field id); default index",
    )
    load.add_argument(
        "--skip-lines",
        type=int,
        default=0,
        metavar="N",
        help="skip the first N input lines (JSON array: elements), to resume where an "
        "interrupted run stopped",
    )
    _common(load)
    load.set_defaults(func=run_load, parser=load)

    replay = sub.add_parser(
        "replay",
        help="send a dead-letter file again; what still fails goes to a new one",
        description=REPLAY_DESCRIPTION,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay.add_argument("file", help="dead-letter file written by bulk-load or BulkIndexer")
    replay.add_argument(
        "--skip-unknown",
        action="store_true",
        help="do not resend actions whose outcome was unknown (they may have been applied)",
    )
    _common(replay)
    replay.set_defaults(func=run_replay, parser=replay)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", action="append", default=[], help=f"node URL, repeatable (env {URL_ENV})"
    )
    parser.add_argument("--api-key", metavar="KEY", help=f"API key (env {API_KEY_ENV})")
    parser.add_argument(
        "--user", metavar="NAME:PASSWORD", help=f"basic auth as name:password (env {USER_ENV})"
    )
    parser.add_argument(
        "--dead-letter", metavar="FILE", help="dead-letter file to write (default: generated)"
    )
    parser.add_argument("--workers", type=int, metavar="N", help="concurrent requests")
    parser.add_argument("--batch-mb", type=float, metavar="MIB", help="batch size in MiB")
    parser.add_argument("--batch-actions", type=int, metavar="N", help="batch size in actions")
    parser.add_argument(
        "--abort-after",
        type=float,
        metavar="SECONDS",
        help="stop the run when no node has answered for this long (default 60; a shorter "
        "outage only delays the load)",
    )
    parser.add_argument(
        "--ca-certs", metavar="FILE", help="CA bundle (PEM) to verify the cluster's certificate"
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress display (without a terminal it is a plain line every 10 s)",
    )


def settings_from(args: argparse.Namespace, env: dict[str, str] | None = None) -> Settings:
    """Flags first, then the environment; raises ``CliError`` with what to pass. ``args`` may
    lack the indexer flags (``doctor`` and ``demo`` pass only the connection ones)."""
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

    def flag(name: str) -> Any:
        return getattr(args, name, None)

    options: dict[str, Any] = {}
    if flag("workers") is not None:
        options["workers"] = flag("workers")
    if flag("batch_mb") is not None:
        options["max_bytes"] = int(flag("batch_mb") * 1024 * 1024)
    if flag("batch_actions") is not None:
        options["max_actions"] = flag("batch_actions")
    if flag("abort_after") is not None:
        options["abort_after"] = flag("abort_after")
    _check_options(options)
    if flag("dead_letter"):
        options["dead_letter"] = flag("dead_letter")
    ca_certs = flag("ca_certs")
    if ca_certs and not os.path.isfile(ca_certs):
        raise CliError(f"--ca-certs {ca_certs}: no such file")
    return Settings(
        urls=urls,
        api_key=args.api_key or env.get(API_KEY_ENV),
        basic_auth=basic_auth,
        ca_certs=ca_certs,
        options=options,
        progress=not flag("no_progress"),
    )


#: The flag of each indexer option, to name it in an error.
_FLAGS = {
    "workers": "--workers",
    "max_bytes": "--batch-mb",
    "max_actions": "--batch-actions",
    "abort_after": "--abort-after",
}


def _check_options(options: dict[str, Any]) -> None:
    """Refuse values the indexer would refuse, before anything is read or sent, naming the
    flag (the indexer's message names its own keyword)."""
    from sturdysearch import BulkConfig
    from sturdysearch.errors import ConfigError

    for name, value in options.items():
        try:
            BulkConfig(**{name: value})
        except ConfigError as exc:
            raise CliError(f"{_FLAGS.get(name, name)}: {exc}") from None


def cli_words(text: str) -> str:
    """A library message with the flag the command line has for the keyword it names."""
    return text.replace("abort_after= sets", "--abort-after sets").replace(
        "(abort_after)", "(--abort-after)"
    )


def show_events(client: Any, display: Display) -> None:
    """Print the :data:`SHOWN_EVENTS` of ``client`` through ``display`` (above the bar)."""
    from sturdysearch._core.events import Event, describe

    def shown(event: Event) -> None:
        if event.name in SHOWN_EVENTS:
            display.note(cli_words(describe(event)))

    client.tracer.subscribe(shown)


def _client(settings: Settings) -> Any:
    from sturdysearch import Client
    from sturdysearch.errors import ConfigError

    auth: dict[str, Any] = {}
    if settings.api_key:
        auth["api_key"] = settings.api_key
    if settings.basic_auth:
        auth["basic_auth"] = settings.basic_auth
    if settings.ca_certs:
        auth["ca_certs"] = settings.ca_certs
    try:
        return Client(settings.urls, **auth)
    except ConfigError as exc:  # a malformed URL, credentials over http...: say how to fix it
        raise CliError(str(exc)) from None


# -- bulk-load -------------------------------------------------------------------------------


def run_load(args: argparse.Namespace) -> int:
    if args.op == "update" and not args.id_field:
        args.parser.error(
            "--op update needs --id-field: an update merges each record into the document "
            "with that id"
        )
    if args.skip_lines < 0:
        args.parser.error("--skip-lines must be 0 or more")
    settings = settings_from(args)
    from sturdysearch.cli.inputs import open_source

    watch = Watch()
    display: Display | None = None
    early = [0]  # bytes read while sniffing the format, before the display exists

    def advance(nbytes: int) -> None:
        if display is not None:
            display.advance(nbytes)
        else:
            early[0] += nbytes

    try:
        source = open_source(args.file, args.format, on_bytes=advance, watch=watch)
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    except InputError as exc:
        raise CliError(str(exc)) from None
    with source:
        display = display_for("loading", source.size, progress=settings.progress)
        display.read = early[0]
        return load(
            settings,
            source,
            args.index,
            args.id_field,
            args.op,
            skip=args.skip_lines,
            display=display,
            watch=watch,
        )


class _Feeder:
    """Turns input records into indexer calls. Every call says where its record came from
    (``context={"input": FILE, "line": N}``, ``"item"`` for a JSON array), so a dead letter
    can be traced to its input; a record that cannot become a request at all is
    dead-lettered as ``invalid`` (``BulkIndexer.reject``) and named on stderr."""

    def __init__(
        self,
        bulk: BulkIndexer,
        op: str,
        id_field: str | None,
        source: str,
        display: Display,
        unit: str = "line",
    ) -> None:
        self.bulk = bulk
        self.op = op
        self.id_field = id_field
        self.source = source
        self.display = display
        self.refused = 0
        self.unit = unit

    def refuse(self, number: int, record: Any, reason: str, doc_id: Any = None) -> None:
        self.refused += 1
        if self.refused <= SHOWN_REFUSALS:
            self.display.note(f"{self.unit} {number}: not sent (dead-lettered): {reason}")
        if self.refused == SHOWN_REFUSALS:
            self.display.note("(further records that cannot be sent are only counted)")
        self.bulk.reject(record, reason, op=self.op, id=doc_id, context=self.context(number))

    def context(self, number: int) -> dict[str, Any]:
        return {"input": self.source, self.unit: number}

    def add(self, number: int, document: Any) -> None:
        if isinstance(document, Unusable):
            self.refuse(number, document.raw, document.reason)
            return
        raw = document  # as read: what an invalid record's dead letter shows
        id_field = self.id_field
        if isinstance(document, bytes) and (id_field is not None or self.op == "update"):
            try:
                parsed = orjson.loads(document)
            except orjson.JSONDecodeError:
                parsed = None  # dead-lettered as unserializable, with the reason
            if isinstance(parsed, dict):
                document = parsed
        doc_id = None
        if id_field is not None and isinstance(document, dict):
            doc_id = document.get(id_field)
            if doc_id is not None and (
                isinstance(doc_id, bool) or not isinstance(doc_id, (str, int))
            ):
                why = f"{id_field} is {type(doc_id).__name__}, not a string or int"
                self.refuse(number, raw, why)
                return
        if not isinstance(document, (dict, bytes)):  # another JSON value: let the indexer say why
            document = json.dumps(document).encode()
        context = self.context(number)
        if self.op == "update":
            if not isinstance(document, dict):
                self.refuse(number, raw, "not a JSON object, so not a partial document")
            elif doc_id is None:
                why = f"no {id_field} field: an update needs the document's id"
                self.refuse(number, raw, why)
            else:
                self.bulk.update(doc_id, doc=document, context=context)
        elif self.op == "create":
            self.bulk.create(document, doc_id, context=context)
        else:
            self.bulk.index(document, doc_id, context=context)


@dataclass
class _Outcome:
    """How a run ended, for the summary."""

    stats: Any = None
    dead_letter: str = ""
    stopped: str | None = None
    """Why a failure stopped the run (exit 1)."""
    interrupts: int = 0
    last: int = 0
    """The last input record handed to the indexer: where to resume."""
    refused: int = 0
    unit: str = "line"


def load(
    settings: Settings,
    source: Source,
    index: str,
    id_field: str | None,
    op: str,
    *,
    skip: int = 0,
    display: Display | None = None,
    watch: Watch | None = None,
) -> int:
    """Index every record of ``source`` after the first ``skip``; prints the summary and
    returns the exit code."""
    from sturdysearch import BulkIndexer
    from sturdysearch.errors import BulkAbortedError, DeadLetterError, SturdySearchError

    display = display or Display("loading", source.size)
    watch = watch or Watch()
    started = time.monotonic()
    outcome = _Outcome(last=skip, unit="item" if source.format == "json" else "line")
    with display, _client(settings) as client:
        show_events(client, display)
        try:
            bulk = BulkIndexer(client, index, on_progress=display.stats, **settings.options)
        except OSError as exc:
            raise CliError(f"cannot open the dead-letter file: {exc}") from None
        outcome.dead_letter = bulk.dead_letter_path
        feeder = _Feeder(bulk, op, id_field, source.name, display, outcome.unit)
        closing = False
        with Interrupts(watch) as interrupts:
            display.begin(
                f"loading {source.name} into {index} "
                "(Ctrl-C stops reading and finishes; a second Ctrl-C aborts)"
            )
            try:
                try:
                    for number, document in source.records(skip):
                        feeder.add(number, document)
                        outcome.last = number
                        if interrupts.stop_requested:
                            break
                except StopReading:
                    pass
                except InputError as exc:
                    outcome.stopped = f"cannot read further: {exc}"
                if interrupts.stop_requested:
                    display.note(
                        f"finishing {bulk.stats.pending:,} buffered documents; "
                        "Ctrl-C again to abort"
                    )
                closing = True
                bulk.close()
            except KeyboardInterrupt:
                # Wherever the second Ctrl-C landed, also inside close(): abort what is not in
                # flight and finish the shutdown (a close() it interrupted left that undone).
                _abort(bulk)
            except Exception as exc:
                if isinstance(exc, BulkAbortedError):
                    outcome.stopped = cli_words(exc.reason or str(exc))
                elif isinstance(exc, (DeadLetterError, SturdySearchError, OSError)):
                    outcome.stopped = str(exc)
                else:
                    raise
                if not closing:
                    _close_after_failure(bulk)
            outcome.interrupts = interrupts.count
        outcome.stats = bulk.stats
        outcome.refused = feeder.refused
        display.final(outcome.stats)
    return _summary(outcome, time.monotonic() - started)


def _abort(bulk: Any) -> None:
    """The second Ctrl-C, while reading or closing: nothing more is sent, what is buffered is
    dead-lettered as ``aborted``, and the shutdown is finished (workers joined, dead-letter
    file closed) even if the interrupt cut a ``close()`` short."""
    try:
        bulk.abort("interrupted by a second Ctrl-C")
        bulk.close()
    except KeyboardInterrupt:
        pass  # a third Ctrl-C: do not wait for the requests in flight
    except Exception:  # noqa: SSP112 (the stop is reported with the stats that follow)
        pass


def _close_after_failure(bulk: Any) -> None:
    """Close the indexer after the failure that stopped the run: it is reported already, so a
    second report of the same failure from ``close()`` is not wanted."""
    with contextlib.suppress(Exception):  # noqa: SSP112 (the same failure, raised again)
        bulk.close()


# -- replay ----------------------------------------------------------------------------------


def run_replay(args: argparse.Namespace) -> int:
    from sturdysearch import BulkConfig, replay_dead_letters
    from sturdysearch.errors import BulkAbortedError, SturdySearchError

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
    outcome = _Outcome(dead_letter=dead_letter)
    display = display_for("replaying", size, progress=settings.progress)
    last: list[Any] = []

    def progress(stats: Any) -> None:
        last[:] = [stats]
        display.stats(stats)

    with display:
        display.begin(
            f"replaying {args.file} (Ctrl-C finishes what was read; a second Ctrl-C aborts)"
        )
        try:
            with _client(settings) as client:
                show_events(client, display)
                outcome.stats = replay_dead_letters(
                    client,
                    args.file,
                    dead_letter=dead_letter,
                    skip_outcomes={"unknown"} if args.skip_unknown else (),
                    on_progress=progress,
                    config=BulkConfig(**options),
                )
        except KeyboardInterrupt:
            outcome.interrupts = 2
            display.note("interrupted: the counts below are the last the indexer reported")
        except Exception as exc:
            if isinstance(exc, BulkAbortedError):
                outcome.stopped = cli_words(exc.reason or str(exc))
                outcome.stats = exc.stats
                outcome.dead_letter = exc.dead_letter or dead_letter
            elif isinstance(exc, (SturdySearchError, OSError)):
                outcome.stopped = str(exc)
            else:
                raise
        if outcome.stats is None and last:
            outcome.stats = last[0]
        if outcome.stats is not None:
            display.read = size if outcome.interrupts == 0 and outcome.stopped is None else 0
            display.final(outcome.stats)
    if outcome.stats is None:
        if outcome.interrupts:
            print("interrupted before any action was sent", file=sys.stderr)
            return EXIT_INTERRUPTED
        raise CliError(f"stopped: {outcome.stopped}")
    return _summary(outcome, time.monotonic() - started, resumable=False)


# -- the summary -----------------------------------------------------------------------------


def retried_text(stats: Any) -> str:
    """``N requests retried (M documents)``."""
    return f"{stats.retried_requests} requests retried ({stats.retried_documents} documents)"


def _summary(outcome: _Outcome, seconds: float, *, resumable: bool = True) -> int:
    """Print the summary (the stop reason on stderr first) and return the exit code."""
    stats = outcome.stats
    if outcome.stopped is not None:
        print(f"stopped: {outcome.stopped}", file=sys.stderr)
    rate = stats.succeeded / seconds if seconds > 0 else 0.0
    line = (
        f"indexed {stats.succeeded} of {stats.added} in {seconds:.1f} s ({rate:,.0f}/s), "
        f"{retried_text(stats)}"
    )
    if stats.dead_lettered:
        line += f"; {stats.dead_lettered} dead-lettered in {outcome.dead_letter}"
        if outcome.refused:
            line += f" ({outcome.refused} of them invalid input, never sent)"
    else:
        line += "; nothing dead-lettered"
    if stats.pending:
        line += f"; {stats.pending} without an outcome (in flight when aborted: may be missing)"
    print(line)
    ended_early = outcome.interrupts or outcome.stopped is not None
    if resumable and ended_early:
        how = "interrupted" if outcome.interrupts else "stopped"
        advice = f"resume with --skip-lines {outcome.last}"
        if stats.dead_lettered:
            advice += f" (and replay {outcome.dead_letter})"
        print(f"{how} after input {outcome.unit} {outcome.last}: {advice}")
    if outcome.interrupts:
        return EXIT_INTERRUPTED
    if outcome.stopped is not None:
        return EXIT_FAILURE
    if stats.dead_lettered or stats.pending:
        return EXIT_DEAD_LETTERED
    return EXIT_OK

"""``sturdysearch demo``: what the project is for, end to end, against a real local node.

1. starts a local node (no Docker: the harness fetches the distribution from Maven Central once
   and caches it; later runs start in seconds);
2. bulk-loads a generated sample of a few thousand log lines, some of them broken (a value
   the explicit mapping refuses, a line that is not JSON), and shows that the broken ones end
   in the dead-letter file, with the reason, while the rest is indexed;
3. calls a node that never answers (a fault proxy black-holing every request) with a deadline,
   and shows the call cut at that deadline instead of hanging;
4. runs ``sturdysearch doctor`` against the node and prints its table;
5. stops the node. With ``--url``, steps 2-4 run against that cluster instead.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from sturdysearch import Client
from sturdysearch.cli.errors import CliError

DEFAULT_SERVER = "opensearch:2.19.6"
SAMPLE_SIZE = 3000
DEADLINE = 1.0
"""The deadline of the call against the black-holed node, in seconds."""

DESCRIPTION = """\
Show what sturdysearch is for, against a real local node started for the demo
(no Docker; the first run downloads the distribution, later runs start in
seconds):

  1. bulk-load a generated sample with a few broken lines: those end in the
     dead-letter file, with the reason; the rest is indexed
  2. call a node that never answers with a 1 s deadline: the call ends at 1 s
  3. run `sturdysearch doctor` against the node
  4. stop the node

With --url, steps 1-3 run against that cluster (credentials from
$STURDYSEARCH_API_KEY or $STURDYSEARCH_USER) and nothing is started.
"""

MAPPINGS = {
    "properties": {
        "@timestamp": {"type": "date"},
        "service": {"type": "keyword"},
        "level": {"type": "keyword"},
        "status": {"type": "integer"},
        "latency_ms": {"type": "float"},
        "message": {"type": "text"},
    }
}
_SERVICES = ("checkout", "search", "auth", "catalog", "payments")
_MESSAGES = (
    "order placed",
    "payment gateway timed out",
    "slow query on products index",
    "token refresh failed: upstream timed out",
    "reindex finished",
    "cache warmed",
)


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "demo",
        help="start a local node, bulk-load, cut a hanging call, run doctor, stop the node",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--server",
        default=DEFAULT_SERVER,
        help=f"flavor:version of the node to start (default {DEFAULT_SERVER})",
    )
    parser.add_argument(
        "--url",
        default=None,
        help="use this running cluster instead of starting a node",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.url:
        return _demo([args.url])
    from sturdysearch.testing.cluster import LocalCluster, ServerSpec

    try:
        spec = ServerSpec.parse(args.server)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    print(f"starting a local {spec.flavor} {spec.version} node (the first run downloads it)...")
    started = time.monotonic()
    with LocalCluster(spec, nodes=1) as cluster:
        print(f"node up at {cluster.urls[0]} in {time.monotonic() - started:.1f} s")
        code = _demo(cluster.urls)
        print("stopping the node...")
    print("node stopped")
    return code


def write_sample(path: Path, size: int = SAMPLE_SIZE) -> list[int]:
    """Write ``size`` JSON lines of logs to ``path``; returns the line numbers of the broken
    ones: three with ``status`` a word (the mapping says integer) and one that is not JSON."""
    rng = random.Random(7)
    broken = {size // 4: "status", size // 2: "not-json", 3 * size // 4: "status", size: "status"}
    with open(path, "wb") as out:
        for line in range(1, size + 1):
            if broken.get(line) == "not-json":
                out.write(b'{"service": "auth", "message": "cut off mid-wr\n')
                continue
            doc: dict[str, Any] = {
                "id": f"log-{line}",
                "@timestamp": f"2024-05-01T12:{line // 60 % 60:02d}:{line % 60:02d}Z",
                "service": rng.choice(_SERVICES),
                "level": rng.choice(("info", "info", "info", "warn", "error")),
                "status": rng.choice((200, 200, 200, 404, 500, 503)),
                "latency_ms": round(rng.expovariate(1 / 40), 1),
                "message": rng.choice(_MESSAGES),
            }
            if broken.get(line) == "status":
                doc["status"] = "timeout"
            out.write(orjson.dumps(doc) + b"\n")
    return sorted(broken)


def _demo(urls: list[str]) -> int:
    from sturdysearch.cli.bulk_cmd import Settings, settings_from

    connection = settings_from(
        argparse.Namespace(
            url=urls,
            api_key=None,
            user=None,
            workers=None,
            batch_mb=None,
            batch_actions=None,
            dead_letter=None,
            no_progress=False,
        )
    )
    auth: dict[str, Any] = {}
    if connection.api_key:
        auth["api_key"] = connection.api_key
    if connection.basic_auth:
        auth["basic_auth"] = connection.basic_auth
    index = f"demo-logs-{uuid.uuid4().hex[:8]}"
    problems: list[str] = []
    with Client(urls, timeout=30.0, **auth) as client:
        info = client.info()
        print(f"server: {info.flavor} {info.version} (cluster {info.cluster_name!r})")
        client.indices.create(
            index=index,
            mappings=MAPPINGS,
            settings={"number_of_shards": 1, "number_of_replicas": 0},
        )
        try:
            with tempfile.TemporaryDirectory(prefix="sturdysearch-demo-") as tmp:
                settings = Settings(
                    urls=urls,
                    api_key=connection.api_key,
                    basic_auth=connection.basic_auth,
                    options={"dead_letter": os.path.join(tmp, "dead-letters.jsonl")},
                )
                _bulk_step(client, settings, index, Path(tmp), problems)
            _deadline_step(urls[0], problems)
            _doctor_step(urls, index)
        finally:
            client.indices.delete(index=index, ignore=404)
    if problems:
        for problem in problems:
            print(f"unexpected: {problem}", file=sys.stderr)
        return 1
    print("demo done: every step behaved as expected")
    return 0


def _bulk_step(client: Client, settings: Any, index: str, tmp: Path, problems: list[str]) -> None:
    from sturdysearch.cli.bulk_cmd import EXIT_DEAD_LETTERED, load
    from sturdysearch.cli.display import display_for
    from sturdysearch.cli.inputs import open_source

    sample = tmp / "logs.jsonl"
    broken = write_sample(sample)
    print(f"\n== 1. bulk-load {SAMPLE_SIZE:,} log lines into {index}")
    print(
        f"lines {', '.join(map(str, broken))} are broken: not JSON, or a word in status "
        "(an integer)"
    )
    print(f"$ sturdysearch bulk-load logs.jsonl --index {index} --id-field id")
    display = display_for("loading", sample.stat().st_size, progress=sys.stderr.isatty())
    with open_source(str(sample), on_bytes=display.advance) as source:
        code = load(settings, source, index, "id", "index", display=display)
    dead_letters = Path(settings.options["dead_letter"])
    records = (
        [orjson.loads(line) for line in dead_letters.read_bytes().splitlines()]
        if dead_letters.exists()
        else []
    )
    print(f"exit code {code} (3: some documents dead-lettered); the dead-letter file holds:")
    for record in records:
        document = record.get("document") or {}
        doc_id = document.get("id") if isinstance(document, dict) else None
        reason = str(record.get("reason", ""))
        if len(reason) > 52:
            reason = reason[:49] + "..."
        print(f"  {record['outcome']:<14} {doc_id or '(no id)':<10} {reason}")
    print("fix the mapping or the data, then: sturdysearch replay <dead-letter file>")
    client.indices.refresh(index=index)
    count = client.count(index=index)["count"]
    expected = SAMPLE_SIZE - len(broken)
    print(f"the index holds {count:,} documents")
    if code != EXIT_DEAD_LETTERED or count != expected or len(records) != len(broken):
        problems.append(
            f"bulk-load: exit {code}, {count} indexed, {len(records)} dead-lettered; expected "
            f"exit 3, {expected} indexed, {len(broken)} dead-lettered"
        )


def _deadline_step(url: str, problems: list[str]) -> None:
    from urllib.parse import urlsplit

    from sturdysearch.errors import DeadlineExceeded, SturdySearchError
    from sturdysearch.testing.faults import Fault
    from sturdysearch.testing.proxy import FaultProxy

    print(f"\n== 2. a node that never answers, called with a {DEADLINE:.1f} s deadline")
    split = urlsplit(url)
    # A black hole never forwards, so the upstream is only an address (plain TCP is enough).
    upstream = (split.hostname or "127.0.0.1", split.port or 9200)
    with FaultProxy(upstream) as proxy:
        proxy.set_fault(Fault.blackhole())
        print(f"fault proxy at {proxy.url}: reads every request, answers none")
        print(f"$ Client([{proxy.url!r}], timeout={DEADLINE}).search(...)")
        with Client([proxy.url], timeout=DEADLINE) as hanging:
            started = time.monotonic()
            try:
                hanging.search(index="_all", query={"match_all": {}})
            except DeadlineExceeded as exc:
                elapsed = time.monotonic() - started
                print(f"DeadlineExceeded after {elapsed:.2f} s: {exc}")
                if not DEADLINE <= elapsed < DEADLINE + 0.5:
                    problems.append(f"the call ended after {elapsed:.2f} s, not at the deadline")
            except SturdySearchError as exc:
                problems.append(f"the call raised {type(exc).__name__}, not DeadlineExceeded")
            else:
                problems.append("the black-holed call returned")
    print("(without a deadline, a client waits out its socket timeout on every retry)")


def _doctor_step(urls: list[str], index: str) -> None:
    from sturdysearch.cli.main import build_parser

    print(f"\n== 3. doctor: the connection checklist against {urls[0]}")
    print(f"$ sturdysearch doctor --url {urls[0]} --index {index}")
    argv = ["doctor", "--index", index]
    for url in urls:
        argv += ["--url", url]
    args = build_parser().parse_args(argv)
    sys.stdout.flush()
    code = args.func(args)
    print(f"doctor exit code {code} (0 all ok, 1 warnings, 2 failures, 3 could not check)")

"""One behaviour, both indexers: the threaded ``BulkIndexer`` and the asyncio
``AsyncBulkIndexer`` run the same scenarios against an in-memory client, so that what they share
through ``BulkSession`` (events, hooks, progress, stop conditions, replay) cannot drift apart
again. Each scenario is a coroutine; for the threaded indexer its calls are made directly (they
block in the test's thread, which is all the loop runs)."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from sturdysearch import AsyncBulkIndexer, BulkConfig, BulkIndexer, BulkStats
from sturdysearch._async.bulk import async_bulk_index, async_replay_dead_letters
from sturdysearch._core.events import Event, Tracer
from sturdysearch._core.request import RequestSpec
from sturdysearch._sync.bulk import bulk_index, replay_dead_letters
from sturdysearch.errors import (
    AuthenticationError,
    AuthorizationError,
    BulkAbortedError,
    ConfigError,
    ConnectionError,
    SturdySearchError,
)
from sturdysearch.testing.loops import run_clean

KINDS = ["sync", "async"]


class FakeResponse:
    def __init__(self, body: Any) -> None:
        self.body = body


def answer(spec: RequestSpec) -> FakeResponse:
    """Every action created, except documents (or partial ``doc`` updates) with
    ``"reject": true`` (a mapping error)."""
    assert spec.body is not None
    lines = spec.body.split(b"\n")[:-1]
    items: list[dict[str, Any]] = []
    i = 0
    while i < len(lines):
        op = next(iter(orjson.loads(lines[i])))
        source = lines[i + 1] if op != "delete" else b"{}"
        body = orjson.loads(source)
        if body.get("reject") or (isinstance(body.get("doc"), dict) and body["doc"].get("reject")):
            error = {"type": "document_parsing_exception", "reason": "bad field"}
            items.append({op: {"status": 400, "error": error}})
        else:
            items.append({op: {"status": 201, "result": "created"}})
        i += 1 if op == "delete" else 2
    return FakeResponse({"errors": True, "items": items})


class FakeClient:
    def __init__(self) -> None:
        self.tracer = Tracer()
        self.bodies: list[bytes] = []

    def perform(self, spec: RequestSpec) -> FakeResponse:
        if spec.on_send is not None:
            spec.on_send()
        assert spec.body is not None
        self.bodies.append(spec.body)
        return answer(spec)


class FakeAsyncClient(FakeClient):
    async def perform(self, spec: RequestSpec) -> FakeResponse:  # type: ignore[override]
        await asyncio.sleep(0)
        return FakeClient.perform(self, spec)


class Side:
    """An indexer whose every method can be awaited, whichever driver it is."""

    def __init__(self, bulk: Any) -> None:
        self.bulk = bulk

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.bulk, name)
        if not callable(attr):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result

        return call


Scenario = Callable[[Side, FakeClient], Awaitable[Any]]


def run(kind: str, scenario: Scenario, **options: Any) -> tuple[Any, list[Event]]:
    """Run ``scenario`` against a fresh indexer of ``kind``; return its result and every
    event the client's tracer emitted."""
    client: FakeClient = FakeClient() if kind == "sync" else FakeAsyncClient()
    events: list[Event] = []
    client.tracer.subscribe(events.append)
    options.setdefault("flush_interval", 0.05)

    async def main() -> Any:
        if kind == "sync":
            bulk: Any = BulkIndexer(client, "i", **options)  # type: ignore[arg-type]
        else:
            bulk = AsyncBulkIndexer(client, "i", **options)  # type: ignore[arg-type]
            await bulk.start()
        side = Side(bulk)
        try:
            return await scenario(side, client)
        finally:
            await side.close()

    return run_clean(main), events


def named(events: list[Event], name: str) -> list[dict[str, Any]]:
    return [e.fields for e in events if e.name == name]


@pytest.mark.parametrize("kind", KINDS)
def test_dead_letters_are_announced_and_counted_in_progress(kind: str, tmp_path: Path) -> None:
    progress: list[BulkStats] = []
    failures: list[Any] = []

    async def scenario(side: Side, client: FakeClient) -> BulkStats:
        await side.index({"n": 1}, id="1")
        await side.index({"reject": True}, id="2")
        await side.index({"n": float("nan")}, id="3")  # unserializable, never sent
        return await side.flush()  # type: ignore[no-any-return]

    stats, events = run(
        kind,
        scenario,
        dead_letter=tmp_path / "d.jsonl",
        on_progress=progress.append,
        on_failure=failures.append,
    )
    assert (stats.succeeded, stats.dead_lettered, stats.pending) == (1, 2, 0)
    assert sorted((f.outcome, f.error_type) for f in failures) == [
        ("rejected", "document_parsing_exception"),
        ("unserializable", "SerializationError"),
    ]
    announced = named(events, "bulk.dead_letter")
    assert sum(e["count"] for e in announced) == 2
    assert all(e["written"] for e in announced)
    outcomes: dict[str, int] = {}
    for e in announced:
        for outcome, n in e["outcomes"].items():
            outcomes[outcome] = outcomes.get(outcome, 0) + n
    assert outcomes == {"rejected": 1, "unserializable": 1}
    # on_progress follows the dead letters too, not only requests: its last call saw both.
    assert progress and progress[-1].dead_lettered == 2
    assert named(events, "bulk.dead_letter_summary")


@pytest.mark.parametrize("kind", KINDS)
def test_closing_reports_the_load(kind: str, tmp_path: Path) -> None:
    async def scenario(side: Side, client: FakeClient) -> None:
        for n in range(10):
            await side.index({"n": n}, id=str(n))

    _, events = run(kind, scenario, dead_letter=tmp_path / "d.jsonl")
    (closed,) = named(events, "bulk.closed")
    assert closed["seconds"] >= 0
    assert closed["added"] == closed["succeeded"] == 10
    assert named(events, "bulk.batch")


@pytest.mark.parametrize("kind", KINDS)
def test_every_action_kind_and_its_dead_letter(kind: str, tmp_path: Path) -> None:
    async def scenario(side: Side, client: FakeClient) -> BulkStats:
        await side.create({"n": 1}, id="c")
        await side.create({"n": float("inf")}, id="bad-create")
        await side.update("u", doc={"n": 2})
        await side.update("bad-update", doc={"n": float("nan")})
        await side.delete("d")
        await side.add_many([{"id": "m1"}, {"id": "m2"}], id_field="id")
        await side.add_raw("index", {"_index": "i", "_id": "r"}, b'{"raw": true}')
        await side.add_raw("index", {"_index": "i", "_id": "bad-raw"}, b"[1]")
        return await side.flush()  # type: ignore[no-any-return]

    stats, _ = run(kind, scenario, dead_letter=tmp_path / "d.jsonl")
    assert (stats.added, stats.succeeded, stats.dead_lettered) == (9, 6, 3)
    records = [orjson.loads(x) for x in (tmp_path / "d.jsonl").read_bytes().splitlines()]
    assert {r["outcome"] for r in records} == {"unserializable"}
    ids = sorted(next(iter(r["action"].values()))["_id"] for r in records)
    assert ids == ["bad-create", "bad-raw", "bad-update"]


@pytest.mark.parametrize("kind", KINDS)
def test_adding_after_close_names_the_indexer(kind: str, tmp_path: Path) -> None:
    async def scenario(side: Side, client: FakeClient) -> None:
        await side.close()
        with pytest.raises(RuntimeError, match=f"this {type(side.bulk).__name__} is closed"):
            await side.index({"n": 1}, id="1")

    run(kind, scenario, dead_letter=tmp_path / "d.jsonl")


@pytest.mark.parametrize("kind", KINDS)
def test_add_many_checks_its_arguments(kind: str, tmp_path: Path) -> None:
    async def scenario(side: Side, client: FakeClient) -> None:
        with pytest.raises(ValueError, match="op='create' needs id_field"):
            await side.add_many([{"n": 1}], op="create")
        with pytest.raises(ValueError, match="not 'delete'"):
            await side.add_many([{"n": 1}], op="delete")

    run(kind, scenario, dead_letter=tmp_path / "d.jsonl")


@pytest.mark.parametrize("cls", [BulkIndexer, AsyncBulkIndexer])
def test_an_unknown_option_names_the_indexer(cls: type, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"{cls.__name__}\(\): unknown option bogus="):
        cls(FakeClient(), "i", dead_letter=tmp_path / "d", bogus=1)


def write_dead_letters(path: Path) -> None:
    good = {
        "action": {"index": {"_index": "i", "_id": "again"}},
        "document": {"n": 1},
        "outcome": "exhausted",
        "reason": "503",
    }
    unknown = {**good, "action": {"index": {"_index": "i"}}, "outcome": "unknown"}
    path.write_bytes(
        orjson.dumps(good) + b"\n" + b"not json\n" + b"\n" + orjson.dumps(unknown) + b"\n"
    )


@pytest.mark.parametrize("kind", KINDS)
def test_replaying_a_dead_letter_file(kind: str, tmp_path: Path) -> None:
    source = tmp_path / "dlq.jsonl"
    write_dead_letters(source)
    target = tmp_path / "replay.jsonl"
    client: FakeClient = FakeClient() if kind == "sync" else FakeAsyncClient()

    async def main() -> BulkStats:
        if kind == "sync":
            return replay_dead_letters(
                client,  # type: ignore[arg-type]
                source,
                dead_letter=target,
                skip_outcomes={"unknown"},
            )
        return await async_replay_dead_letters(
            client,  # type: ignore[arg-type]
            source,
            dead_letter=target,
            skip_outcomes={"unknown"},
        )

    stats = run_clean(main)
    assert (stats.added, stats.succeeded, stats.dead_lettered) == (3, 1, 2)
    assert b'"again"' in b"".join(client.bodies)
    carried = [orjson.loads(x) for x in target.read_bytes().splitlines()]
    reasons = sorted(r["reason"].split(":")[0] for r in carried)
    assert reasons == ["line 2 of " + str(source) + " cannot be replayed", "skipped"]
    with pytest.raises(ConfigError, match="must not be the file being replayed"):
        replay_dead_letters(client, source, dead_letter=source)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", KINDS)
def test_the_one_call_loaders(kind: str, tmp_path: Path) -> None:
    client: FakeClient = FakeClient() if kind == "sync" else FakeAsyncClient()
    docs = [{"id": str(n), "n": n} for n in range(25)]

    async def main() -> BulkStats:
        if kind == "sync":
            return bulk_index(client, docs, "i", id_field="id", dead_letter=tmp_path / "d")  # type: ignore[arg-type]
        return await async_bulk_index(client, docs, "i", id_field="id", dead_letter=tmp_path / "d")  # type: ignore[arg-type]

    stats = run_clean(main)
    assert (stats.added, stats.succeeded, stats.pending) == (25, 25, 0)


@pytest.mark.parametrize("kind", KINDS)
def test_the_timer_has_the_same_name_in_both(kind: str, tmp_path: Path) -> None:
    """What a thread dump or ``asyncio.all_tasks()`` shows of an indexer."""

    async def scenario(side: Side, client: FakeClient) -> list[str]:
        if kind == "sync":
            return [t.name for t in side.bulk._threads]
        return [t.get_name() for t in side.bulk._tasks]

    names, _ = run(kind, scenario, dead_letter=tmp_path / "d.jsonl", workers=2)
    assert names == ["sturdysearch-bulk-0", "sturdysearch-bulk-1", "sturdysearch-bulk-timer"]


def test_help_shows_each_indexers_client_and_every_option() -> None:
    sync, asyncio_ = inspect.signature(BulkIndexer), inspect.signature(AsyncBulkIndexer)
    assert sync.parameters["client"].annotation == "Client"
    assert asyncio_.parameters["client"].annotation == "AsyncClient"
    assert list(sync.parameters) == list(asyncio_.parameters)
    assert {"max_actions", "workers", "delivery_timeout", "dead_letter"} <= set(sync.parameters)


CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="none")


@pytest.mark.parametrize("kind", KINDS)
def test_requests_run_in_the_context_the_indexer_was_made_in(kind: str, tmp_path: Path) -> None:
    """A trace span (any context variable) current where the indexer was created is current
    in its senders too, threads as tasks: batch spans get the caller's span as parent."""
    seen: list[str] = []

    async def scenario(side: Side, client: FakeClient) -> None:
        perform = client.perform

        def recording(spec: RequestSpec) -> Any:
            seen.append(CALLER.get())
            return perform(spec)

        client.perform = recording  # type: ignore[method-assign]
        await side.index({"n": 1}, id="1")
        await side.flush()

    token = CALLER.set("load-job")
    try:
        run(kind, scenario, dead_letter=tmp_path / "d.jsonl")
    finally:
        CALLER.reset(token)
    assert seen and set(seen) == {"load-job"}


# -- a failure every document would meet stops the load ---------------------------------------


class FailingClient(FakeClient):
    """Answers request ``n`` (from 1) with ``fate(n, spec)``: an exception to raise, an item
    error for every item (``{"status": ..., "error": {...}}``), or ``None`` for the usual
    answer."""

    def __init__(self, fate: Callable[[int, RequestSpec], Any]) -> None:
        super().__init__()
        self.fate = fate

    def perform(self, spec: RequestSpec) -> FakeResponse:
        assert spec.body is not None
        self.bodies.append(spec.body)
        outcome = self.fate(len(self.bodies), spec)
        if isinstance(outcome, BaseException):
            raise outcome
        if outcome is None:
            return answer(spec)
        count = sum(1 for line in spec.body.split(b"\n")[:-1] if b'"_id"' in line)
        return FakeResponse({"errors": True, "items": [{"index": outcome}] * count})


class FailingAsyncClient(FailingClient):
    async def perform(self, spec: RequestSpec) -> FakeResponse:  # type: ignore[override]
        await asyncio.sleep(0)
        return FailingClient.perform(self, spec)


def run_aborted(
    kind: str,
    fate: Callable[[int, RequestSpec], Any],
    documents: int,
    tmp_path: Path,
    **options: Any,
) -> tuple[int, BulkAbortedError, BulkAbortedError, FailingClient, list[Event]]:
    """Index up to ``documents`` documents (ids "0".."n-1") until the indexer refuses one;
    returns how many it took, what the adding call and ``close()`` raised, the client and the
    events."""
    client = FailingClient(fate) if kind == "sync" else FailingAsyncClient(fate)
    events: list[Event] = []
    client.tracer.subscribe(events.append)
    options.setdefault("flush_interval", 0.05)

    async def main() -> tuple[int, BulkAbortedError, BulkAbortedError]:
        if kind == "sync":
            bulk: Any = BulkIndexer(client, "logs", dead_letter=tmp_path / "d.jsonl", **options)  # type: ignore[arg-type]
        else:
            bulk = AsyncBulkIndexer(client, "logs", dead_letter=tmp_path / "d.jsonl", **options)  # type: ignore[arg-type]
        side = Side(bulk)
        taken = 0
        with pytest.raises(BulkAbortedError) as adding:
            for n in range(documents):
                await side.index({"n": n}, id=str(n))
                taken += 1
        # Every later call raises the same error at once.
        with pytest.raises(BulkAbortedError) as again:
            await side.index({"n": -1}, id="late")
        assert again.value is adding.value
        with pytest.raises(BulkAbortedError) as closing:
            await side.close()
        return taken, adding.value, closing.value

    taken, adding, closing = run_clean(main)
    return taken, adding, closing, client, events


def dead_letter_records(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "d.jsonl"
    return [orjson.loads(x) for x in path.read_bytes().splitlines()] if path.exists() else []


def check_abort_accounting(error: BulkAbortedError, taken: int, tmp_path: Path) -> None:
    """The error's stats are final and every document taken is accounted for, once: applied,
    or in the dead-letter file."""
    stats = error.stats
    assert isinstance(stats, BulkStats)
    assert stats.added == taken and stats.pending == 0
    assert stats.added == stats.succeeded + stats.dead_lettered
    records = dead_letter_records(tmp_path)
    assert len(records) == stats.dead_lettered
    ids = [r["action"]["index"]["_id"] for r in records]
    assert len(set(ids)) == len(ids)  # nothing twice
    assert error.dead_letter == str(tmp_path / "d.jsonl")


@pytest.mark.parametrize("kind", KINDS)
def test_credentials_refused_stop_the_load_with_one_typed_error(kind: str, tmp_path: Path) -> None:
    refused = AuthenticationError(
        401, error_type="security_exception", reason="unable to authenticate"
    )
    # One worker: with two, a second request may leave before the first answer is read.
    taken, adding, closing, client, events = run_aborted(
        kind, lambda n, spec: refused, 100_000, tmp_path, max_actions=10, workers=1
    )
    assert closing is adding  # one error: raised to the producer, again by close()
    assert adding.cause is refused and adding.__cause__ is refused
    assert "refused the client's credentials (401)" in adding.reason
    assert adding.reason in str(adding) and str(tmp_path / "d.jsonl") in str(adding)
    assert len(client.bodies) == 1  # the first request told: nothing more was sent
    check_abort_accounting(adding, taken, tmp_path)
    assert adding.stats.succeeded == 0
    records = dead_letter_records(tmp_path)
    outcomes = Counter(r["outcome"] for r in records)
    assert outcomes["rejected"] == 10 and set(outcomes) <= {"rejected", "aborted"}
    assert all(
        "refused the client's credentials" in r["reason"]
        for r in records
        if r["outcome"] == "aborted"
    )
    (aborted,) = named(events, "bulk.aborted")
    assert aborted["error"] == "AuthenticationError" and aborted["reason"] == adding.reason


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("status", "error", "words"),
    [
        (
            404,
            {"type": "index_not_found_exception", "reason": "no such index [logs]"},
            "does not exist",
        ),
        (
            400,
            {"type": "invalid_index_name_exception", "reason": "must be lowercase"},
            "not a valid index name",
        ),
        (400, {"type": "index_closed_exception", "reason": "closed"}, "is closed"),
        (
            429,
            {
                "type": "cluster_block_exception",
                "reason": "blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has read-only-allow-delete block];",
            },
            "blocked against writes",
        ),
        (403, {"type": "security_exception", "reason": "unauthorized for [logs]"}, "may not write"),
    ],
)
def test_an_index_every_document_fails_on_stops_after_the_first_answer(
    kind: str, status: int, error: dict[str, Any], words: str, tmp_path: Path
) -> None:
    taken, adding, closing, client, _ = run_aborted(
        kind,
        lambda n, spec: {"status": status, "error": error},
        100_000,
        tmp_path,
        max_actions=10,
        max_bytes=2048,
        max_pending_bytes=4096,
    )
    assert closing is adding and words in adding.reason and "[logs]" in adding.reason
    assert adding.cause is not None and adding.cause.error_type == error["type"]  # type: ignore[attr-defined]
    assert len(client.bodies) <= 2  # the first answer (a second request may have been in flight)
    check_abort_accounting(adding, taken, tmp_path)
    # Not the stream: what the memory bound let the indexer hold (actions of 30+ bytes).
    assert adding.stats.dead_lettered <= 4096 // 30 + 1


@pytest.mark.parametrize("kind", KINDS)
def test_an_unreachable_cluster_stops_the_load_after_abort_after(kind: str, tmp_path: Path) -> None:
    """Every request refused: the load goes on for ``abort_after`` seconds (a restart or a blip
    would heal in that time), warns when the silence begins, then stops. The producer, blocked
    on the memory bound meanwhile, learns at once."""
    refused = ConnectionError("connection refused (node http://127.0.0.1:9)")
    started = time.monotonic()
    taken, adding, closing, _, events = run_aborted(
        kind,
        lambda n, spec: refused,
        10_000_000,
        tmp_path,
        max_actions=50,
        max_bytes=4096,
        max_pending_bytes=16384,
        abort_after=0.5,
        backoff_base=0.01,
        backoff_cap=0.05,
    )
    assert time.monotonic() - started < 10.0
    assert closing is adding and adding.cause is refused
    assert "no answer from the cluster for" in adding.reason
    check_abort_accounting(adding, taken, tmp_path)
    assert adding.stats.dead_lettered <= 16384 // 30 + 1  # what the memory bound held
    assert adding.stats.retried_requests >= 1
    assert adding.stats.retried_documents >= adding.stats.retried_requests
    (warned,) = named(events, "bulk.unanswered")
    assert warned["error"] == "ConnectionError" and warned["abort_after"] == 0.5
    assert len(named(events, "bulk.aborted")) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_a_blip_shorter_than_abort_after_only_delays(kind: str, tmp_path: Path) -> None:
    """The first two requests refused, then the cluster answers: nothing is lost."""
    refused = ConnectionError("refused")

    async def scenario(side: Side, client: FakeClient) -> BulkStats:
        for n in range(200):
            await side.index({"n": n}, id=str(n))
        return await side.close()  # type: ignore[no-any-return]

    client_cls = FailingClient if kind == "sync" else FailingAsyncClient
    client = client_cls(lambda n, spec: refused if n <= 2 else None)

    async def main() -> BulkStats:
        cls = BulkIndexer if kind == "sync" else AsyncBulkIndexer
        bulk = cls(
            client,
            "i",
            dead_letter=tmp_path / "d",
            abort_after=30.0,
            backoff_base=0.01,
            backoff_cap=0.02,
            max_actions=50,
        )  # type: ignore[arg-type]
        return await scenario(Side(bulk), client)

    stats = run_clean(main)
    assert (stats.added, stats.succeeded, stats.dead_lettered) == (200, 200, 0)
    assert stats.retried_requests >= 1 and stats.failed_requests == 2


@pytest.mark.parametrize("kind", KINDS)
def test_a_with_block_reports_the_abort_once(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The producer's ``index()`` raised inside the ``with`` block: leaving it raises that same
    error, with the final stats, and logs no second copy of it."""
    refused = AuthorizationError(403, error_type="security_exception", reason="no write privilege")
    client = (
        FailingClient(lambda n, spec: refused)
        if kind == "sync"
        else FailingAsyncClient(lambda n, spec: refused)
    )

    async def main() -> BulkAbortedError:
        with pytest.raises(BulkAbortedError) as info:
            if kind == "sync":
                with BulkIndexer(client, "i", dead_letter=tmp_path / "d", max_actions=5) as bulk:  # type: ignore[arg-type]
                    for n in range(100_000):
                        bulk.index({"n": n}, id=str(n))
            else:
                async with AsyncBulkIndexer(
                    client, "i", dead_letter=tmp_path / "d", max_actions=5
                ) as abulk:  # type: ignore[arg-type]
                    for n in range(100_000):
                        await abulk.index({"n": n}, id=str(n))
        return info.value

    with caplog.at_level("DEBUG", logger="sturdysearch"):
        error = run_clean(main)
    assert "credentials may not write with _bulk (403" in error.reason
    stats = error.stats
    assert stats.pending == 0 and stats.added == stats.succeeded + stats.dead_lettered
    assert not [r for r in caplog.records if "closing the" in r.getMessage()]
    assert len([r for r in caplog.records if r.levelname == "ERROR"]) == 1  # bulk.aborted


@pytest.mark.parametrize("kind", KINDS)
def test_the_one_call_loaders_raise_it_with_final_stats(kind: str, tmp_path: Path) -> None:
    missing = {
        "status": 404,
        "error": {"type": "index_not_found_exception", "reason": "no such index [i]"},
    }
    client = (
        FailingClient(lambda n, spec: missing)
        if kind == "sync"
        else FailingAsyncClient(lambda n, spec: missing)
    )
    consumed = 0

    def documents() -> Any:
        nonlocal consumed
        for n in range(1_000_000):
            consumed += 1
            yield {"id": str(n), "n": n}

    async def main() -> None:
        config = BulkConfig(max_actions=10, flush_interval=0.05)
        if kind == "sync":
            bulk_index(
                client,
                documents(),
                "i",
                id_field="id",
                dead_letter=tmp_path / "d.jsonl",
                config=config,
            )  # type: ignore[arg-type]
        else:
            await async_bulk_index(
                client,
                documents(),
                "i",
                id_field="id",
                dead_letter=tmp_path / "d.jsonl",
                config=config,
            )  # type: ignore[arg-type]

    with pytest.raises(BulkAbortedError) as info:
        run_clean(main)
    assert consumed < 1_000_000  # the generator was not drained into the dead-letter file
    check_abort_accounting(info.value, info.value.stats.added, tmp_path)


@pytest.mark.parametrize("kind", KINDS)
def test_a_replay_into_a_missing_index_stops(kind: str, tmp_path: Path) -> None:
    source = tmp_path / "old.jsonl"
    record = {
        "action": {"index": {"_index": "gone", "_id": "x"}},
        "document": {"n": 1},
        "outcome": "exhausted",
        "reason": "503",
    }
    source.write_bytes(
        b"".join(
            orjson.dumps({**record, "action": {"index": {"_index": "gone", "_id": str(n)}}}) + b"\n"
            for n in range(50)
        )
    )
    missing = {
        "status": 404,
        "error": {"type": "index_not_found_exception", "reason": "no such index [gone]"},
    }
    client = (
        FailingClient(lambda n, spec: missing)
        if kind == "sync"
        else FailingAsyncClient(lambda n, spec: missing)
    )

    async def main() -> None:
        config = BulkConfig(max_actions=10, flush_interval=0.05)
        if kind == "sync":
            replay_dead_letters(client, source, dead_letter=tmp_path / "d.jsonl", config=config)  # type: ignore[arg-type]
        else:
            await async_replay_dead_letters(
                client, source, dead_letter=tmp_path / "d.jsonl", config=config
            )  # type: ignore[arg-type]

    with pytest.raises(BulkAbortedError) as info:
        run_clean(main)
    assert "index [gone] does not exist" in info.value.reason
    check_abort_accounting(info.value, info.value.stats.added, tmp_path)


@pytest.mark.parametrize("kind", KINDS)
def test_per_document_failures_still_go_on(kind: str, tmp_path: Path) -> None:
    """Mapping errors on every tenth document: dead-lettered, and the load goes on."""

    async def scenario(side: Side, client: FakeClient) -> BulkStats:
        for n in range(300):
            await side.index({"n": n, "reject": n % 10 == 0}, id=str(n))
        return await side.flush()  # type: ignore[no-any-return]

    stats, events = run(kind, scenario, dead_letter=tmp_path / "d.jsonl", max_actions=20)
    assert (stats.succeeded, stats.dead_lettered) == (270, 30)
    assert not named(events, "bulk.aborted")


def test_the_abort_error_pickles() -> None:
    import pickle

    cause = AuthenticationError(401, reason="unable to authenticate")
    error = BulkAbortedError(
        "stopped", reason="fix it", cause=cause, stats=BulkStats(added=3), dead_letter="d.jsonl"
    )
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.reason, copy.dead_letter, copy.stats) == (
        "stopped",
        "fix it",
        "d.jsonl",
        BulkStats(added=3),
    )
    assert isinstance(copy.cause, AuthenticationError) and copy.__cause__ is copy.cause
    assert isinstance(copy, SturdySearchError)


def assert_shut_down(kind: str, bulk: Any) -> None:
    """The shutdown is complete: no worker runs, the dead-letter file is closed."""
    if kind == "sync":
        assert not [t for t in bulk._threads if t.is_alive()]
    else:
        assert all(task.done() for task in bulk._tasks)
    assert bulk._dead_letters.closed


@pytest.mark.parametrize("kind", KINDS)
def test_close_after_abort_still_joins_and_closes_the_dead_letter_file(
    kind: str, tmp_path: Path
) -> None:
    """``abort()`` refuses more input, but the ``close()`` that follows it is the one shutdown:
    it waits for the workers, closes the dead-letter file (every aborted action in it) and
    reports ``bulk.closed``. (Once, ``abort()`` marked the indexer closed and ``close()``
    skipped all of that, leaving the file unflushed.)"""
    path = tmp_path / "dl.jsonl"

    async def scenario(side: Side, client: FakeClient) -> BulkStats:
        for n in range(100):
            await side.index({"n": n}, id=str(n))
        await side.abort("stopped by the test")
        with pytest.raises(RuntimeError, match="is closed"):
            await side.index({"n": 100}, id="100")
        stats: BulkStats = await side.close()
        bulk = side.bulk
        assert_shut_down(kind, bulk)
        return stats

    stats, events = run(kind, scenario, dead_letter=path, max_actions=10_000, flush_interval=60.0)
    assert (stats.added, stats.succeeded, stats.dead_lettered) == (100, 0, 100)
    letters = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert sorted(int(r["action"]["index"]["_id"]) for r in letters) == list(range(100))
    assert {r["outcome"] for r in letters} == {"aborted"}
    assert {letter["reason"] for letter in letters} == {"stopped by the test"}
    assert len(named(events, "bulk.closed")) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_an_interrupt_anywhere_in_close_leaves_the_shutdown_to_the_next_close(
    kind: str, tmp_path: Path
) -> None:
    """A KeyboardInterrupt (sync) or a cancellation (async) can land anywhere in ``close()``,
    also before it waits for the workers. The ``abort()`` and ``close()`` that follow must
    still dead-letter what was not sent, wait for the workers, close the dead-letter file and
    report ``bulk.closed`` once. (Once, ``close()`` marked the shutdown begun before its first
    statement that can be interrupted, and the next ``close()`` skipped all of it: bulk-load,
    interrupted twice quickly, printed "50 without an outcome" and an empty dead-letter file.)"""
    path = tmp_path / "dl.jsonl"
    interrupt = KeyboardInterrupt if kind == "sync" else asyncio.CancelledError

    async def scenario(side: Side, client: FakeClient) -> BulkStats:
        for n in range(100):
            await side.index({"n": n}, id=str(n))
        bulk = side.bulk
        close_input = bulk._engine.close_input

        def interrupted() -> None:
            close_input()
            raise interrupt

        bulk._engine.close_input = interrupted
        with pytest.raises(interrupt):
            await side.close()
        bulk._engine.close_input = close_input
        assert not bulk._dead_letters.closed
        await side.abort("interrupted twice")
        stats: BulkStats = await side.close()
        assert_shut_down(kind, bulk)
        return stats

    stats, events = run(kind, scenario, dead_letter=path, max_actions=10_000, flush_interval=60.0)
    assert stats.pending == 0 and stats.added == 100
    letters = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert stats.succeeded + len(letters) == 100 and stats.dead_lettered == len(letters)
    assert {r["outcome"] for r in letters} <= {"aborted"}
    assert len(named(events, "bulk.closed")) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_context_goes_into_the_dead_letter_and_never_on_the_wire(kind: str, tmp_path: Path) -> None:
    """``context=`` on every adding method and on ``reject()``: each dead letter carries the
    context of its own action, actions without one have none, no request body holds it, and
    a replay that fails again keeps it."""
    path = tmp_path / "dl.jsonl"

    async def scenario(side: Side, client: FakeClient) -> BulkStats:
        await side.index({"n": 0}, id="0", context={"line": 1})  # succeeds
        await side.index({"reject": True}, id="1", context={"line": 2})
        await side.index({"reject": True}, id="2")  # no context
        await side.create({"reject": True}, "3", context={"line": 4})
        await side.update("4", doc={"reject": True}, context={"line": 5})
        await side.index({"n": float("nan")}, id="5", context={"line": 6})  # unserializable
        await side.index({"reject": True}, id="6", routing="r", context={"line": 7})
        await side.reject(b'{"broken', "not JSON: unexpected end", id="7", context={"line": 8})
        await side.reject({"id": True}, "id is bool", op="update", id=True, context={"line": 9})
        stats: BulkStats = await side.close()
        assert not [body for body in client.bodies if b'"line"' in body]
        return stats

    stats, _ = run(kind, scenario, dead_letter=path)
    assert (stats.added, stats.succeeded, stats.dead_lettered) == (9, 1, 8)
    records = {
        r["context"]["line"] if "context" in r else None: r
        for r in map(orjson.loads, path.read_bytes().splitlines())
    }
    assert sorted(records, key=str) == [2, 4, 5, 6, 7, 8, 9, None]
    assert records[None]["action"]["index"]["_id"] == "2"
    assert records[5]["action"] == {"update": {"_index": "i", "_id": "4"}}
    assert records[6]["outcome"] == "unserializable"
    broken = records[8]
    assert (broken["outcome"], broken["reason"]) == ("invalid", "not JSON: unexpected end")
    assert broken["document_repr"] == '{"broken' and broken["document"] is None
    assert broken["action"] == {"index": {"_index": "i", "_id": "7"}}
    assert records[9]["action"] == {"update": {"_index": "i"}}  # a bool is no id

    # Replayed, the rejected ones fail again and keep where they came from.
    client: FakeClient = FakeClient() if kind == "sync" else FakeAsyncClient()
    target = tmp_path / "replay.jsonl"

    async def replay() -> BulkStats:
        if kind == "sync":
            return replay_dead_letters(client, path, dead_letter=target)  # type: ignore[arg-type]
        return await async_replay_dead_letters(client, path, dead_letter=target)  # type: ignore[arg-type]

    again = run_clean(replay)
    assert again.dead_lettered == 8
    lines = {
        r["context"]["line"] if "context" in r else None
        for r in map(orjson.loads, target.read_bytes().splitlines())
    }
    assert lines == {2, 4, 5, 6, 7, 8, 9, None}


@pytest.mark.parametrize("kind", KINDS)
def test_reject_needs_a_reason_and_an_open_indexer(kind: str, tmp_path: Path) -> None:
    async def scenario(side: Side, client: FakeClient) -> None:
        with pytest.raises(ValueError, match="needs the reason"):
            await side.reject(b"x", "")
        await side.close()
        with pytest.raises(RuntimeError, match="is closed"):
            await side.reject(b"x", "late")

    run(kind, scenario, dead_letter=tmp_path / "d")

"""One behaviour, both indexers: the threaded ``BulkIndexer`` and the asyncio
``AsyncBulkIndexer`` run the same scenarios against an in-memory client, so that what they share
through ``BulkSession`` (events, hooks, progress, stop conditions, replay) cannot drift apart
again. Each scenario is a coroutine; for the threaded indexer its calls are made directly (they
block in the test's thread, which is all the loop runs)."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from sturdysearch import AsyncBulkIndexer, BulkIndexer, BulkStats
from sturdysearch._async.bulk import async_bulk_index, async_replay_dead_letters
from sturdysearch._core.events import Event, Tracer
from sturdysearch._core.request import RequestSpec
from sturdysearch._sync.bulk import bulk_index, replay_dead_letters
from sturdysearch.errors import ConfigError
from sturdysearch.testing.loops import run_clean

KINDS = ["sync", "async"]


class FakeResponse:
    def __init__(self, body: Any) -> None:
        self.body = body


def answer(spec: RequestSpec) -> FakeResponse:
    """Every action created, except documents with ``"reject": true`` (a mapping error)."""
    assert spec.body is not None
    lines = spec.body.split(b"\n")[:-1]
    items: list[dict[str, Any]] = []
    i = 0
    while i < len(lines):
        op = next(iter(orjson.loads(lines[i])))
        source = lines[i + 1] if op != "delete" else b"{}"
        if orjson.loads(source).get("reject"):
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

"""The threaded BulkIndexer driven by an in-memory client: no sockets, no server."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from sturdysearch import BulkIndexer
from sturdysearch._core.events import Tracer
from sturdysearch._core.request import RequestSpec
from sturdysearch.errors import ConfigError, ConnectionError, SturdySearchError


class FakeResponse:
    def __init__(self, body: Any) -> None:
        self.body = body


class FakeClient:
    """Answers every item with ``status`` (a function of the action line may decide), or
    raises what ``fail`` returns for the n-th request."""

    def __init__(self, fail: Any = None, delay: float = 0.0, *, on_send: bool = True) -> None:
        self.tracer = Tracer()
        self.specs: list[RequestSpec] = []
        self.fail = fail
        self.delay = delay
        self.on_send = on_send
        """Call ``spec.on_send`` as the real transport does (``False``: a client that does
        not)."""
        self.lock = threading.Lock()

    def perform(self, spec: RequestSpec) -> FakeResponse:
        with self.lock:
            self.specs.append(spec)
            n = len(self.specs)
        if self.on_send and spec.on_send is not None:
            spec.on_send()
        if self.delay:
            time.sleep(self.delay)
        if self.fail is not None:
            exc = self.fail(n)
            if exc is not None:
                raise exc
        assert spec.body is not None
        lines = spec.body.split(b"\n")[:-1]
        items = []
        i = 0
        while i < len(lines):
            op = next(iter(orjson.loads(lines[i])))
            items.append({op: {"status": 201, "result": "created"}})
            i += 1 if op == "delete" else 2
        return FakeResponse({"errors": False, "items": items})


def test_options_are_checked(tmp_path: Path) -> None:
    client: Any = FakeClient()
    with pytest.raises(ConfigError, match="unknown option max_batch="):
        BulkIndexer(client, "i", dead_letter=tmp_path / "d", max_batch=3)  # type: ignore[call-arg]
    with pytest.raises(
        ConfigError, match="chunk_size= is not a sturdysearch keyword: use max_actions="
    ):
        BulkIndexer(client, "i", dead_letter=tmp_path / "d", chunk_size=3)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="twice"):
        BulkIndexer(client, "i", dead_letter=tmp_path / "d", max_bytes=1000, max_pending_bytes=1500)
    with pytest.raises(ConfigError):
        BulkIndexer(client, "i", dead_letter=tmp_path / "d", delivery_timeout=None)  # type: ignore[arg-type]


def test_requests_carry_the_retry_policy_and_the_idempotency(tmp_path: Path) -> None:
    client: Any = FakeClient()
    with BulkIndexer(client, "logs", dead_letter=tmp_path / "d", max_actions=2) as bulk:
        bulk.index({"a": 1}, id="1")
        bulk.delete("2")
        bulk.index({"a": 3})
        bulk.update("4", doc={"a": 4})
    first, second = client.specs
    assert first.path == "/logs/_bulk" and first.retry is not None
    assert first.retry.max_attempts == 1  # the indexer owns retries
    assert first.idempotent and not second.idempotent
    assert first.params["filter_path"].startswith("errors,items")
    assert first.content_type == "application/x-ndjson" and first.long_running
    assert bulk.stats.succeeded == 4
    assert not (tmp_path / "d").exists()  # nothing failed: no dead-letter file left behind


def test_adding_after_close_raises(tmp_path: Path) -> None:
    client: Any = FakeClient()
    bulk = BulkIndexer(client, "i", dead_letter=tmp_path / "d")
    bulk.close()
    bulk.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        bulk.index({"a": 1})


def test_ids_must_be_str_or_int(tmp_path: Path) -> None:
    client: Any = FakeClient()
    with BulkIndexer(client, "i", dead_letter=tmp_path / "d") as bulk, pytest.raises(TypeError):
        bulk.index({"a": 1}, id=1.5)


def test_script_updates_are_not_idempotent(tmp_path: Path) -> None:
    client: Any = FakeClient(fail=lambda n: ConnectionError("reset", request_sent=True))
    dlq = tmp_path / "d"
    with BulkIndexer(client, "i", dead_letter=dlq, delivery_timeout=1.0) as bulk:
        bulk.update("1", script={"source": "ctx._source.n += 1"})
    (record,) = [orjson.loads(x) for x in dlq.read_bytes().splitlines()]
    assert record["outcome"] == "unknown" and len(client.specs) == 1


def test_a_failing_hook_does_not_break_the_indexer(tmp_path: Path) -> None:
    def hook(_: Any) -> None:
        raise ValueError("broken hook")

    client: Any = FakeClient()
    with BulkIndexer(
        client, "i", dead_letter=tmp_path / "d", on_success=hook, on_progress=hook
    ) as bulk:
        bulk.index({"a": 1}, id="1")
    assert bulk.stats.succeeded == 1


def test_backpressure_blocks_the_producer(tmp_path: Path) -> None:
    """With the memory bound at two batches and a slow cluster, adding waits: the bytes
    pending never exceed the bound."""
    client: Any = FakeClient(delay=0.05)
    peaks: list[int] = []
    line = len(b'{"index":{"_id":"0000"}}\n') + len(orjson.dumps({"p": "x" * 200})) + 1
    options = {"max_bytes": line * 10, "max_pending_bytes": line * 20, "workers": 1}
    with BulkIndexer(client, "i", dead_letter=tmp_path / "d", **options) as bulk:
        for i in range(200):
            bulk.index({"p": "x" * 200}, id=f"{i:04d}")
            peaks.append(bulk._engine.pending_bytes)
    assert max(peaks) <= line * 20
    assert bulk.stats.succeeded == 200


@pytest.mark.parametrize("on_send", [True, False])
def test_a_steady_load_sends_full_batches(tmp_path: Path, on_send: bool) -> None:
    """With the producer ahead of the cluster (blocked on the memory bound most of the time),
    every request but the last carries a full batch: none of only the few actions the bound's
    slack admitted just before the producer blocked (batches of varied actions are a little
    under ``max_bytes``, so the bound has slack). Also when the client never calls
    ``on_send`` (the producer is then woken as soon as room is freed)."""
    client: Any = FakeClient(delay=0.01, on_send=on_send)
    largest = len(b'{"index":{"_id":"0000"}}\n') + len(orjson.dumps({"p": "x" * 210})) + 1
    max_bytes = 4000
    with BulkIndexer(client, "i", dead_letter=tmp_path / "d", max_bytes=max_bytes) as bulk:
        for i in range(600):
            bulk.index({"p": "x" * (200 + i % 11)}, id=f"{i:04d}")
    sizes = [len(spec.body) for spec in client.specs if spec.body]
    assert all(size > max_bytes - largest for size in sizes[:-1]), sizes
    assert bulk.stats.succeeded == 600


def test_the_producer_is_woken_once_the_next_request_is_being_written(tmp_path: Path) -> None:
    """The room an answer frees is announced from the next request's ``on_send``: between an
    answer and the next request the sender keeps the GIL, and the producer (blocked on the
    memory bound) adds nothing. Woken at once, it would take the lock and the GIL first, and
    the sender would wait up to the 5 ms switch interval with the server idle."""
    seen: list[tuple[int, int]] = []  # per request: actions added at its start, at its end

    class Recording(FakeClient):
        def perform(self, spec: RequestSpec) -> FakeResponse:
            time.sleep(0.002)  # getting a connection: a syscall, the GIL is free meanwhile
            start = bulk._engine.added
            answer = super().perform(spec)  # calls on_send, then answers
            seen.append((start, bulk._engine.added))
            return answer

    client: Any = Recording(delay=0.005)
    bulk = BulkIndexer(client, "i", dead_letter=tmp_path / "d", max_bytes=4000, workers=1)
    with bulk:
        for i in range(600):
            bulk.index({"p": "x" * (200 + i % 11)}, id=f"{i:04d}")
    assert bulk.stats.succeeded == 600
    steady = seen[2:-3]  # the producer is blocked on the bound between these requests
    assert len(steady) > 10
    assert all(nxt[0] == prev[1] for prev, nxt in itertools.pairwise(steady)), seen


def test_interrupt_while_closing_dead_letters_what_was_not_sent(tmp_path: Path) -> None:
    """A second KeyboardInterrupt while ``close()`` waits: what is not in flight is
    dead-lettered as ``aborted`` and the interrupt propagates."""
    release = threading.Event()

    def stuck(n: int) -> SturdySearchError | None:
        release.wait(5)
        return ConnectionError("refused")  # never sent: would be retried

    client: Any = FakeClient(fail=stuck)
    dlq = tmp_path / "d"
    bulk = BulkIndexer(client, "i", dead_letter=dlq, max_actions=1, workers=1)
    for i in range(5):
        bulk.index({"n": i}, id=str(i))
    timer = threading.Timer(0.3, lambda: _interrupt_main())
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        try:
            bulk.close()
        finally:
            release.set()
    bulk.close()
    stats = bulk.stats
    assert stats.pending == 0 and stats.dead_lettered == 5
    outcomes = {orjson.loads(x)["outcome"] for x in dlq.read_bytes().splitlines()}
    assert outcomes == {"aborted"}


def _interrupt_main() -> None:
    import _thread

    _thread.interrupt_main()


def test_the_indexers_keyword_defaults_are_bulkconfigs() -> None:
    import inspect

    from sturdysearch import AsyncBulkIndexer
    from sturdysearch._core.bulk.config import CONFIG_DEFAULTS

    for cls in (BulkIndexer, AsyncBulkIndexer):
        signature = inspect.signature(cls.__init__)
        for name, default in CONFIG_DEFAULTS.items():
            assert signature.parameters[name].default == default, (cls, name)

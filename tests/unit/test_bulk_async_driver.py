"""The asyncio BulkIndexer driven by an in-memory client: dead letters off the event loop."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from sturdysearch import AsyncBulkIndexer
from sturdysearch._core.events import Tracer
from sturdysearch._core.request import RequestSpec
from sturdysearch.errors import DeadLetterError
from sturdysearch.testing.loops import run_clean


class FakeResponse:
    def __init__(self, body: Any) -> None:
        self.body = body


class FakeAsyncClient:
    """Answers every action as created."""

    def __init__(self) -> None:
        self.tracer = Tracer()

    async def perform(self, spec: RequestSpec) -> FakeResponse:
        assert spec.body is not None
        count = len(spec.body.split(b"\n")[:-1]) // 2
        items = [{"index": {"status": 201, "result": "created"}}] * count
        return FakeResponse({"errors": False, "items": items})


def test_dead_letters_are_written_off_the_loop_in_order(tmp_path: Path) -> None:
    """The file write runs in a worker thread, never in the event loop's, and the records
    keep the order in which the actions were dead-lettered."""
    dlq = tmp_path / "d"
    writers: list[str] = []

    async def main() -> Any:
        loop_thread = threading.current_thread().name
        async with AsyncBulkIndexer(FakeAsyncClient(), "i", dead_letter=dlq) as bulk:  # type: ignore[arg-type]
            write = bulk._dead_letters.write

            def recording(records: list[bytes]) -> None:
                writers.append(threading.current_thread().name)
                write(records)

            bulk._dead_letters.write = recording  # type: ignore[method-assign]
            for i in range(50):
                await bulk.index({"n": i}, id=str(i))
                await bulk.index({"n": float("nan"), "i": i}, id=f"bad-{i}")
        return bulk.stats, loop_thread

    stats, loop_thread = run_clean(main)
    assert stats.succeeded == 50 and stats.dead_lettered == 50 and stats.pending == 0
    assert writers and loop_thread not in writers
    ids = [orjson.loads(line)["action"]["index"]["_id"] for line in dlq.read_bytes().splitlines()]
    assert ids == [f"bad-{i}" for i in range(50)]


def test_an_unwritable_dead_letter_file_stops_the_indexer(tmp_path: Path) -> None:
    """The write fails in its thread: the indexer stops taking documents and raises, holding
    the records it could not write."""

    async def main() -> None:
        bulk = AsyncBulkIndexer(FakeAsyncClient(), "i", dead_letter=tmp_path / "d")  # type: ignore[arg-type]
        await bulk.start()

        def failing(records: list[bytes]) -> None:
            raise OSError(28, "No space left on device")

        bulk._dead_letters.write = failing  # type: ignore[method-assign]
        with pytest.raises(DeadLetterError):
            await bulk.index({"n": float("nan")}, id="bad")
        with pytest.raises(DeadLetterError):
            await bulk.index({"n": 1}, id="1")  # nothing more is taken
        with pytest.raises(DeadLetterError) as info:
            await bulk.close()
        assert len(info.value.records) == 1 and bulk.stats.pending == 1

    run_clean(main)

"""``AsyncBulkIndexer``: the asyncio driver of the bulk engine.

::

    async with AsyncBulkIndexer(client, index="logs", dead_letter="dlq.jsonl") as bulk:
        async for doc in docs:
            await bulk.index(doc, id=doc["id"])

The same engine, the same outcomes and the same dead-letter file as the blocking
:class:`~sturdysearch.BulkIndexer`; only the waiting differs: ``workers`` sender tasks and one
timer task on the running loop instead of threads, and no lock (the engine is only touched
between two awaits). Adding waits (``await``) while the memory bound is reached. Dead-letter
records are written with a plain ``os.write`` from the loop: they are rare and small, and a
disk that cannot take a few kilobytes at once is the failure that stops the indexer anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from dataclasses import fields
from types import TracebackType
from typing import TYPE_CHECKING, Any

import orjson

from sturdysearch._core.budget import BudgetConfig
from sturdysearch._core.bulk.answer import decode_answer
from sturdysearch._core.bulk.config import (
    BULK_BUDGET,
    MIB,
    SERVER_MAX_CONTENT_LENGTH,
    BulkConfig,
    BulkStats,
    ItemResult,
    given_options,
)
from sturdysearch._core.bulk.deadletter import DeadLetter, encode_record, unserializable
from sturdysearch._core.bulk.driving import (
    ONE_ATTEMPT,
    DeadLetterLog,
    batch_event,
    bulk_params,
    bulk_path,
    dead_letter_error,
    item_results,
    make_config,
)
from sturdysearch._core.bulk.encode import (
    action_line,
    id_text,
    item_meta,
    source_line,
    update_body,
)
from sturdysearch._core.bulk.engine import DEAD, FULL, WAKE, Batch, BulkEngine
from sturdysearch._core.hints import hint_constructor_keywords
from sturdysearch._core.observe import BatchScope
from sturdysearch._core.request import RequestSpec
from sturdysearch._io.deadletter import DeadLetterFile, default_path
from sturdysearch.errors import (
    SerializationError,
    SturdySearchError,
    TransportError,
)

if TYPE_CHECKING:
    from sturdysearch._async.client import AsyncClient

logger = logging.getLogger("sturdysearch")
_monotonic = time.monotonic


@hint_constructor_keywords
class AsyncBulkIndexer:
    """The asyncio twin of :class:`~sturdysearch.BulkIndexer`: same arguments, same
    guarantees; the adding methods, ``flush()`` and ``close()`` are coroutines. Use it as
    ``async with`` (or call ``await start()`` and ``await close()``) inside a running loop.
    Cancelling the task that awaits ``close()`` dead-letters what was not sent yet as
    ``aborted`` before the cancellation propagates."""

    def __init__(
        self,
        client: AsyncClient,
        index: str | None = None,
        *,
        dead_letter: str | os.PathLike[str] | None = None,
        refresh: bool | str | None = None,
        pipeline: str | None = None,
        params: Mapping[str, Any] | None = None,
        on_success: Callable[[ItemResult], None] | None = None,
        on_failure: Callable[[DeadLetter], None] | None = None,
        on_progress: Callable[[BulkStats], None] | None = None,
        config: BulkConfig | None = None,
        max_actions: int = 10_000,
        max_bytes: int = 5 * MIB,
        flush_interval: float = 1.0,
        workers: int = 2,
        max_pending_bytes: int | None = None,
        delivery_timeout: float = 120.0,
        request_timeout: float = 60.0,
        max_attempts: int = 50,
        backoff_base: float = 0.1,
        backoff_cap: float = 10.0,
        budget: BudgetConfig = BULK_BUDGET,
        max_document_bytes: int = SERVER_MAX_CONTENT_LENGTH - MIB,
    ) -> None:
        options = given_options(locals())
        self.config = make_config("AsyncBulkIndexer", config, options)
        self.default_index = index
        self._client = client
        self._tracer = client.tracer
        self._path = bulk_path(index)
        self._params = bulk_params(self.config, refresh, pipeline, params)
        self._on_success = on_success
        self._on_failure = on_failure
        self._on_progress = on_progress
        self._engine = BulkEngine(self.config, collect_successes=on_success is not None)
        self._dead_letters = DeadLetterFile(dead_letter or default_path(index))
        self._dl_log = DeadLetterLog(self._dead_letters.path, self._tracer.dead_letter_log_interval)
        self._dl_error: OSError | None = None
        self._dl_lock = asyncio.Lock()
        """Dead letters are written in a worker thread (a file write, or a slow disk, must not
        stall the event loop), one write at a time, in the order they were drained."""
        self._unwritten: list[bytes] = []
        self._closed = False
        self._cond: asyncio.Condition | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def dead_letter_path(self) -> str:
        return self._dead_letters.path

    @property
    def stats(self) -> BulkStats:
        return self._engine.stats()

    async def start(self) -> AsyncBulkIndexer:
        """Start the sender and timer tasks on the running loop (done by ``async with``)."""
        if self._cond is None:
            self._cond = asyncio.Condition()
            self._tasks = [
                asyncio.create_task(self._send_loop(), name=f"sturdysearch-bulk-{i}")
                for i in range(self.config.workers)
            ]
            self._tasks.append(asyncio.create_task(self._timer_loop(), name="bulk-timer"))
        return self

    async def __aenter__(self) -> AsyncBulkIndexer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            await self.close()
            return
        try:
            await self.close()
        except Exception:
            logger.exception("closing the AsyncBulkIndexer after %r failed", exc)

    # -- adding ------------------------------------------------------------------------------

    async def index(
        self,
        document: Any,
        id: Any = None,
        *,
        index: str | None = None,
        routing: str | None = None,
        pipeline: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """See :meth:`sturdysearch.BulkIndexer.index`."""
        await self._write_action("index", document, id, index, routing, pipeline, meta)

    async def create(
        self,
        document: Any,
        id: Any,
        *,
        index: str | None = None,
        routing: str | None = None,
        pipeline: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """See :meth:`sturdysearch.BulkIndexer.create`."""
        await self._write_action("create", document, id, index, routing, pipeline, meta)

    async def update(
        self,
        id: Any,
        *,
        doc: Any = None,
        script: Mapping[str, Any] | None = None,
        upsert: Any = None,
        doc_as_upsert: bool | None = None,
        scripted_upsert: bool | None = None,
        retry_on_conflict: int | None = None,
        index: str | None = None,
        routing: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """See :meth:`sturdysearch.BulkIndexer.update`."""
        if id is None:
            raise ValueError("update needs an id")
        body = update_body(doc, script, upsert, doc_as_upsert, scripted_upsert)
        extra = {"retry_on_conflict": retry_on_conflict, **(meta or {})}
        metadata = item_meta(id, index, routing, extra)
        try:
            source = source_line(body)
        except SerializationError as exc:
            await self._reject(unserializable("update", metadata, body, exc))
            return
        await self._put(action_line("update", metadata) + source, script is None)

    async def delete(
        self,
        id: Any,
        *,
        index: str | None = None,
        routing: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """See :meth:`sturdysearch.BulkIndexer.delete`."""
        if id is None:
            raise ValueError("delete needs an id")
        await self._put(action_line("delete", item_meta(id, index, routing, meta)), True)

    async def add_many(
        self,
        documents: Iterable[Any] | AsyncIterable[Any],
        *,
        id_field: str | None = None,
        op: str = "index",
    ) -> int:
        """Index (or create) every document of an iterable or async iterable; returns how
        many were added. See :meth:`sturdysearch.BulkIndexer.add_many`."""
        if op not in ("index", "create"):
            raise ValueError(f"add_many supports op='index' or op='create', not {op!r}")
        if op == "create" and id_field is None:
            raise ValueError("op='create' needs id_field=")
        count = 0

        async def add(document: Any) -> None:
            doc_id = None
            if id_field is not None and isinstance(document, Mapping):
                doc_id = document.get(id_field)
            await self._write_action(op, document, doc_id, None, None, None, None)

        if isinstance(documents, AsyncIterable):
            async for document in documents:
                await add(document)
                count += 1
        else:
            for document in documents:
                await add(document)
                count += 1
        return count

    async def _write_action(
        self,
        op: str,
        document: Any,
        id: Any,
        index: str | None,
        routing: str | None,
        pipeline: str | None,
        meta: Mapping[str, Any] | None,
    ) -> None:
        try:
            source = source_line(document)
        except SerializationError as exc:
            await self._reject(
                unserializable(op, item_meta(id, index, routing, meta), document, exc)
            )
            return
        if index is None and routing is None and pipeline is None and not meta and id is not None:
            head = b'{"%s":{"_id":' % op.encode() + orjson.dumps(id_text(id)) + b"}}\n"
        else:
            extra = {"pipeline": pipeline, **(meta or {})}
            head = action_line(op, item_meta(id, index, routing, extra))
        await self._put(head + source, id is not None)

    async def _put(self, line: bytes, safe: bool) -> None:
        if self._cond is None:
            await self.start()
        assert self._cond is not None
        self._check_open()
        engine = self._engine
        code = engine.add(line, safe, _monotonic())
        if code == FULL:
            async with self._cond:
                while code == FULL:
                    # Not seal(): the few actions the bound's slack admitted would go out as a
                    # request of their own while every sender is busy (BulkEngine.seal_if_idle).
                    if engine.seal_if_idle():
                        self._cond.notify_all()
                    await self._cond.wait()
                    self._check_open()
                    code = engine.add(line, safe, _monotonic())
        if code == WAKE:
            async with self._cond:
                self._cond.notify_all()
        elif code == DEAD:
            await self._write_dead(engine.drain())

    async def _reject(self, letter: DeadLetter) -> None:
        self._check_open()
        self._engine.reject(letter)
        await self._write_dead(self._engine.drain())
        self._raise_if_stopped()

    def _check_open(self) -> None:
        if self._dl_error is not None or self._engine.aborted is not None:
            self._raise_if_stopped()
        if self._closed:
            raise RuntimeError("this AsyncBulkIndexer is closed; create a new one")

    # -- tasks -------------------------------------------------------------------------------

    async def _timer_loop(self) -> None:
        assert self._cond is not None
        engine = self._engine
        async with self._cond:
            while not engine.finished:
                now = _monotonic()
                if engine.tick(now):
                    self._cond.notify_all()
                if engine.outbox:
                    letters = engine.drain()
                    self._cond.release()
                    try:
                        await self._write_dead(letters)
                    finally:
                        await self._cond.acquire()
                    continue
                wait = engine.next_wakeup(now)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._cond.wait(), wait)
            self._cond.notify_all()

    async def _send_loop(self) -> None:
        assert self._cond is not None
        engine = self._engine
        while True:
            async with self._cond:
                while True:
                    now = _monotonic()
                    batch = engine.take(now)
                    if batch is not None:
                        break
                    if engine.finished:
                        self._cond.notify_all()
                        return
                    await self._cond.wait()
            await self._send(batch, engine.request_timeout(batch, now))

    async def _send(self, batch: Batch, timeout: float) -> None:
        assert self._cond is not None
        started = _monotonic()
        scope = self._batch_scope(batch, started)
        spec = RequestSpec(
            "POST",
            self._path,
            params=self._params,
            body=b"".join(batch.lines),
            idempotent=batch.idempotent,
            timeout=timeout,
            long_running=True,
            content_type="application/x-ndjson",
            retry=ONE_ATTEMPT,
            decode=decode_answer,
            parent=scope,
        )
        body: Any = None
        failure: SturdySearchError | None = None
        try:
            body = (await self._client.perform(spec)).body
        except SturdySearchError as exc:
            failure = exc
        except Exception as exc:  # a bug below us must not strand the batch
            logger.exception("bulk request failed unexpectedly")
            failure = TransportError(f"unexpected {type(exc).__name__}: {exc}")
        engine = self._engine
        now = _monotonic()
        if failure is None:
            settlement = engine.settle_answer(batch, body, now, random.random())
        else:
            settlement = engine.settle_error(batch, failure, now, random.random())
        async with self._cond:
            self._cond.notify_all()
        await self._write_dead(engine.drain())
        if scope is not None or self._tracer.active:
            event = batch_event(batch, settlement, failure, now - started)
            if scope is not None:
                scope.ended(now, event)
            self._tracer.emit("bulk.batch", **event)
        if self._on_success is not None:
            for item in item_results(settlement, self.default_index):
                self._hook(self._on_success, item)
        if self._on_progress is not None:
            self._hook(self._on_progress, engine.stats())

    def _batch_scope(self, batch: Batch, now: float) -> BatchScope | None:
        if not self._tracer.instruments:
            return None
        return self._tracer.batch_scope(
            kind=batch.kind, actions=len(batch), nbytes=batch.nbytes, now=now
        )

    async def _write_dead(self, letters: list[DeadLetter]) -> None:
        if not letters:
            return
        records = [encode_record(x, index=self.default_index, at=time.time()) for x in letters]
        # A task of its own, started before anything else can drain (tasks start in creation
        # order, so the file keeps the drain order), and shielded: a cancelled caller must not
        # leave letters written by the thread but never counted.
        await asyncio.shield(self._write_records(records, len(letters)))
        summary = self._dl_log.add(letters, _monotonic())
        if summary is not None:
            self._tracer.emit("bulk.dead_letter_summary", **summary)
        if self._cond is not None:
            async with self._cond:
                self._cond.notify_all()
        if self._on_failure is not None:
            for letter in letters:
                self._hook(self._on_failure, letter)

    def _hook(self, hook: Callable[[Any], None] | None, value: Any) -> None:
        if hook is None:
            return
        try:
            hook(value)
        except Exception:
            logger.exception("AsyncBulkIndexer hook %r failed", hook)

    async def _write_records(self, records: list[bytes], count: int) -> None:
        """Append ``records`` (``count`` dead letters) in a worker thread; on failure the
        indexer stops taking documents and keeps them for ``DeadLetterError.records``."""
        async with self._dl_lock:
            try:
                if self._dl_error is not None:
                    raise self._dl_error
                await asyncio.to_thread(self._dead_letters.write, records)
            except OSError as exc:
                if self._dl_error is None:
                    self._dl_error = exc
                    logger.error(
                        "cannot write the dead-letter file %s (%s): the AsyncBulkIndexer stops "
                        "taking documents",
                        self._dead_letters.path,
                        exc,
                    )
                self._unwritten.extend(records)
            else:
                self._engine.dead_letters_written(count)

    # -- stopping ----------------------------------------------------------------------------

    async def flush(self) -> BulkStats:
        """Send what is buffered now and wait until every action added so far has its
        outcome."""
        if self._cond is None:
            return self.stats
        engine = self._engine
        async with self._cond:
            if engine.seal():
                self._cond.notify_all()
            while engine.pending and self._dl_error is None:
                await self._cond.wait()
        self._raise_if_stopped()
        return self.stats

    async def close(self) -> BulkStats:
        """Send what is buffered, wait for every outcome, stop the tasks, fsync and close the
        dead-letter file. Idempotent; raises like :meth:`sturdysearch.BulkIndexer.close`."""
        first = not self._closed
        self._closed = True
        self._engine.close_input()
        if self._cond is not None:
            async with self._cond:
                self._cond.notify_all()
        if first:
            try:
                if self._tasks:
                    await asyncio.gather(*self._tasks)
            except asyncio.CancelledError:
                await self.abort("cancelled while closing")
                raise
            finally:
                try:
                    self._dead_letters.close()
                except OSError as exc:
                    self._dl_error = self._dl_error or exc
                summary = self._dl_log.closing(_monotonic())
                if summary is not None:
                    self._tracer.emit("bulk.dead_letter_summary", **summary)
                if self._tracer.active:
                    stats = self.stats
                    self._tracer.emit(
                        "bulk.closed", **{f.name: getattr(stats, f.name) for f in fields(BulkStats)}
                    )
        self._raise_if_stopped()
        return self.stats

    async def abort(self, reason: str = "aborted") -> None:
        """Dead-letter what is not in flight as ``aborted``; see
        :meth:`sturdysearch.BulkIndexer.abort`."""
        self._closed = True
        self._engine.abort(reason)
        await self._write_dead(self._engine.drain())
        if self._cond is not None:
            async with self._cond:
                self._cond.notify_all()

    def _raise_if_stopped(self) -> None:
        if self._dl_error is not None:
            raise dead_letter_error(
                self._dead_letters.path, self._dl_error, self._unwritten
            ) from self._dl_error
        if self._engine.fatal is not None:
            raise self._engine.fatal

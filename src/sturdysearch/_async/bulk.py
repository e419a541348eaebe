"""``AsyncBulkIndexer``: the asyncio driver of the bulk engine.

::

    async with AsyncBulkIndexer(client, index="logs", dead_letter="dlq.jsonl") as bulk:
        async for doc in docs:
            await bulk.index(doc, id=doc["id"])

The same engine, session, outcomes and dead-letter file as the blocking
:class:`~sturdysearch.BulkIndexer` (``_core/bulk/session.py`` holds all they share); only the
waiting differs: ``workers`` sender tasks and one timer task on the running loop instead of
threads, and no lock (the engine is only touched between two awaits). Adding waits (``await``)
while the memory bound is reached. Dead-letter records are written from a worker thread, one
write at a time and in the order they were drained, so that a slow disk does not stall the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sturdysearch._core.bulk.config import BulkConfig, BulkStats
from sturdysearch._core.bulk.deadletter import DeadLetter, invalid
from sturdysearch._core.bulk.engine import DEAD, FULL, WAKE, Batch
from sturdysearch._core.bulk.session import (
    CarryOver,
    action,
    check_add_many,
    delete_action,
    document_id,
    raw_action,
    reject_meta,
    replay_step,
    update_action,
    with_context,
)
from sturdysearch._core.hints import hint_constructor_keywords
from sturdysearch._io.indexer import IndexerBase, show_client_type
from sturdysearch._io.replay import open_replay
from sturdysearch.errors import SturdySearchError, TransportError

if TYPE_CHECKING:
    from sturdysearch._async.client import AsyncClient

logger = logging.getLogger("sturdysearch")
_monotonic = time.monotonic


def _nothing() -> None:
    """``on_send`` of the asyncio driver: nobody to wake (no GIL hand-off to arrange)."""


@hint_constructor_keywords
class AsyncBulkIndexer(IndexerBase["AsyncClient"]):
    """The asyncio twin of :class:`~sturdysearch.BulkIndexer`: same arguments, same
    guarantees; the adding methods, ``flush()`` and ``close()`` are coroutines. Use it as
    ``async with`` (or call ``await start()`` and ``await close()``) inside a running loop.
    Cancelling the task that awaits ``close()`` dead-letters what was not sent yet as
    ``aborted`` before the cancellation propagates. A load stopped by a failure that every
    document would meet raises ``BulkAbortedError`` from the next adding call and from
    ``close()``, as :class:`~sturdysearch.BulkIndexer` does."""

    def _start_driver(self) -> None:
        self._dl_lock = asyncio.Lock()
        """Dead letters are written in a worker thread (a file write, or a slow disk, must not
        stall the event loop), one write at a time, in the order they were drained."""
        self._cond: asyncio.Condition | None = None
        self._tasks: list[asyncio.Task[None]] = []

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
            self._tasks.append(
                asyncio.create_task(self._timer_loop(), name="sturdysearch-bulk-timer")
            )
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
        # As BulkIndexer.__exit__: the producer's exception propagates; an error from closing
        # is logged, except the indexer's own BulkAbortedError, which the producer already has.
        try:
            await self._shutdown()
        except Exception:
            logger.exception("closing the AsyncBulkIndexer after %r failed", exc)
        error = self._session.stop_error()
        if error is not None and error is not exc:
            logger.error("closing the AsyncBulkIndexer after %r: %s", exc, error)

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
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """See :meth:`sturdysearch.BulkIndexer.index`."""
        await self._write_action("index", document, id, index, routing, pipeline, meta, context)

    async def create(
        self,
        document: Any,
        id: Any,
        *,
        index: str | None = None,
        routing: str | None = None,
        pipeline: str | None = None,
        meta: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """See :meth:`sturdysearch.BulkIndexer.create`."""
        await self._write_action("create", document, id, index, routing, pipeline, meta, context)

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
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """See :meth:`sturdysearch.BulkIndexer.update`."""
        await self._add(
            update_action(
                id,
                doc=doc,
                script=script,
                upsert=upsert,
                doc_as_upsert=doc_as_upsert,
                scripted_upsert=scripted_upsert,
                retry_on_conflict=retry_on_conflict,
                index=index,
                routing=routing,
                meta=meta,
            ),
            context,
        )

    async def delete(
        self,
        id: Any,
        *,
        index: str | None = None,
        routing: str | None = None,
        meta: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """See :meth:`sturdysearch.BulkIndexer.delete`."""
        await self._add(delete_action(id, index, routing, meta), context)

    async def reject(
        self,
        record: Any,
        reason: str,
        *,
        op: str = "index",
        id: Any = None,
        index: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """See :meth:`sturdysearch.BulkIndexer.reject`."""
        meta = reject_meta(id, index or self.default_index)
        await self._reject(invalid(op, meta, record, reason, context))

    async def add_many(
        self,
        documents: Iterable[Any] | AsyncIterable[Any],
        *,
        id_field: str | None = None,
        op: str = "index",
    ) -> int:
        """Index (or create) every document of an iterable or async iterable; returns how
        many were added. See :meth:`sturdysearch.BulkIndexer.add_many`."""
        check_add_many(op, id_field)
        count = 0
        if isinstance(documents, AsyncIterable):
            async for document in documents:
                await self._write_action(op, document, document_id(document, id_field))
                count += 1
        else:
            for document in documents:
                await self._write_action(op, document, document_id(document, id_field))
                count += 1
        return count

    async def add_raw(
        self,
        op: str,
        meta: Mapping[str, Any],
        source: bytes | None,
        *,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """See :meth:`sturdysearch.BulkIndexer.add_raw`."""
        await self._add(raw_action(op, meta, source), context)

    async def _write_action(
        self,
        op: str,
        document: Any,
        id: Any,
        index: str | None = None,
        routing: str | None = None,
        pipeline: str | None = None,
        meta: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        await self._add(action(op, document, id, index, routing, pipeline, meta), context)

    async def _add(
        self, encoded: tuple[bytes, bool] | DeadLetter, context: Mapping[str, Any] | None = None
    ) -> None:
        if isinstance(encoded, DeadLetter):
            await self._reject(encoded if context is None else with_context(encoded, context))
        else:
            await self._put(*encoded, context)

    async def _put(self, line: bytes, safe: bool, context: Mapping[str, Any] | None = None) -> None:
        if self._cond is None:
            await self.start()
        assert self._cond is not None
        self._check_open()
        engine = self._engine
        code = engine.add(line, safe, _monotonic())
        if context is not None and code != FULL:
            engine.attach(line, code, context)
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
                if context is not None:
                    engine.attach(line, code, context)
        if code == WAKE:
            async with self._cond:
                self._cond.notify_all()
            # Once per batch, let the senders run: a producer that awaits nothing else (a
            # list, a file) would fill the memory bound before the first request left, and
            # would hear of a stopped load only then.
            await asyncio.sleep(0)
        elif code == DEAD:
            await self._write_dead(engine.drain())

    async def _reject(self, letter: DeadLetter) -> None:
        self._check_open()
        self._engine.reject(letter)
        await self._write_dead(self._engine.drain())
        self._raise_if_stopped()

    def _check_open(self) -> None:
        if self._session.stopped:
            self._raise_if_stopped()
        if self._closed:
            raise self._session.closed_error()

    # -- tasks -------------------------------------------------------------------------------

    async def _timer_loop(self) -> None:
        assert self._cond is not None
        engine = self._engine
        async with self._cond:
            while not engine.finished:
                now = _monotonic()
                if engine.tick(now):
                    self._cond.notify_all()
                self._session.announce(self._session.new_stop())  # stopped by time, if at all
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
        session = self._session
        started = _monotonic()
        scope = session.batch_scope(batch, started)
        body: Any = None
        failure: SturdySearchError | None = None
        try:
            body = (
                await self._client.perform(session.request(batch, timeout, scope, _nothing))
            ).body
        except SturdySearchError as exc:
            failure = exc
        except Exception as exc:  # a bug below us must not strand the batch
            logger.exception("bulk request failed unexpectedly")
            failure = TransportError(f"unexpected {type(exc).__name__}: {exc}")
        now = _monotonic()
        settlement = session.settle(batch, body, failure, now, random.random())
        stop = session.new_stop()
        async with self._cond:
            self._cond.notify_all()
        session.announce(stop)
        letters = self._engine.drain()
        if letters:
            await self._write_dead(letters)  # its on_progress, after the letters, covers it
        else:
            session.progress(session.progress_stats())
        session.batch_done(batch, settlement, failure, scope, started, now)

    async def _write_dead(self, letters: list[DeadLetter]) -> None:
        if not letters:
            return
        session = self._session
        records = session.records(letters, time.time())
        # A task of its own, started before anything else can drain (tasks start in creation
        # order, so the file keeps the drain order), and shielded: a cancelled caller must not
        # leave letters written by the thread but never counted.
        written = await asyncio.shield(self._write_records(records, len(letters)))
        stats = session.progress_stats()
        if self._cond is not None:
            async with self._cond:
                self._cond.notify_all()
        session.letters_done(letters, written, stats, _monotonic())

    async def _write_records(self, records: list[bytes], count: int) -> bool:
        """Append ``records`` (``count`` dead letters) in a worker thread; on failure the
        indexer stops taking documents and keeps them for ``DeadLetterError.records``."""
        async with self._dl_lock:
            try:
                if self._session.dl_error is not None:
                    raise self._session.dl_error
                await asyncio.to_thread(self._dead_letters.write, records)
            except OSError as exc:
                self._session.write_failed(exc, records)
                return False
            self._engine.dead_letters_written(count)
            return True

    # -- stopping ----------------------------------------------------------------------------

    async def flush(self) -> BulkStats:
        """Send what is buffered now and wait until every action added so far has its
        outcome."""
        if self._cond is None:
            return self.stats
        async with self._cond:
            if self._engine.seal():
                self._cond.notify_all()
            while not self._session.flushed():
                await self._cond.wait()
        self._raise_if_stopped()
        return self.stats

    async def close(self) -> BulkStats:
        """Send what is buffered, wait for every outcome, stop the tasks, fsync and close the
        dead-letter file. Idempotent; raises like :meth:`sturdysearch.BulkIndexer.close`."""
        await self._shutdown()
        self._raise_if_stopped()
        return self.stats

    async def _shutdown(self) -> None:
        """``close()`` but for raising why the indexer stopped."""
        self._closed = True
        self._engine.close_input()
        if self._cond is not None:
            async with self._cond:
                self._cond.notify_all()
        if self._finished:
            return
        try:
            running = [task for task in self._tasks if not task.done()]
            if running:
                await asyncio.gather(*running)
        except asyncio.CancelledError:
            await self.abort("cancelled while closing")
            raise
        finally:
            self._finish()

    def _finish(self) -> None:
        """The end of the one shutdown, once: close the dead-letter file, report
        ``bulk.closed``. A ``close()`` cancelled before it got here (at any await) leaves it to
        the next ``close()``."""
        if self._finished:
            return
        self._finished = True
        try:
            self._dead_letters.close()
        except OSError as exc:
            self._session.dl_error = self._session.dl_error or exc
        self._session.closed(self.stats, _monotonic())

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
        error = self._session.stop_error()
        if error is not None:
            raise error.with_traceback(None)  # see BulkIndexer._raise_if_stopped


show_client_type(AsyncBulkIndexer, "AsyncClient")


async def async_bulk_index(
    client: AsyncClient,
    documents: Iterable[Any] | AsyncIterable[Any],
    index: str,
    *,
    id_field: str | None = None,
    op: str = "index",
    dead_letter: str | os.PathLike[str] | None = None,
    config: BulkConfig | None = None,
    refresh: bool | str | None = None,
    pipeline: str | None = None,
    on_progress: Callable[[BulkStats], None] | None = None,
) -> BulkStats:
    """The asyncio twin of :func:`sturdysearch.bulk_index` (raises ``BulkAbortedError`` as it
    does)."""
    async with AsyncBulkIndexer(
        client,
        index,
        dead_letter=dead_letter,
        config=config,
        refresh=refresh,
        pipeline=pipeline,
        on_progress=on_progress,
    ) as bulk:
        await bulk.add_many(documents, id_field=id_field, op=op)
    return bulk.stats


async def async_replay_dead_letters(
    client: AsyncClient,
    path: str | os.PathLike[str],
    *,
    dead_letter: str | os.PathLike[str] | None = None,
    skip_outcomes: Iterable[str] = (),
    config: BulkConfig | None = None,
    on_progress: Callable[[BulkStats], None] | None = None,
) -> BulkStats:
    """The asyncio twin of :func:`sturdysearch.replay_dead_letters`. The file is read in
    the loop's thread a line at a time (a line is a few kilobytes)."""
    source_path, target, lines = open_replay(path, dead_letter)
    skip = frozenset(skip_outcomes)
    with lines:
        async with AsyncBulkIndexer(
            client, None, dead_letter=target, config=config, on_progress=on_progress
        ) as bulk:
            for number, raw in enumerate(lines, 1):
                step = replay_step(raw, number, source_path, skip)
                if isinstance(step, CarryOver):
                    await bulk._reject(step.letter)
                elif step is not None:
                    await bulk.add_raw(step.op, step.meta, step.source, context=step.context)
    return bulk.stats

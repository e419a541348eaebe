"""``BulkIndexer``: the threaded driver of the bulk engine.

::

    with BulkIndexer(client, index="logs", dead_letter="dlq.jsonl") as bulk:
        for doc in docs:
            bulk.index(doc, id=doc["id"])
    bulk.stats   # added == succeeded + dead_lettered

Every decision is made by :class:`~sturdysearch._core.bulk.engine.BulkEngine`, and what both
indexers do around it (requests, events, hooks, dead-letter records, stop conditions) by
:class:`~sturdysearch._core.bulk.session.BulkSession`; this module encodes documents in the
caller's thread (the common case of ``index`` inlined), runs ``workers`` sender threads and one
timer thread, and writes the dead-letter file. All engine calls happen under one condition
variable; sockets, file writes and hooks run outside it.

Who retries what. The indexer owns every retry of a bulk request: each request is sent with a
one-attempt retry policy (``RequestSpec.retry``), so the transport only picks a live node and
ejects failing ones, and a failure comes straight back to the engine, which knows per action
whether a resend is safe. Nothing is retried twice over by two layers, and
``stats.retried_requests`` / ``stats.retried_documents`` count every resend.

Stopping. When the engine stops the load (a failure every later document would meet, see
``_core/bulk/abort.py``), the thread that saw it sets ``_stopping`` in the same locked section,
so the producer's next ``index()`` raises the session's ``BulkAbortedError`` at once, also
when it was blocked on the memory bound.
"""

from __future__ import annotations

import atexit
import contextvars
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import orjson

from sturdysearch._core.bulk.config import BulkConfig, BulkStats
from sturdysearch._core.bulk.deadletter import DeadLetter, invalid, unserializable
from sturdysearch._core.bulk.encode import (
    LINE,
    action_line,
    default,
    encode_source,
    has_null,
    id_text,
    item_meta,
    source_line,
)
from sturdysearch._core.bulk.engine import DEAD, FULL, WAKE, Batch
from sturdysearch._core.bulk.session import (
    CarryOver,
    action,
    check_add_many,
    delete_action,
    raw_action,
    reject_meta,
    replay_step,
    update_action,
    with_context,
)
from sturdysearch._core.hints import hint_constructor_keywords
from sturdysearch._io.indexer import IndexerBase, show_client_type
from sturdysearch._io.replay import open_replay
from sturdysearch.errors import SerializationError, SturdySearchError, TransportError

if TYPE_CHECKING:
    from sturdysearch._sync.client import Client

logger = logging.getLogger("sturdysearch")
_monotonic = time.monotonic
_dumps = orjson.dumps

_INDEX_NO_ID = b'{"index":{}}\n'
_INDEX_ID = b'{"index":{"_id":'
_CREATE_ID = b'{"create":{"_id":'
_END_META = b"}}\n"

_open_indexers: weakref.WeakSet[BulkIndexer] = weakref.WeakSet()


def _close_forgotten() -> None:
    """At interpreter exit, flush indexers their owner forgot to close (with a warning),
    instead of losing what they buffer."""
    for indexer in list(_open_indexers):
        logger.warning(
            "a BulkIndexer was not closed before exit; closing it now (%d actions pending)",
            indexer.stats.pending,
        )
        try:
            indexer.close()
        except Exception:
            logger.exception("closing a forgotten BulkIndexer failed")


atexit.register(_close_forgotten)


@hint_constructor_keywords
class BulkIndexer(IndexerBase["Client"]):
    """Streams actions to ``_bulk`` in batches from ``workers`` threads, retries what may
    succeed later, and writes what will not to a dead-letter file, so that every action ends
    either applied or dead-lettered, within ``delivery_timeout``.

    ``client`` is a :class:`~sturdysearch.Client`; ``index`` the default index (actions may
    name their own). ``dead_letter`` is the dead-letter file (JSON lines, mode 0600, appended
    to if it exists, removed again if this indexer created it and nothing failed); default
    ``<index>-dead-letters-<time>-<pid>.jsonl`` in the working directory. It is opened here, so
    an unwritable path raises ``OSError`` before any document is taken.

    Hooks, called from the indexer's threads (keep them quick; an exception is logged and
    ignored): ``on_success(ItemResult)`` per applied action (costs a little per action: leave
    it unset for speed), ``on_failure(DeadLetter)`` per dead-lettered action, after it was
    written, ``on_progress(BulkStats)`` after every request and after dead letters are
    written (a request whose items were dead-lettered reports once, after them).

    ``refresh``, ``pipeline`` and ``params`` become query parameters of every request. The
    other options are the fields of :class:`BulkConfig` (batch size, workers, memory bound,
    timeouts, retries), as keywords or as ``config=``.

    Adding blocks while ``max_pending_bytes`` of actions await an outcome. ``close()`` (or
    leaving the ``with`` block, also on an exception or KeyboardInterrupt) sends what is
    buffered and waits for every outcome; a second KeyboardInterrupt while waiting
    dead-letters what was not sent yet, as ``aborted``.

    Raises, from the adding methods and ``close()``: ``DeadLetterError`` once the dead-letter
    file cannot be written (nothing more is taken); ``BulkAbortedError`` once a failure that
    every later document would meet stopped the load (no answer for ``abort_after`` seconds,
    credentials refused, an index that is invalid, missing with auto-create off, closed or
    read-only), after dead-lettering what it held, once each; per-document failures (mapping
    errors, version conflicts) are dead-lettered and the load goes on. Leaving a ``with``
    block with that error raises it once, with the final stats.
    Retries can reorder two writes of one id; use ``version_type=external`` or
    ``if_seq_no``/``if_primary_term`` (via ``meta=``) where the order matters.
    """

    def _start_driver(self) -> None:
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._room = threading.Condition(self._lock)
        """What the producer waits on while the memory bound is reached: woken with ``_cond``,
        except that the room an answer frees is announced only once the sender's next request
        is being written (``RequestSpec.on_send``), see ``_send``."""
        self._woken = threading.local()
        """``flag``: whether the sender's current request called ``on_send``."""
        self._stopping = False
        """Set once adding must raise: closed, aborted, stopped by a fatal error, or the
        dead-letter file failed (one flag, so the hot path checks one attribute)."""
        # The threads run in (a copy each of) the context the indexer was created in, as the
        # asyncio indexer's tasks do: a trace span current then is the parent of every batch
        # span, instead of each batch starting a trace of its own.
        context = contextvars.copy_context()
        self._threads = [
            threading.Thread(
                target=context.copy().run,
                args=(self._send_loop,),
                name=f"sturdysearch-bulk-{i}",
                daemon=True,
            )
            for i in range(self.config.workers)
        ]
        self._threads.append(
            threading.Thread(
                target=context.copy().run,
                args=(self._timer_loop,),
                name="sturdysearch-bulk-timer",
                daemon=True,
            )
        )
        for thread in self._threads:
            thread.start()
        _open_indexers.add(self)

    # -- public surface ----------------------------------------------------------------------

    @property
    def stats(self) -> BulkStats:
        """A consistent snapshot of the counters (see :class:`BulkStats`)."""
        with self._cond:
            return self._engine.stats()

    def __enter__(self) -> BulkIndexer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        # The producer failed: still give everything added so far its outcome, then let the
        # original exception propagate (an error from closing is logged, not raised over it;
        # the indexer's own BulkAbortedError, raised to the producer, is neither: it goes on
        # with the final stats).
        try:
            self._shutdown()
        except Exception:
            logger.exception("closing the BulkIndexer after %r failed", exc)
        with self._cond:
            error = self._session.stop_error()
        if error is not None and error is not exc:
            logger.error("closing the BulkIndexer after %r: %s", exc, error)

    def index(
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
        """Index (create or overwrite) ``document``. Without ``id`` the server generates one, and
        the action is not idempotent: if its request is lost it is dead-lettered as
        ``unknown`` rather than risk a duplicate. ``meta`` adds action metadata
        (``version``, ``version_type``, ``if_seq_no``...). Blocks while the memory bound is
        reached; a document that cannot be serialized is dead-lettered, not raised.

        ``context`` is never sent: it is the producer's note on the document (say
        ``{"file": "a.jsonl", "line": 42}``), written into its dead-letter record as
        ``context`` if it gets one, so that a failure can be traced back to its input."""
        # encode.source_line(), inlined: this is the path of almost every document.
        source: bytes | None = None
        if type(document) is dict:
            try:
                source = _dumps(document, default=default, option=LINE)
            except TypeError:
                source = None
            else:
                if has_null(source):
                    source = None  # a None, or a NaN orjson turned into null: look closer
        if source is None:
            try:
                source = encode_source(document) + b"\n"
            except SerializationError as exc:
                meta_ = item_meta(id, index, routing, meta)
                self._reject(unserializable("index", meta_, document, exc, context))
                return
        if index is not None or routing is not None or pipeline is not None or meta is not None:
            extra = {"pipeline": pipeline, **(meta or {})}
            action = action_line("index", item_meta(id, index, routing, extra))
            self._put(action + source, id is not None, context)
            return
        if id is None:
            line = _INDEX_NO_ID + source
        else:
            line = _INDEX_ID + _dumps(id if type(id) is str else id_text(id)) + _END_META + source
        if context is not None:
            self._put(line, id is not None, context)
            return
        # _put() inlined: this is the path of almost every document.
        with self._lock:
            if self._stopping:
                self._refuse()
            code = self._engine.add(line, id is not None, _monotonic())
            if code == WAKE:
                self._cond.notify_all()
                return
            if not code:
                return
        self._after_add(code, line, id is not None, None)

    def create(
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
        """Create ``document`` under ``id``; if the id exists the action is dead-lettered
        (409). ``id=None`` lets the server generate one (data streams), not idempotent.
        ``context``: as for :meth:`index`."""
        if id is not None and index is None and routing is None and pipeline is None and not meta:
            # The common case, without building a metadata dict (index() inlines more).
            try:
                source = source_line(document)
            except SerializationError as exc:
                meta_ = item_meta(id, None, None, None)
                self._reject(unserializable("create", meta_, document, exc, context))
                return
            self._put(_CREATE_ID + _dumps(id_text(id)) + _END_META + source, True, context)
            return
        self._add(action("create", document, id, index, routing, pipeline, meta), context)

    def update(
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
        """Partial update of document ``id`` with ``doc=`` (merged; idempotent) or ``script=``
        (not idempotent: lost requests dead-letter it as ``unknown``). ``context``: as for
        :meth:`index`."""
        self._add(
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

    def delete(
        self,
        id: Any,
        *,
        index: str | None = None,
        routing: str | None = None,
        meta: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """Delete document ``id`` (a missing document counts as success, ``not_found``).
        ``context``: as for :meth:`index`."""
        self._put(*delete_action(id, index, routing, meta), context)

    def reject(
        self,
        record: Any,
        reason: str,
        *,
        op: str = "index",
        id: Any = None,
        index: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """Dead-letter input that cannot become an action at all (a line that is not JSON, a
        record without the id an update needs), with ``reason``, instead of dropping it: it
        counts as added and dead-lettered (outcome ``invalid``), so the stats still account
        for every input record, and its record holds the input as given. ``op``, ``id`` and
        ``index`` say what it was meant to be (an id that is not a str or int is left out).
        Raises like the adding methods once the indexer is closed or stopped."""
        self._reject(
            invalid(op, reject_meta(id, index or self.default_index), record, reason, context)
        )

    def add_many(
        self,
        documents: Iterable[Any],
        *,
        id_field: str | None = None,
        op: str = "index",
    ) -> int:
        """Index (``op="create"``: create) every document of any iterable or generator, in its
        order, with the same blocking and dead-lettering as :meth:`index`. ``id_field`` names
        the field holding each document's id (it stays in the document). Returns how many
        were added."""
        check_add_many(op, id_field)
        add = self.index if op == "index" else self.create
        count = 0
        if id_field is None:
            for document in documents:
                add(document, None)
                count += 1
            return count
        for document in documents:
            add(document, document.get(id_field) if isinstance(document, Mapping) else None)
            count += 1
        return count

    def add_raw(
        self,
        op: str,
        meta: Mapping[str, Any],
        source: bytes | None,
        *,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue an action from parts already in JSON (``source`` is the document, or the update
        body, as JSON bytes; ``None`` for delete). Used by replay; checks the source.
        ``context``: as for :meth:`index`."""
        self._add(raw_action(op, meta, source), context)

    def flush(self) -> BulkStats:
        """Send what is buffered now and wait until every action added so far has its outcome.
        Returns the stats; raises like :meth:`close` when the indexer stopped."""
        with self._cond:
            if self._engine.seal():
                self._notify_all()
            while not self._session.flushed():
                self._cond.wait(1.0)
            stats = self._engine.stats()
        self._raise_if_stopped()
        return stats

    def close(self) -> BulkStats:
        """Send what is buffered, wait for every outcome, stop the threads, fsync and close the
        dead-letter file. Idempotent. Returns the final stats; raises ``DeadLetterError`` if
        dead letters could not be written, or the ``BulkAbortedError`` that stopped the load
        (with the final stats)."""
        self._shutdown()
        self._raise_if_stopped(closing=True)
        return self.stats

    def _shutdown(self) -> None:
        """``close()`` but for raising why the indexer stopped."""
        with self._cond:
            self._closed = self._stopping = True
            self._engine.close_input()
            self._notify_all()
        if self._finished:
            return
        try:
            self._join()
        except KeyboardInterrupt:
            self.abort("interrupted while closing")
            self._join()
            raise
        finally:
            self._finish()

    def abort(self, reason: str = "aborted") -> None:
        """Stop sending: what is not in flight is dead-lettered now as ``aborted``, requests in
        flight finish (within their timeout) and are not retried. Call ``close()`` after."""
        with self._cond:
            self._closed = self._stopping = True
            self._engine.abort(reason)
            letters = self._engine.drain()
            self._notify_all()
        self._write_dead(letters)

    # -- producer side -----------------------------------------------------------------------

    def _add(
        self, encoded: tuple[bytes, bool] | DeadLetter, context: Mapping[str, Any] | None = None
    ) -> None:
        if isinstance(encoded, DeadLetter):
            self._reject(encoded if context is None else with_context(encoded, context))
        else:
            self._put(*encoded, context)

    def _put(self, line: bytes, safe: bool, context: Mapping[str, Any] | None = None) -> None:
        """Hand one encoded action to the engine."""
        with self._lock:
            if self._stopping:
                self._refuse()
            code = self._engine.add(line, safe, _monotonic())
            if context is not None and code != FULL:
                self._engine.attach(line, code, context)
            if code == WAKE:
                self._cond.notify_all()
                return
            if not code:
                return
        self._after_add(code, line, safe, context)

    def _after_add(
        self, code: int, line: bytes, safe: bool, context: Mapping[str, Any] | None
    ) -> None:
        """The rare outcomes of ``engine.add``: no room (wait, then add), dead-lettered."""
        with self._lock:
            if code == FULL:
                code = self._add_when_room(line, safe)
                if context is not None:
                    self._engine.attach(line, code, context)
                if code == WAKE:
                    self._cond.notify_all()
            if code != DEAD:
                return
            letters = self._engine.drain()
        self._write_dead(letters)

    def _add_when_room(self, line: bytes, safe: bool) -> int:
        """Block (holding the condition) until the memory bound takes ``line``, then add it."""
        engine = self._engine
        while True:
            if engine.seal_if_idle():
                self._cond.notify_all()
            self._room.wait(1.0)
            if self._stopping:
                self._refuse()
            code = engine.add(line, safe, _monotonic())
            if code != FULL:
                return code

    def _refuse(self) -> None:
        """Raise why nothing more is taken (called with the lock held)."""
        self._lock.release()
        try:
            self._raise_if_stopped()
        finally:
            self._lock.acquire()
        raise self._session.closed_error()

    def _reject(self, letter: DeadLetter) -> None:
        """Dead-letter ``letter`` without sending it (it cannot be)."""
        with self._cond:
            if self._closed:
                raise self._session.closed_error()
            self._engine.reject(letter)
            letters = self._engine.drain()
        self._write_dead(letters)
        self._raise_if_stopped()

    def _carry_over(self, letter: DeadLetter) -> None:
        """Account for a dead-letter record that a replay does not send again: it goes to
        this indexer's dead-letter file as ``session.carried_over`` rebuilt it."""
        with self._lock:
            if self._stopping:
                self._refuse()
            self._engine.reject(letter)
            letters = self._engine.drain()
        self._write_dead(letters)

    # -- threads -----------------------------------------------------------------------------

    def _timer_loop(self) -> None:
        cond = self._cond
        engine = self._engine
        session = self._session
        while True:
            with cond:
                if engine.finished:
                    self._notify_all()
                    return
                now = _monotonic()
                if engine.tick(now):
                    if engine.aborted is not None:
                        self._stopping = True  # stopped by time: no answer for abort_after
                    self._notify_all()
                stop = session.new_stop()
                letters = engine.drain() if engine.outbox else []
                if not letters and stop is None:
                    cond.wait(engine.next_wakeup(now))
            session.announce(stop)
            if letters:
                self._write_dead(letters)

    def _send_loop(self) -> None:
        cond = self._cond
        engine = self._engine
        batch: Batch | None = None
        timeout = 0.0
        while True:
            if batch is None:
                with cond:
                    while True:
                        now = _monotonic()
                        batch = engine.take(now)
                        if batch is not None:
                            timeout = engine.request_timeout(batch, now)
                            break
                        if engine.finished:
                            self._notify_all()
                            return
                        cond.wait()
            batch, timeout = self._send(batch, timeout)

    def _send(self, batch: Batch, timeout: float) -> tuple[Batch | None, float]:
        """Send ``batch``, settle its outcome, and return the next batch to send (taken while
        settling) with its timeout, or ``(None, 0.0)``.

        Scheduling around the GIL: the producer fills a batch in one burst of several
        milliseconds of Python, and a thread that gives up the GIL (a lock wait, a syscall)
        while another one runs gets it back only after the interpreter's switch interval
        (5 ms). So between an answer and the next request this sender must not give the
        producer a chance to run: it takes the next batch in the same locked section in which
        it settles, and the producer, waiting for the room that answer freed, is woken only
        from ``on_send``, once the connection is held and the request is about to be written;
        after that, waiting for the GIL costs nothing, as the server is busy with the request.
        """
        session = self._session
        started = _monotonic()
        scope = session.batch_scope(batch, started)
        spec = session.request(batch, timeout, scope, self._wake_producer)
        self._woken.flag = False
        body: Any = None
        failure: SturdySearchError | None = None
        try:
            body = self._client.perform(spec).body
        except SturdySearchError as exc:
            failure = exc
        except Exception as exc:  # a bug below us must not strand the batch: treat it as lost
            logger.exception("bulk request failed unexpectedly")
            failure = TransportError(f"unexpected {type(exc).__name__}: {exc}")
        with self._cond:
            now = _monotonic()
            engine = self._engine
            settlement = session.settle(batch, body, failure, now, random.random())
            if engine.aborted is not None:
                self._stopping = True
            stop = session.new_stop()
            letters = engine.drain()
            stats = session.progress_stats()
            # The next batch, before anyone else can run (see above).
            following = engine.take(now)
            following_timeout = (
                engine.request_timeout(following, now) if following is not None else 0.0
            )
            self._cond.notify_all()
            if following is None or not self._woken.flag:
                # Nothing more to send, or the request never reached ``on_send`` (it failed
                # before, or a client that does not call it): wake the producer now.
                self._room.notify_all()
            # else the producer hears of the room when ``following`` is being written
        session.announce(stop)
        if letters:
            self._write_dead(letters)  # its on_progress, after the letters, covers the request
        else:
            session.progress(stats)
        session.batch_done(batch, settlement, failure, scope, started, now)
        return following, following_timeout

    def _wake_producer(self) -> None:
        """``on_send`` of every request: wake the producer (see ``_send``)."""
        self._woken.flag = True
        with self._lock:
            self._room.notify_all()

    def _notify_all(self) -> None:
        """Wake every waiting thread (called with the lock held)."""
        self._cond.notify_all()
        self._room.notify_all()

    # -- outcomes ----------------------------------------------------------------------------

    def _write_dead(self, letters: list[DeadLetter]) -> None:
        if not letters:
            return
        session = self._session
        records = session.records(letters, time.time())
        written = True
        try:
            if session.dl_error is not None:
                raise session.dl_error
            self._dead_letters.write(records)
        except OSError as exc:
            written = False
            with self._cond:
                session.write_failed(exc, records)
                self._stopping = True
                self._notify_all()
        stats = None
        if written:
            with self._cond:
                self._engine.dead_letters_written(len(letters))
                stats = session.progress_stats()
                self._notify_all()
        session.letters_done(letters, written, stats, _monotonic())

    # -- stopping ----------------------------------------------------------------------------

    def _join(self) -> None:
        for thread in self._threads:
            while thread.is_alive():
                thread.join(0.5)

    def _finish(self) -> None:
        """The end of the one shutdown: every caller of ``close()`` may get here (joining is
        idempotent), the first one closes the dead-letter file and reports ``bulk.closed``."""
        with self._cond:
            if self._finished:
                return
            self._finished = True
        _open_indexers.discard(self)
        try:
            self._dead_letters.close()
        except OSError as exc:
            with self._cond:
                if self._session.dl_error is None:
                    self._session.dl_error = exc
        self._session.closed(self.stats, _monotonic())

    def _raise_if_stopped(self, *, closing: bool = False) -> None:
        if self._session.dl_error is None and self._engine.stopped_by is None:
            return
        with self._cond:
            error = self._session.stop_error()
        if error is not None:
            # The same BulkAbortedError every time: without its old traceback, so that raising
            # it again does not pile up the frames of every earlier raise.
            raise error.with_traceback(None)


show_client_type(BulkIndexer, "Client")


def bulk_index(
    client: Client,
    documents: Iterable[Any],
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
    """Index every document of an iterable or generator through a :class:`BulkIndexer` and
    return its final stats; ``config=`` is the indexer's. Documents that fail end in the
    dead-letter file (``stats.dead_lettered``), so check the stats. Raises
    ``BulkAbortedError`` (its ``stats`` final) when a failure every document would meet stopped
    the load; the generator is then not read further."""
    with BulkIndexer(
        client,
        index,
        dead_letter=dead_letter,
        config=config,
        refresh=refresh,
        pipeline=pipeline,
        on_progress=on_progress,
    ) as bulk:
        bulk.add_many(documents, id_field=id_field, op=op)
    return bulk.stats


def replay_dead_letters(
    client: Client,
    path: str | os.PathLike[str],
    *,
    dead_letter: str | os.PathLike[str] | None = None,
    skip_outcomes: Iterable[str] = (),
    config: BulkConfig | None = None,
    on_progress: Callable[[BulkStats], None] | None = None,
) -> BulkStats:
    """Send the actions of dead-letter file ``path`` again; what still fails goes to the new
    dead-letter file ``dead_letter`` (default: ``<path>.replay-<time>.jsonl``), never back into
    ``path``. Records whose outcome is in ``skip_outcomes`` (e.g. ``{"unknown"}``, whose
    actions may already have been applied once) and records that cannot be sent (a document
    that could not be serialized) are copied to the new file unchanged in substance.
    ``config=`` is the :class:`BulkIndexer`'s. Returns its final stats; raises
    ``BulkAbortedError`` like :func:`bulk_index`."""
    source_path, target, lines = open_replay(path, dead_letter)
    skip = frozenset(skip_outcomes)
    with (
        lines,
        BulkIndexer(
            client, None, dead_letter=target, config=config, on_progress=on_progress
        ) as bulk,
    ):
        for number, raw in enumerate(lines, 1):
            step = replay_step(raw, number, source_path, skip)
            if isinstance(step, CarryOver):
                bulk._carry_over(step.letter)
            elif step is not None:
                bulk.add_raw(step.op, step.meta, step.source, context=step.context)
    return bulk.stats

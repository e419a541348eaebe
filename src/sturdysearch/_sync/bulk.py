"""``BulkIndexer``: the threaded driver of the bulk engine.

::

    with BulkIndexer(client, index="logs", dead_letter="dlq.jsonl") as bulk:
        for doc in docs:
            bulk.index(doc, id=doc["id"])
    bulk.stats   # added == succeeded + dead_lettered

Every decision is made by :class:`~sturdysearch._core.bulk.engine.BulkEngine`; this module
encodes documents in the caller's thread, runs ``workers`` sender threads and one timer thread,
writes the dead-letter file and calls the hooks. All engine calls happen under one condition
variable; sockets, file writes and hooks run outside it.

Who retries what. The indexer owns every retry of a bulk request: each request is sent with a
one-attempt retry policy (``RequestSpec.retry``), so the transport only picks a live node and
ejects failing ones, and a failure comes straight back to the engine, which knows per action
whether a resend is safe. Nothing is retried twice over by two layers, and ``stats.retried``
counts every resend.
"""

from __future__ import annotations

import atexit
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
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
    LINE,
    action_line,
    default,
    encode_source,
    has_null,
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
    ConfigError,
    SerializationError,
    SturdySearchError,
    TransportError,
)

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
class BulkIndexer:
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
    written, ``on_progress(BulkStats)`` after every request.

    ``refresh``, ``pipeline`` and ``params`` become query parameters of every request. The
    other options are the fields of :class:`BulkConfig` (batch size, workers, memory bound,
    timeouts, retries), as keywords or as ``config=``.

    Adding blocks while ``max_pending_bytes`` of actions await an outcome. ``close()`` (or
    leaving the ``with`` block, also on an exception or KeyboardInterrupt) sends what is
    buffered and waits for every outcome; a second KeyboardInterrupt while waiting
    dead-letters what was not sent yet, as ``aborted``.

    Raises, from the adding methods and ``close()``: ``DeadLetterError`` once the dead-letter
    file cannot be written (nothing more is taken); the ``ApiError`` or ``TLSError`` that
    stopped the indexer (401, 403, a TLS failure), after dead-lettering what it held.
    Retries can reorder two writes of one id; use ``version_type=external`` or
    ``if_seq_no``/``if_primary_term`` (via ``meta=``) where the order matters.
    """

    def __init__(
        self,
        client: Client,
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
        self.config = make_config("BulkIndexer", config, options)
        self.default_index = index
        self._client = client
        self._tracer = client.tracer
        self._path = bulk_path(index)
        self._params = bulk_params(self.config, refresh, pipeline, params)
        self._on_success = on_success
        self._on_failure = on_failure
        self._on_progress = on_progress
        self._engine = BulkEngine(self.config, collect_successes=on_success is not None)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._room = threading.Condition(self._lock)
        """What the producer waits on while the memory bound is reached: woken with ``_cond``,
        except that the room an answer frees is announced only once the sender's next request
        is being written (``RequestSpec.on_send``), see ``_send``."""
        self._woken = threading.local()
        """``flag``: whether the sender's current request called ``on_send``."""
        self._dead_letters = DeadLetterFile(dead_letter or default_path(index))
        self._dl_log = DeadLetterLog(self._dead_letters.path, self._tracer.dead_letter_log_interval)
        self._dl_error: OSError | None = None
        self._unwritten: list[bytes] = []
        self._closed = False
        self._stopping = False
        """Set once adding must raise: closed, aborted, stopped by a fatal error, or the
        dead-letter file failed (one flag, so the hot path checks one attribute)."""
        self._started = _monotonic()
        self._threads = [
            threading.Thread(target=self._send_loop, name=f"sturdysearch-bulk-{i}", daemon=True)
            for i in range(self.config.workers)
        ]
        self._threads.append(
            threading.Thread(target=self._timer_loop, name="sturdysearch-bulk-timer", daemon=True)
        )
        for thread in self._threads:
            thread.start()
        _open_indexers.add(self)

    # -- public surface ----------------------------------------------------------------------

    @property
    def dead_letter_path(self) -> str:
        return self._dead_letters.path

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
        # original exception propagate (an error from closing is logged, not raised over it).
        try:
            self.close()
        except Exception:
            logger.exception("closing the BulkIndexer after %r failed", exc)

    def index(
        self,
        document: Any,
        id: Any = None,
        *,
        index: str | None = None,
        routing: str | None = None,
        pipeline: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """Index (create or overwrite) ``document``. Without ``id`` the server generates one, and
        the action is not idempotent: if its request is lost it is dead-lettered as
        ``unknown`` rather than risk a duplicate. ``meta`` adds action metadata
        (``version``, ``version_type``, ``if_seq_no``...). Blocks while the memory bound is
        reached; a document that cannot be serialized is dead-lettered, not raised."""
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
                self._unserializable("index", item_meta(id, index, routing, meta), document, exc)
                return
        if index is not None or routing is not None or pipeline is not None or meta is not None:
            extra = {"pipeline": pipeline, **(meta or {})}
            action = action_line("index", item_meta(id, index, routing, extra))
            self._put(action + source, id is not None)
            return
        if id is None:
            line = _INDEX_NO_ID + source
        else:
            line = _INDEX_ID + _dumps(id if type(id) is str else id_text(id)) + _END_META + source
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
        self._after_add(code, line, id is not None)

    def create(
        self,
        document: Any,
        id: Any,
        *,
        index: str | None = None,
        routing: str | None = None,
        pipeline: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """Create ``document`` under ``id``; if the id exists the action is dead-lettered
        (409). ``id=None`` lets the server generate one (data streams), not idempotent."""
        try:
            source = source_line(document)
        except SerializationError as exc:
            self._unserializable("create", item_meta(id, index, routing, meta), document, exc)
            return
        if id is not None and index is None and routing is None and pipeline is None and not meta:
            self._put(_CREATE_ID + _dumps(id_text(id)) + _END_META + source, True)
            return
        extra = {"pipeline": pipeline, **(meta or {})}
        action = action_line("create", item_meta(id, index, routing, extra))
        self._put(action + source, id is not None)

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
    ) -> None:
        """Partial update of document ``id`` with ``doc=`` (merged; idempotent) or ``script=``
        (not idempotent: lost requests dead-letter it as ``unknown``)."""
        if id is None:
            raise ValueError("update needs an id")
        body = update_body(doc, script, upsert, doc_as_upsert, scripted_upsert)
        extra = {"retry_on_conflict": retry_on_conflict, **(meta or {})}
        metadata = item_meta(id, index, routing, extra)
        try:
            source = source_line(body)
        except SerializationError as exc:
            self._unserializable("update", metadata, body, exc)
            return
        self._put(action_line("update", metadata) + source, script is None)

    def delete(
        self,
        id: Any,
        *,
        index: str | None = None,
        routing: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """Delete document ``id`` (a missing document counts as success, ``not_found``)."""
        if id is None:
            raise ValueError("delete needs an id")
        self._put(action_line("delete", item_meta(id, index, routing, meta)), True)

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
        if op not in ("index", "create"):
            raise ValueError(f"add_many supports op='index' or op='create', not {op!r}")
        add = self.index if op == "index" else self.create
        count = 0
        if id_field is None:
            if op == "create":
                raise ValueError("op='create' needs id_field=")
            for document in documents:
                add(document, None)
                count += 1
            return count
        for document in documents:
            add(document, document.get(id_field) if isinstance(document, Mapping) else None)
            count += 1
        return count

    def add_raw(self, op: str, meta: Mapping[str, Any], source: bytes | None) -> None:
        """Queue an action from parts already in JSON (``source`` is the document, or the update
        body, as JSON bytes; ``None`` for delete). Used by replay; checks the source."""
        if op == "delete":
            self._put(action_line("delete", meta), True)
            return
        if source is None:
            raise ValueError(f"a {op} action needs a source")
        try:
            body = encode_source(source)
        except SerializationError as exc:
            self._unserializable(op, meta, source, exc)
            return
        if op == "update":
            safe = b'"script"' not in body[:4096] or "script" not in orjson.loads(body)
        else:
            safe = "_id" in meta
        self._put(action_line(op, meta) + body + b"\n", safe)

    def flush(self) -> BulkStats:
        """Send what is buffered now and wait until every action added so far has its outcome.
        Returns the stats; raises like :meth:`close` when the indexer stopped."""
        with self._cond:
            if self._engine.seal():
                self._notify_all()
            while self._engine.pending and self._dl_error is None:
                if self._engine.finished and not self._engine.outbox:
                    break
                self._cond.wait(1.0)
            stats = self._engine.stats()
        self._raise_if_stopped()
        return stats

    def close(self) -> BulkStats:
        """Send what is buffered, wait for every outcome, stop the threads, fsync and close the
        dead-letter file. Idempotent. Returns the final stats; raises ``DeadLetterError`` if
        dead letters could not be written, or the error that stopped the indexer."""
        with self._cond:
            first = not self._closed
            self._closed = self._stopping = True
            self._engine.close_input()
            self._notify_all()
        if first:
            try:
                self._join()
            except KeyboardInterrupt:
                self.abort("interrupted while closing")
                self._join()
                raise
            finally:
                self._finish()
        self._raise_if_stopped(closing=True)
        return self.stats

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

    def _put(self, line: bytes, safe: bool) -> None:
        """Hand one encoded action to the engine."""
        with self._lock:
            if self._stopping:
                self._refuse()
            code = self._engine.add(line, safe, _monotonic())
            if code == WAKE:
                self._cond.notify_all()
                return
            if not code:
                return
        self._after_add(code, line, safe)

    def _after_add(self, code: int, line: bytes, safe: bool) -> None:
        """The rare outcomes of ``engine.add``: no room (wait, then add), dead-lettered."""
        with self._lock:
            if code == FULL:
                code = self._add_when_room(line, safe)
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
        raise RuntimeError("this BulkIndexer is closed; create a new one")

    def _unserializable(
        self, op: str, meta: Mapping[str, Any], document: Any, exc: SerializationError
    ) -> None:
        letter = unserializable(op, meta, document, exc)
        with self._cond:
            if self._closed:
                raise RuntimeError("this BulkIndexer is closed; create a new one")
            self._engine.reject(letter)
            letters = self._engine.drain()
        self._write_dead(letters)
        self._raise_if_stopped()

    def _carry_over(self, raw: bytes, why: str) -> None:
        """Account for a dead-letter record that is not sent again: it goes to this indexer's
        dead-letter file as it was, with ``why`` in front of its reason."""
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            record = None
        if not isinstance(record, dict):
            record = {"reason": "", "document_repr": raw[:2000].decode("utf-8", "replace")}
        action = record.get("action")
        if not isinstance(action, dict) or len(action) != 1:
            action = {}
        document = record.get("document")
        line = None
        if action and next(iter(action)) == "delete":
            line = _dumps(action) + b"\n"
        elif action and isinstance(document, dict):
            line = _dumps(action) + b"\n" + _dumps(document) + b"\n"
        status, error_type, attempts = (
            record.get("status"),
            record.get("error_type"),
            record.get("attempts"),
        )
        letter = DeadLetter(
            line,
            str(record.get("outcome") or "rejected"),
            f"{why}; before: {record.get('reason') or ''}",
            status=status if isinstance(status, int) else None,
            error_type=error_type if isinstance(error_type, str) else None,
            attempts=attempts if isinstance(attempts, int) else 0,
            action=action if line is None else None,
            document_repr=None if line is not None else str(record.get("document_repr")),
        )
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
        while True:
            with cond:
                if engine.finished:
                    self._notify_all()
                    return
                now = _monotonic()
                if engine.tick(now):
                    self._notify_all()
                letters = engine.drain() if engine.outbox else []
                if not letters:
                    cond.wait(engine.next_wakeup(now))
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
            on_send=self._wake_producer,
            decode=decode_answer,
            parent=scope,
        )
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
            if failure is None:
                settlement = engine.settle_answer(batch, body, now, random.random())
            else:
                settlement = engine.settle_error(batch, failure, now, random.random())
            if engine.aborted is not None:
                self._stopping = True
            letters = engine.drain()
            stats = engine.stats() if self._on_progress is not None else None
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
        if letters:
            self._write_dead(letters)
        if scope is not None or self._tracer.active:
            event = batch_event(batch, settlement, failure, now - started)
            if scope is not None:
                scope.ended(now, event)
            self._tracer.emit("bulk.batch", **event)
        if settlement.successes and self._on_success is not None:
            for item in item_results(settlement, self.default_index):
                self._hook(self._on_success, item)
        if stats is not None:
            self._hook(self._on_progress, stats)
        return following, following_timeout

    def _batch_scope(self, batch: Batch, now: float) -> BatchScope | None:
        if not self._tracer.instruments:
            return None
        return self._tracer.batch_scope(
            kind=batch.kind, actions=len(batch), nbytes=batch.nbytes, now=now
        )

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
        at = time.time()
        records = [encode_record(letter, index=self.default_index, at=at) for letter in letters]
        failed = False
        try:
            if self._dl_error is not None:
                raise self._dl_error
            self._dead_letters.write(records)
        except OSError as exc:
            failed = True
            with self._cond:
                if self._dl_error is None:
                    self._dl_error = exc
                    self._stopping = True
                    logger.error(
                        "cannot write the dead-letter file %s (%s): the BulkIndexer stops "
                        "taking documents",
                        self._dead_letters.path,
                        exc,
                    )
                self._unwritten.extend(records)
                self._notify_all()
        stats = None
        if not failed:
            with self._cond:
                self._engine.dead_letters_written(len(letters))
                if self._on_progress is not None:
                    stats = self._engine.stats()
                self._notify_all()
        summary = self._dl_log.add(letters, _monotonic())
        if summary is not None:
            self._tracer.emit("bulk.dead_letter_summary", **summary)
        if self._tracer.active:
            outcomes: dict[str, int] = {}
            for letter in letters:
                outcomes[letter.outcome] = outcomes.get(letter.outcome, 0) + 1
            self._tracer.emit(
                "bulk.dead_letter", count=len(letters), outcomes=outcomes, written=not failed
            )
        if self._on_failure is not None:
            for letter in letters:
                self._hook(self._on_failure, letter)
        if stats is not None:
            self._hook(self._on_progress, stats)

    def _hook(self, hook: Callable[[Any], None] | None, value: Any) -> None:
        if hook is None:
            return
        try:
            hook(value)
        except Exception:
            logger.exception("BulkIndexer hook %r failed", hook)

    # -- stopping ----------------------------------------------------------------------------

    def _join(self) -> None:
        for thread in self._threads:
            while thread.is_alive():
                thread.join(0.5)

    def _finish(self) -> None:
        _open_indexers.discard(self)
        try:
            self._dead_letters.close()
        except OSError as exc:
            with self._cond:
                if self._dl_error is None:
                    self._dl_error = exc
        summary = self._dl_log.closing(_monotonic())
        if summary is not None:
            self._tracer.emit("bulk.dead_letter_summary", **summary)
        if self._tracer.active:
            stats = self.stats
            self._tracer.emit(
                "bulk.closed",
                seconds=_monotonic() - self._started,
                **{f.name: getattr(stats, f.name) for f in fields(BulkStats)},
            )

    def _raise_if_stopped(self, *, closing: bool = False) -> None:
        if self._dl_error is not None:
            with self._cond:
                records = list(self._unwritten)
            raise dead_letter_error(self._dead_letters.path, self._dl_error, records) from (
                self._dl_error
            )
        fatal = self._engine.fatal
        if fatal is not None:
            raise fatal


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
    dead-letter file (``stats.dead_lettered``), so check the stats."""
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
    ``config=`` is the :class:`BulkIndexer`'s. Returns its final stats."""
    from sturdysearch._core.bulk.deadletter import BadRecord, decode_record

    source_path = os.fspath(path)
    if dead_letter is None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        dead_letter = f"{source_path}.replay-{stamp}.jsonl"
    if os.path.abspath(os.fspath(dead_letter)) == os.path.abspath(source_path):
        raise ConfigError("the replay's dead-letter file must not be the file being replayed")
    skip = frozenset(skip_outcomes)
    with (
        open(source_path, "rb") as records,
        BulkIndexer(
            client, None, dead_letter=dead_letter, config=config, on_progress=on_progress
        ) as bulk,
    ):
        for number, raw in enumerate(records, 1):
            if not raw.strip():
                continue
            try:
                op, meta, document, record = decode_record(raw)
            except BadRecord as exc:
                bulk._carry_over(raw, f"line {number} of {source_path} cannot be replayed: {exc}")
                continue
            if record.get("outcome") in skip:
                bulk._carry_over(raw, f"skipped: outcome {record.get('outcome')!r}")
                continue
            body = None if document is None else _dumps(document)
            bulk.add_raw(op, meta, body)
    return bulk.stats

"""One bulk load as both indexers run it, minus the waiting.

``BulkSession`` holds what the threaded :class:`~sturdysearch.BulkIndexer` and the asyncio
:class:`~sturdysearch.AsyncBulkIndexer` do between two waits: the engine that decides, the
request of a batch, its trace scope and settlement, the events and hooks after a request and
after dead letters, the dead-letter summaries, the stop conditions and the error that stops
the indexer (``BulkAbortedError`` once the engine stopped the load, see ``abort.py``). The
drivers keep threads or tasks, locks or conditions, sleeping and I/O (the request, and the
dead-letter file). One copy here, so that a change, an event or a hook reaches
both drivers alike; ``tests/unit/test_bulk_session.py`` pins what a driver must do with it.

It also turns actions into lines (``action``, ``raw_action``) and dead-letter records into
what a replay sends again or carries over (``replay_step``, ``carried_over``).

Nothing here locks: the blocking driver calls the methods that touch the engine under its
lock, and calls the ones that run hooks (``batch_done``, ``letters_done``, ``progress``)
outside it; the asyncio driver touches the engine only between two awaits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import orjson

from sturdysearch._core.bulk.abort import Stop
from sturdysearch._core.bulk.answer import decode_answer
from sturdysearch._core.bulk.config import BulkConfig, BulkStats, ItemResult
from sturdysearch._core.bulk.deadletter import (
    BadRecord,
    DeadLetter,
    decode_record,
    encode_record,
    unserializable,
)
from sturdysearch._core.bulk.driving import (
    ONE_ATTEMPT,
    DeadLetterLog,
    batch_event,
    bulk_params,
    bulk_path,
    dead_letter_error,
    item_results,
)
from sturdysearch._core.bulk.encode import (
    action_line,
    encode_source,
    id_text,
    item_meta,
    source_line,
    update_body,
)
from sturdysearch._core.bulk.engine import Batch, BulkEngine, Settlement
from sturdysearch._core.events import Tracer
from sturdysearch._core.observe import BatchScope
from sturdysearch._core.request import RequestSpec
from sturdysearch.errors import BulkAbortedError, SerializationError, SturdySearchError

logger = logging.getLogger("sturdysearch")

_dumps = orjson.dumps
_STATS_FIELDS = tuple(f.name for f in fields(BulkStats))

Hook = Callable[[Any], None]


class BulkSession:
    """The state and decisions of one indexer's load (see the module docstring)."""

    def __init__(
        self,
        owner: str,
        tracer: Tracer,
        config: BulkConfig,
        *,
        index: str | None,
        refresh: bool | str | None,
        pipeline: str | None,
        params: Mapping[str, Any] | None,
        on_success: Callable[[ItemResult], None] | None,
        on_failure: Callable[[DeadLetter], None] | None,
        on_progress: Callable[[BulkStats], None] | None,
        dead_letter_path: str,
        now: float,
    ) -> None:
        self.owner = owner
        """The indexer's class name, for messages."""
        self.tracer = tracer
        self.config = config
        self.default_index = index
        self.engine = BulkEngine(config, collect_successes=on_success is not None, index=index)
        self.path = bulk_path(index)
        self.params = bulk_params(config, refresh, pipeline, params)
        self.on_success = on_success
        self.on_failure = on_failure
        self.on_progress = on_progress
        self.dead_letter_path = dead_letter_path
        self.dl_log = DeadLetterLog(dead_letter_path, tracer.dead_letter_log_interval)
        self.dl_error: OSError | None = None
        """Set once the dead-letter file failed: the indexer stops taking documents."""
        self.unwritten: list[bytes] = []
        """Dead-letter records that could not be written, for ``DeadLetterError.records``."""
        self.started = now
        self._aborted: BulkAbortedError | None = None
        """What the indexer raises once the engine stopped the load: one object, raised by the
        adding methods and by ``close()``, so that a ``with`` block reports it once."""
        self._announced = False

    # -- a request ---------------------------------------------------------------------------

    def request(
        self, batch: Batch, timeout: float, scope: BatchScope | None, on_send: Callable[[], None]
    ) -> RequestSpec:
        """The ``_bulk`` request of ``batch``: one attempt (the engine decides about the next
        one), the answer decoded for the engine, ``on_send`` called as it is written."""
        return RequestSpec(
            "POST",
            self.path,
            params=self.params,
            body=b"".join(batch.lines),
            idempotent=batch.idempotent,
            timeout=timeout,
            long_running=True,
            content_type="application/x-ndjson",
            retry=ONE_ATTEMPT,
            on_send=on_send,
            decode=decode_answer,
            parent=scope,
        )

    def batch_scope(self, batch: Batch, now: float) -> BatchScope | None:
        """The instruments' scope of ``batch`` (``None`` when nobody traces bulk requests)."""
        if not self.tracer.instruments:
            return None
        return self.tracer.batch_scope(
            kind=batch.kind, actions=len(batch), nbytes=batch.nbytes, now=now
        )

    def settle(
        self,
        batch: Batch,
        body: Any,
        failure: SturdySearchError | None,
        now: float,
        rand: float,
    ) -> Settlement:
        """Hand the request's answer (or its failure) to the engine."""
        if failure is None:
            return self.engine.settle_answer(batch, body, now, rand)
        return self.engine.settle_error(batch, failure, now, rand)

    def batch_done(
        self,
        batch: Batch,
        settlement: Settlement,
        failure: SturdySearchError | None,
        scope: BatchScope | None,
        started: float,
        now: float,
    ) -> None:
        """After a request was settled (outside any lock): its ``bulk.batch`` event and scope,
        then ``on_success`` per applied action."""
        if scope is not None or self.tracer.active:
            event = batch_event(batch, settlement, failure, now - started)
            if scope is not None:
                scope.ended(now, event)
            self.tracer.emit("bulk.batch", **event)
        if settlement.silence and failure is not None:
            # Said at once: without it a load against an unreachable cluster is silent until
            # it stops.
            self.tracer.emit(
                "bulk.unanswered",
                error=type(failure).__name__,
                message=str(failure)[:300],
                abort_after=self.config.abort_after,
            )
        if settlement.successes and self.on_success is not None:
            for item in item_results(settlement, self.default_index):
                self.hook(self.on_success, item)

    # -- dead letters ------------------------------------------------------------------------

    def records(self, letters: list[DeadLetter], at: float) -> list[bytes]:
        """The dead-letter file's lines for ``letters`` (``at``: wall-clock seconds)."""
        return [encode_record(letter, index=self.default_index, at=at) for letter in letters]

    def write_failed(self, exc: OSError, records: list[bytes]) -> None:
        """The dead-letter file refused ``records``: keep them, and on the first failure say
        that the indexer stops taking documents."""
        if self.dl_error is None:
            self.dl_error = exc
            logger.error(
                "cannot write the dead-letter file %s (%s): the %s stops taking documents",
                self.dead_letter_path,
                exc,
                self.owner,
            )
        self.unwritten.extend(records)

    def letters_done(
        self, letters: list[DeadLetter], written: bool, stats: BulkStats | None, now: float
    ) -> None:
        """After ``letters`` were written (or failed to be), outside any lock: the rate-limited
        WARNING summary, the ``bulk.dead_letter`` event, ``on_failure`` per letter, then
        ``on_progress`` with ``stats`` (taken when the letters were counted)."""
        summary = self.dl_log.add(letters, now)
        if summary is not None:
            self.tracer.emit("bulk.dead_letter_summary", **summary)
        if self.tracer.active:
            outcomes: dict[str, int] = {}
            for letter in letters:
                outcomes[letter.outcome] = outcomes.get(letter.outcome, 0) + 1
            self.tracer.emit(
                "bulk.dead_letter", count=len(letters), outcomes=outcomes, written=written
            )
        if self.on_failure is not None:
            for letter in letters:
                self.hook(self.on_failure, letter)
        self.progress(stats)

    # -- progress, hooks ---------------------------------------------------------------------

    def progress_stats(self) -> BulkStats | None:
        """The stats for ``on_progress``, if it is set (take them where they are consistent)."""
        return self.engine.stats() if self.on_progress is not None else None

    def progress(self, stats: BulkStats | None) -> None:
        if stats is not None and self.on_progress is not None:
            self.hook(self.on_progress, stats)

    def hook(self, hook: Hook, value: Any) -> None:
        """Call a user's hook; an exception is logged and ignored (the load goes on)."""
        try:
            hook(value)
        except Exception:
            logger.exception("%s hook %r failed", self.owner, hook)

    # -- stopping ----------------------------------------------------------------------------

    @property
    def stopped(self) -> bool:
        """Whether adding must raise: the file failed, or the engine stopped (the load was
        stopped by a systemic failure, or aborted)."""
        return self.dl_error is not None or self.engine.aborted is not None

    def flushed(self) -> bool:
        """Whether ``flush()`` may return: every action added so far has its outcome (dead
        letters written), or the dead-letter file failed and nothing more will be."""
        return not self.engine.pending or self.dl_error is not None

    def closed(self, stats: BulkStats, now: float) -> None:
        """The load is over: the closing summary of its dead letters, and ``bulk.closed``."""
        summary = self.dl_log.closing(now)
        if summary is not None:
            self.tracer.emit("bulk.dead_letter_summary", **summary)
        if self.tracer.active:
            self.tracer.emit(
                "bulk.closed",
                seconds=now - self.started,
                **{name: getattr(stats, name) for name in _STATS_FIELDS},
            )

    def stop_error(self) -> Exception | None:
        """What the adding methods, ``flush()`` and ``close()`` raise once the indexer has
        stopped: the dead-letter file's failure first, else the ``BulkAbortedError`` of a load
        the engine stopped."""
        if self.dl_error is not None:
            error = dead_letter_error(self.dead_letter_path, self.dl_error, list(self.unwritten))
            error.__cause__ = self.dl_error  # as ``raise error from dl_error`` would
            error.__suppress_context__ = True
            return error
        return self.aborted_error()

    def new_stop(self) -> Stop | None:
        """The engine's stop, the first time it is asked for after the engine stopped the load
        (call where the engine is consistent; :meth:`announce` it outside any lock)."""
        stop = self.engine.stopped_by
        if stop is None or self._announced:
            return None
        self._announced = True
        return stop

    def announce(self, stop: Stop | None) -> None:
        """The ``bulk.aborted`` event (an ERROR log record) of a stop from :meth:`new_stop`."""
        if stop is not None:
            self.tracer.emit(
                "bulk.aborted",
                reason=stop.reason,
                error=type(stop.cause).__name__,
                file=self.dead_letter_path,
            )

    def aborted_error(self) -> BulkAbortedError | None:
        """The ``BulkAbortedError`` of a stopped load, with the stats as they are now (final
        once the load is over), or ``None``."""
        stop = self.engine.stopped_by
        if stop is None:
            return None
        error = self._aborted
        if error is None:
            error = self._aborted = BulkAbortedError(
                f"the bulk load stopped: {stop.reason}. Of what the {self.owner} had taken "
                "(stats.added), what was not indexed is in the dead-letter file "
                f"{self.dead_letter_path}: once this is fixed, replay that file and send the "
                "documents it had not taken yet",
                reason=stop.reason,
                cause=stop.cause,
                dead_letter=self.dead_letter_path,
            )
        error.stats = self.engine.stats()
        return error

    def closed_error(self) -> RuntimeError:
        return RuntimeError(f"this {self.owner} is closed; create a new one")


# -- actions as lines -------------------------------------------------------------------------


def action(
    op: str,
    document: Any,
    id: Any,
    index: str | None,
    routing: str | None,
    pipeline: str | None,
    meta: Mapping[str, Any] | None,
) -> tuple[bytes, bool] | DeadLetter:
    """An ``index`` or ``create`` action as ``(line, safe to resend)``, or the dead letter of
    a document that cannot be serialized."""
    try:
        source = source_line(document)
    except SerializationError as exc:
        return unserializable(op, item_meta(id, index, routing, meta), document, exc)
    if index is None and routing is None and pipeline is None and not meta and id is not None:
        head = b'{"%s":{"_id":' % op.encode() + _dumps(id_text(id)) + b"}}\n"
    else:
        extra = {"pipeline": pipeline, **(meta or {})}
        head = action_line(op, item_meta(id, index, routing, extra))
    return head + source, id is not None


def update_action(
    id: Any,
    *,
    doc: Any,
    script: Mapping[str, Any] | None,
    upsert: Any,
    doc_as_upsert: bool | None,
    scripted_upsert: bool | None,
    retry_on_conflict: int | None,
    index: str | None,
    routing: str | None,
    meta: Mapping[str, Any] | None,
) -> tuple[bytes, bool] | DeadLetter:
    """An ``update`` action: a partial ``doc`` is safe to resend, a ``script`` is not."""
    if id is None:
        raise ValueError("update needs an id")
    body = update_body(doc, script, upsert, doc_as_upsert, scripted_upsert)
    extra = {"retry_on_conflict": retry_on_conflict, **(meta or {})}
    metadata = item_meta(id, index, routing, extra)
    try:
        source = source_line(body)
    except SerializationError as exc:
        return unserializable("update", metadata, body, exc)
    return action_line("update", metadata) + source, script is None


def delete_action(
    id: Any, index: str | None, routing: str | None, meta: Mapping[str, Any] | None
) -> tuple[bytes, bool]:
    if id is None:
        raise ValueError("delete needs an id")
    return action_line("delete", item_meta(id, index, routing, meta)), True


def raw_action(
    op: str, meta: Mapping[str, Any], source: bytes | None
) -> tuple[bytes, bool] | DeadLetter:
    """An action from parts already in JSON (``source``: the document or update body, ``None``
    for delete), checked: what a replay sends again."""
    if op == "delete":
        return action_line("delete", meta), True
    if source is None:
        raise ValueError(f"a {op} action needs a source")
    try:
        body = encode_source(source)
    except SerializationError as exc:
        return unserializable(op, meta, source, exc)
    if op == "update":
        safe = b'"script"' not in body[:4096] or "script" not in orjson.loads(body)
    else:
        safe = "_id" in meta
    return action_line(op, meta) + body + b"\n", safe


def with_context(letter: DeadLetter, context: Mapping[str, Any]) -> DeadLetter:
    """``letter`` carrying the producer's ``context=`` (see ``BulkEngine.attach``)."""
    return replace(letter, context=context)


def reject_meta(id: Any, index: str | None) -> dict[str, Any]:
    """The metadata of input handed to ``reject()``: its id only if it is a valid one (the
    input is rejected, often for that very id)."""
    try:
        return item_meta(id, index, None, None)
    except TypeError:
        return item_meta(None, index, None, None)


def check_add_many(op: str, id_field: str | None) -> None:
    if op not in ("index", "create"):
        raise ValueError(f"add_many supports op='index' or op='create', not {op!r}")
    if op == "create" and id_field is None:
        raise ValueError("op='create' needs id_field=")


def document_id(document: Any, id_field: str | None) -> Any:
    """The id ``add_many`` gives ``document`` (the field stays in the document)."""
    if id_field is not None and isinstance(document, Mapping):
        return document.get(id_field)
    return None


# -- replaying a dead-letter file -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Resend:
    """A dead-letter record to send again."""

    op: str
    meta: dict[str, Any]
    source: bytes | None
    context: dict[str, Any] | None = None
    """The record's ``context`` (where its input came from), kept if it fails again."""


@dataclass(frozen=True, slots=True)
class CarryOver:
    """A dead-letter record not sent again: it goes to the replay's own dead-letter file."""

    letter: DeadLetter


def replay_step(
    raw: bytes, number: int, source_path: str, skip: frozenset[str]
) -> Resend | CarryOver | None:
    """What a replay does with line ``number`` of ``source_path``: nothing (a blank line),
    send it again, or carry it over (it cannot be replayed, or its outcome is in ``skip``)."""
    if not raw.strip():
        return None
    try:
        op, meta, document, record = decode_record(raw)
    except BadRecord as exc:
        why = f"line {number} of {source_path} cannot be replayed: {exc}"
        return CarryOver(carried_over(raw, why))
    if record.get("outcome") in skip:
        return CarryOver(carried_over(raw, f"skipped: outcome {record.get('outcome')!r}"))
    context = record.get("context")
    return Resend(
        op,
        meta,
        None if document is None else _dumps(document),
        context if isinstance(context, dict) else None,
    )


def carried_over(raw: bytes, why: str) -> DeadLetter:
    """The dead letter of a record that is not sent again: as it was, with ``why`` in front
    of its reason."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        record = None
    if not isinstance(record, dict):
        record = {"reason": "", "document_repr": raw[:2000].decode("utf-8", "replace")}
    act = record.get("action")
    if not isinstance(act, dict) or len(act) != 1:
        act = {}
    document = record.get("document")
    line = None
    if act and next(iter(act)) == "delete":
        line = _dumps(act) + b"\n"
    elif act and isinstance(document, dict):
        line = _dumps(act) + b"\n" + _dumps(document) + b"\n"
    status, error_type, attempts = (
        record.get("status"),
        record.get("error_type"),
        record.get("attempts"),
    )
    return DeadLetter(
        line,
        str(record.get("outcome") or "rejected"),
        f"{why}; before: {record.get('reason') or ''}",
        status=status if isinstance(status, int) else None,
        error_type=error_type if isinstance(error_type, str) else None,
        attempts=attempts if isinstance(attempts, int) else 0,
        action=act if line is None else None,
        document_repr=None if line is not None else str(record.get("document_repr")),
        context=record.get("context"),
    )

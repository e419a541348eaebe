"""The path of every document through the bulk indexer, as plain data: no clock, no I/O.

Theory of operation. An action enters with :meth:`BulkEngine.add` as its encoded bytes and
leaves with exactly one outcome: *succeeded* (counted) or *dead-lettered* (a
:class:`~sturdysearch._core.bulk.deadletter.DeadLetter` placed in :attr:`BulkEngine.outbox`
for the driver to write, then confirmed with :meth:`BulkEngine.dead_letters_written`). In
between it sits in one of four places::

    open batch --(full, or flush_interval)--> ready --(take)--> in flight --(settle)--+
        ^                                       ^                                    |
        |                                       +---(tick: due)--- retry queue <-----+
      add                                                                            |
                                                     succeeded / dead-lettered <-----+

The driver supplies every fact (``now``, random numbers, the answer or the exception) and does
every wait. Its threads call in under one lock:

* the producer: :meth:`has_room` (memory bound; block while False), :meth:`add`;
* a timer: :meth:`tick` at :meth:`next_wakeup` (interval flush, retries falling due, expiry);
* ``workers`` senders: :meth:`take`, send, then :meth:`settle_answer` or :meth:`settle_error`.

Bounds. Memory: ``pending_bytes`` counts every action without an outcome, retries included,
and the producer blocks at the limit. Concurrency: at most ``limit`` requests in flight (halved
when the cluster answers 429, grown by one per clean answer, never above ``workers``); retries
go through the same senders. Time: each action carries the deadline of its batch (opened at
``now``, plus ``delivery_timeout``); a retry that could not happen before it, or an action still
queued at it, is dead-lettered as ``exhausted``, and a request never outlives the earliest
deadline among its actions. Attempts: ``max_attempts`` sends that may have reached a server.

A retry waits a full-jitter exponential backoff (``RetryPolicy.backoff``), at least the
server's ``Retry-After``; one random draw per failed request, so the retried actions of a batch
fall due together and travel as one batch again. Every retry takes a token from the
:class:`RetryBudget`, also after ``NoLiveNodesError`` and refused connections; without one the
actions wait ``backoff_cap`` for the cluster (and never past their delivery deadline) instead of
being resent at once. After ``NoLiveNodesError`` they wait at least until the client's next
scheduled probe. After a request that got no answer at all, no request (fresh or retry) leaves
before that retry is due: an outage costs the cluster one request per backoff step, however
many workers there are.

Stopping. Some failures will meet every later document too (see ``abort.py``: credentials
refused, an index that is missing, closed, read-only or wrongly named, no answer at all for
``abort_after`` seconds). The engine then stops the load at once (:meth:`BulkEngine.stop`):
the failed batch is dead-lettered with the server's reason, everything else it holds (open,
ready, waiting for a retry) as ``aborted`` with the stop's reason, requests in flight settle
without retries, and :attr:`BulkEngine.stopped_by` tells the driver what to raise. The check
costs nothing on the path of a success: it runs only for answers whose every item failed, and
for requests that failed.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from sturdysearch._core.budget import RetryBudget
from sturdysearch._core.bulk.abort import Stop, item_stop, one_index, request_stop, silence_stop
from sturdysearch._core.bulk.answer import BadAnswer, UniformAnswer, answer_items, item_error
from sturdysearch._core.bulk.classify import classify_item, classify_request, unanswered
from sturdysearch._core.bulk.config import BulkConfig, BulkStats
from sturdysearch._core.bulk.deadletter import DeadLetter
from sturdysearch._core.retry import RetryPolicy
from sturdysearch.errors import (
    ApiError,
    MalformedResponseError,
    NoLiveNodesError,
    SturdySearchError,
)

#: ``result`` of a successful item -> counter; an answer without results counts by operation.
_RESULTS = ("created", "updated", "deleted", "noop", "not_found")
_DEFAULT_RESULT = {
    "index": "created",
    "create": "created",
    "update": "updated",
    "delete": "deleted",
}
#: What :meth:`BulkEngine.add` did.
ADDED, WAKE, FULL, DEAD = 0, 1, 2, 3
#: Smallest batch size a 413 can push ``max_bytes`` down to.
_MIN_BATCH_BYTES = 64 * 1024


class Item:
    """An action that failed at least once. Fresh actions exist only as bytes in their batch;
    this state is created on the first failure."""

    __slots__ = (
        "attempts",
        "context",
        "deadline",
        "error_type",
        "line",
        "lost",
        "reason",
        "safe",
        "status",
        "tries",
    )

    def __init__(
        self, line: bytes, safe: bool, deadline: float, attempts: int = 0, context: Any = None
    ) -> None:
        self.line = line
        self.safe = safe
        self.context = context
        """The producer's own note on the action (never sent; copied into its dead letter)."""
        self.deadline = deadline
        self.attempts = attempts
        """Sends that may have reached a server (bounded by ``max_attempts``)."""
        self.tries = 0
        """Times queued for a retry, whatever the failure: the backoff grows with it, also
        while no node can be reached."""
        self.lost = False
        """A request carrying it was lost: it may have been applied already."""
        self.status: int | None = None
        self.error_type: str | None = None
        self.reason = ""

    def failed(self, status: int | None, error_type: str | None, reason: str) -> None:
        self.status = status
        self.error_type = error_type
        self.reason = reason

    def letter(self, outcome: str, reason: str) -> DeadLetter:
        """Its dead letter, with the status, error type and attempts of its last failure."""
        return DeadLetter(
            self.line,
            outcome,
            reason,
            self.status,
            self.error_type,
            self.attempts,
            context=self.context,
        )


class Batch:
    """Actions sent in one ``_bulk`` request. ``items`` is ``None`` for a fresh batch (all on
    their first attempt, sharing its deadline) and holds each action's state otherwise."""

    __slots__ = (
        "contexts",
        "deadline",
        "items",
        "kind",
        "launch",
        "lines",
        "nbytes",
        "opened",
        "unsafe",
    )

    def __init__(self, opened: float, deadline: float, kind: str = "fresh") -> None:
        self.lines: list[bytes] = []
        self.unsafe: list[int] = []
        """Positions of actions a resend could apply twice."""
        self.contexts: dict[int, Any] | None = None
        """Position -> the producer's context, for the (few) actions given one."""
        self.nbytes = 0
        self.opened = opened
        self.deadline = deadline
        self.items: list[Item] | None = None
        self.kind = kind
        """``fresh``, ``retry`` or ``split`` (for tracing)."""
        self.launch = 0
        """Sequence number of the request that carried it."""

    def __len__(self) -> int:
        return len(self.lines)

    @property
    def idempotent(self) -> bool:
        """Whether the whole request may be sent twice."""
        return not self.unsafe

    def states(self) -> list[Item]:
        """Per-action state, created for a fresh batch on first need."""
        if self.items is None:
            unsafe = set(self.unsafe)
            deadline = self.deadline
            contexts = self.contexts or {}
            self.items = [
                Item(line, i not in unsafe, deadline, context=contexts.get(i))
                for i, line in enumerate(self.lines)
            ]
        return self.items

    @classmethod
    def of_items(cls, items: list[Item], opened: float, kind: str) -> Batch:
        batch = cls(opened, min(item.deadline for item in items), kind)
        batch.items = items
        batch.lines = [item.line for item in items]
        batch.unsafe = [i for i, item in enumerate(items) if not item.safe]
        batch.nbytes = sum(len(line) for line in batch.lines)
        return batch


@dataclass(slots=True)
class Settlement:
    """What one finished request did, for the driver's hooks and trace events."""

    verdict: str
    """``answered``, or the request verdict of ``classify``: ``resend``, ``lost``, ``split``,
    ``fatal``."""
    succeeded: int = 0
    retried: int = 0
    dead_lettered: int = 0
    delay: float = 0.0
    reason: str = ""
    successes: list[tuple[bytes, str, int, str]] = field(default_factory=list)
    """``(line, op, status, result)`` per applied action, only when the engine collects them."""
    silence: bool = False
    """This failure began a stretch without answers (the driver warns: the load stops after
    ``abort_after`` seconds of it)."""
    stopped: Stop | None = None
    """The stop this settlement decided (it stopped the load)."""


class BulkEngine:
    """The state machine. Not thread-safe: the driver serializes calls."""

    def __init__(
        self, config: BulkConfig, *, collect_successes: bool = False, index: str | None = None
    ) -> None:
        self.config = config
        self.collect_successes = collect_successes
        self.index = index
        """The requests' default index (that of actions without ``_index``)."""
        self.max_bytes = config.max_bytes
        self._max_actions = config.max_actions
        self._max_document_bytes = config.max_document_bytes
        self.limit = config.workers
        self.pending_limit = config.pending_limit
        self.budget = RetryBudget(config.budget)
        self._backoff = RetryPolicy(
            max_attempts=1, backoff_base=config.backoff_base, backoff_cap=config.backoff_cap
        ).backoff
        self._open: Batch | None = None
        self._ready: deque[Batch] = deque()
        self._retry: list[tuple[float, int, list[Item]]] = []
        self._seq = itertools.count()
        self._launches = 0
        self._last_decrease = -1
        self._hold_until = 0.0
        """After a request failed without an answer, nothing is sent (fresh batches included)
        before its retry is due: the cluster is unreachable or not answering, and every worker
        sending its next batch at once would only multiply the load on it."""
        self.in_flight = 0
        self.pending_bytes = 0
        self.closing = False
        self.aborted: str | None = None
        self.stopped_by: Stop | None = None
        """Why the engine stopped the load by itself (see the module docstring), if it did."""
        self._silent_since: float | None = None
        """When the first request without an answer failed, since the last answer."""
        self._silent_cause: SturdySearchError | None = None
        self.outbox: list[DeadLetter] = []
        # counters
        self.added = 0
        self.results = dict.fromkeys(_RESULTS, 0)
        self.dead_lettered = 0
        self.dead_pending = 0
        self.retried_requests = 0
        self.retried_documents = 0
        self.batches = 0
        self.failed_requests = 0
        self.splits = 0
        self.bytes = 0

    # -- accounting --------------------------------------------------------------------------

    @property
    def succeeded(self) -> int:
        return sum(self.results.values())

    @property
    def pending(self) -> int:
        return self.added - self.succeeded - self.dead_lettered

    def stats(self) -> BulkStats:
        r = self.results
        return BulkStats(
            added=self.added,
            succeeded=self.succeeded,
            created=r["created"],
            updated=r["updated"],
            deleted=r["deleted"],
            noop=r["noop"],
            not_found=r["not_found"],
            dead_lettered=self.dead_lettered,
            pending=self.pending,
            retried_requests=self.retried_requests,
            retried_documents=self.retried_documents,
            batches=self.batches,
            failed_requests=self.failed_requests,
            splits=self.splits,
            bytes=self.bytes,
            retries_denied=self.budget.denied,
        )

    def _dead(self, letter: DeadLetter) -> None:
        self.outbox.append(letter)
        self.dead_pending += 1

    def drain(self) -> list[DeadLetter]:
        """Take the dead letters to write; confirm them with :meth:`dead_letters_written`."""
        out, self.outbox = self.outbox, []
        return out

    def dead_letters_written(self, count: int) -> None:
        self.dead_pending -= count
        self.dead_lettered += count

    # -- producer ----------------------------------------------------------------------------

    def has_room(self, nbytes: int) -> bool:
        """Whether an action of ``nbytes`` fits the memory bound now (an empty indexer always
        takes one, however large, so that nothing can wait forever)."""
        return self.pending_bytes == 0 or self.pending_bytes + nbytes <= self.pending_limit

    def add(self, line: bytes, safe: bool, now: float) -> int:
        """Buffer one encoded action; ``safe`` says whether sending it twice is harmless.

        Returns ``ADDED``; ``WAKE`` when the driver should wake its threads (a batch became
        ready, or a new batch opened and its flush interval starts now); ``FULL`` when the
        memory bound leaves no room (nothing was added: wait, then call again); ``DEAD`` when
        the action was taken but dead-lettered at once (too large), see :attr:`outbox`.
        This is the per-document hot path, hence the flat code.
        """
        size = len(line)
        pending = self.pending_bytes + size
        if pending > self.pending_limit and self.pending_bytes:
            return FULL
        self.added += 1
        if size > self._max_document_bytes:
            self._dead(
                DeadLetter(
                    line,
                    "too_large",
                    f"the action is {size} bytes, above max_document_bytes="
                    f"{self._max_document_bytes}",
                )
            )
            return DEAD
        self.pending_bytes = pending
        batch = self._open
        code = ADDED
        if batch is None or batch.nbytes + size > self.max_bytes:
            if batch is not None:
                self._ready.append(batch)
            batch = self._open = Batch(now, now + self.config.delivery_timeout)
            code = WAKE
        lines = batch.lines
        if not safe:
            batch.unsafe.append(len(lines))
        lines.append(line)
        nbytes = batch.nbytes = batch.nbytes + size
        if len(lines) >= self._max_actions or nbytes >= self.max_bytes:
            self._ready.append(batch)
            self._open = None
            return WAKE
        return code

    def attach(self, line: bytes, code: int, context: Any) -> None:
        """Give the action :meth:`add` just took (it returned ``code`` for ``line``) the
        producer's ``context``: never sent, written into its dead letter if it gets one. Call
        before anything else touches the engine. Off the hot path: only actions with a
        context pay for it."""
        if code == DEAD:
            self.outbox[-1] = replace(self.outbox[-1], context=context)
            return
        batch = self._open
        if batch is None or not batch.lines or batch.lines[-1] is not line:
            batch = self._ready[-1]  # the action filled its batch, which became ready
        if batch.contexts is None:
            batch.contexts = {}
        batch.contexts[len(batch.lines) - 1] = context

    def reject(self, letter: DeadLetter) -> None:
        """Account for an action refused before it could be encoded (unserializable)."""
        self.added += 1
        self._dead(letter)

    def seal(self) -> bool:
        """Make the open batch ready now (the producer is blocked on the memory bound, or a
        flush was asked for). Returns whether there was one."""
        if self._open is None:
            return False
        self._ready.append(self._open)
        self._open = None
        return True

    def seal_if_idle(self) -> bool:
        """The producer is blocked on the memory bound: make the open batch ready only if a
        sender is free to take it now, so that no sender idles while the producer waits.
        Otherwise room comes back when a request in flight settles, and the open batch goes on
        filling then: sealing it here would send the few actions the bound's slack let in (the
        batches ahead of it are never exactly ``max_bytes``) as a request of their own, which
        measured as half the requests of a steady bulk load. Call again after each wake-up
        while blocked (what settles may queue retries instead of freeing room); the timer's
        ``flush_interval`` seals the batch in any case. Returns whether it sealed."""
        if self._open is None or self.in_flight + len(self._ready) >= self.limit:
            return False
        return self.seal()

    def close_input(self) -> None:
        """No more actions: the open batch goes out without waiting for its interval."""
        self.closing = True
        self.seal()

    # -- timer -------------------------------------------------------------------------------

    def tick(self, now: float) -> bool:
        """Time-driven transitions: seal the open batch after ``flush_interval``, turn due
        retries into ready batches, dead-letter queued actions past their deadline. Returns
        whether a batch became ready."""
        woke = False
        batch = self._open
        if batch is not None and now >= batch.opened + self.config.flush_interval:
            self.seal()
            woke = True
        if self._retry and self._retry[0][0] <= now:
            woke = self._retries_due(now) or woke
        if self._ready and min(b.deadline for b in self._ready) <= now:
            self._expire_ready(now)
        if self._hold_until and now >= self._hold_until:
            self._hold_until = 0.0
            woke = True
        since = self._silent_since
        if since is not None and now >= since + self.config.abort_after and self.aborted is None:
            self._stop_silent(now)
            woke = True
        return woke

    def next_wakeup(self, now: float) -> float | None:
        """Seconds until :meth:`tick` has something to do, or ``None``."""
        times = []
        if self._open is not None:
            times.append(self._open.opened + self.config.flush_interval)
        if self._retry:
            times.append(self._retry[0][0])
        if self._ready:
            times.append(min(b.deadline for b in self._ready))
        if self._hold_until:
            times.append(self._hold_until)
        if self._silent_since is not None and self.aborted is None:
            times.append(self._silent_since + self.config.abort_after)
        if not times:
            return None
        return max(0.0, min(times) - now)

    def _retries_due(self, now: float) -> bool:
        due: list[Item] = []
        while self._retry and self._retry[0][0] <= now:
            due.extend(heapq.heappop(self._retry)[2])
        live = [item for item in due if item.deadline > now]
        for item in due:
            if item.deadline <= now:
                self._give_up(item, "the delivery timeout passed while waiting to be retried")
        start = 0
        made = False
        while start < len(live):
            end, size = start, 0
            while end < len(live) and end - start < self.config.max_actions:
                size += len(live[end].line)
                if size > self.max_bytes and end > start:
                    break
                end += 1
            self._ready.appendleft(Batch.of_items(live[start:end], now, "retry"))
            made = True
            start = end
        return made

    def _expire_ready(self, now: float) -> None:
        keep: deque[Batch] = deque()
        for batch in self._ready:
            if batch.deadline > now:
                keep.append(batch)
                continue
            alive = []
            for item in batch.states():
                if item.deadline > now:
                    alive.append(item)
                else:
                    self._give_up(item, "the delivery timeout passed before it could be sent")
            if alive:
                keep.append(Batch.of_items(alive, batch.opened, batch.kind))
        self._ready = keep

    # -- senders -----------------------------------------------------------------------------

    def take(self, now: float) -> Batch | None:
        """The next batch to send, or ``None`` (nothing ready, or ``limit`` requests in flight).
        Retries go first."""
        if self.in_flight >= self.limit or self.aborted is not None or now < self._hold_until:
            return None
        if not self._ready:
            if not self.closing or self._open is None:
                return None
            self.seal()
        if self._ready[0].deadline <= now:
            self._expire_ready(now)
            if not self._ready:
                return None
        batch = self._ready.popleft()
        self.in_flight += 1
        self._launches += 1
        batch.launch = self._launches
        self.batches += 1
        self.bytes += batch.nbytes
        if batch.kind != "fresh":  # a retry, or a half of a split batch: sent again
            self.retried_requests += 1
            self.retried_documents += len(batch.lines)
        return batch

    def request_timeout(self, batch: Batch, now: float) -> float:
        """The request's deadline in seconds: ``request_timeout``, but never past the earliest
        delivery deadline of its actions."""
        return max(0.001, min(self.config.request_timeout, batch.deadline - now))

    @property
    def finished(self) -> bool:
        """Input closed and every action has an outcome (dead letters may await writing)."""
        return (
            self.closing
            and self._open is None
            and not self._ready
            and not self._retry
            and self.in_flight == 0
        )

    @property
    def idle(self) -> bool:
        """Nothing queued or in flight (the input may still be open)."""
        return self._open is None and not self._ready and not self._retry and self.in_flight == 0

    def settle_answer(self, batch: Batch, body: Any, now: float, rand: float) -> Settlement:
        """A 2xx answer arrived for ``batch``: check it, then give every action its fate.
        ``body`` is the parsed answer, or a ``UniformAnswer`` (see ``answer.decode_answer``)."""
        try:
            if type(body) is UniformAnswer:
                counts, failures, successes = self._read_uniform(batch, body)
            else:
                items = answer_items(body, len(batch.lines))
                counts, failures, successes = self._read_items(batch, items)
        except BadAnswer as exc:
            why = f"untrustworthy answer: {exc}"
            return self._settle_failure(
                batch, "lost", None, why, now, rand, MalformedResponseError(why)
            )
        self.in_flight -= 1
        self.budget.deposit()
        self._hold_until = 0.0  # the cluster answers again
        self._silent_since = None
        results = self.results
        for key, value in counts.items():
            results[key] += value
        done = sum(counts.values())
        released = batch.nbytes
        settlement = Settlement("answered", succeeded=done, successes=successes)
        if not failures:
            self.pending_bytes -= released
            if self.limit < self.config.workers:
                self.limit += 1
            return settlement
        if not done and len(failures) == len(batch.lines) and self.stopped_by is None:
            settlement.stopped = self._systemic_answer(batch, failures)
        states = batch.states()
        retry: list[Item] = []
        overloaded = False
        for pos, status, error_type, reason, verdict in failures:
            item = states[pos]
            item.attempts += 1
            item.failed(status, error_type, reason)
            if verdict == "retry":
                retry.append(item)
                overloaded = overloaded or status == 429
                continue
            if status == 409 and item.lost:
                reason = (
                    "409 after an earlier attempt of this action was lost: that attempt "
                    f"probably applied it. {reason}"
                )
            self._dead(item.letter("rejected", reason))
            settlement.dead_lettered += 1
        retried_bytes = sum(len(item.line) for item in retry)
        self.pending_bytes -= released - retried_bytes
        if settlement.stopped is not None:
            settlement.dead_lettered += self.stop(settlement.stopped)
        if overloaded:
            self._decrease_limit(batch)
        elif self.limit < self.config.workers:
            self.limit += 1
        if retry:
            settlement.delay, settlement.retried, dead = self._schedule(retry, now, rand, None)
            settlement.dead_lettered += dead
        return settlement

    def _read_uniform(
        self, batch: Batch, answer: UniformAnswer
    ) -> tuple[dict[str, int], list[tuple[int, int, str | None, str, str]], list[Any]]:
        """``_read_items`` for an answer whose every item is the same success."""
        lines = batch.lines
        if answer.count != len(lines):
            raise BadAnswer(f"the answer has {answer.count} items for {len(lines)} actions")
        successes: list[Any] = []
        if self.collect_successes:
            fate = (answer.op, answer.status, answer.result)
            successes = [(line, *fate) for line in lines]
        return {answer.result: answer.count}, [], successes

    def _read_items(
        self, batch: Batch, items: list[Any]
    ) -> tuple[dict[str, int], list[tuple[int, int, str | None, str, str]], list[Any]]:
        """Classify every entry without changing any state, so that a malformed entry late in
        the answer leaves the batch untouched (the whole request is then treated as lost)."""
        counts = dict.fromkeys(_RESULTS, 0)
        failures: list[tuple[int, int, str | None, str, str]] = []
        successes: list[Any] = []
        lines = batch.lines if self.collect_successes else None  # None: skip the bookkeeping
        try:
            for pos, entry in enumerate(items):
                ((op, details),) = entry.items()
                status = details["status"]
                if type(status) is not int:
                    raise BadAnswer(f"item {pos} has status {status!r}")
                if 200 <= status < 300:
                    result = details.get("result")
                    if result not in counts:
                        result = _DEFAULT_RESULT.get(op, "created")
                    counts[result] += 1
                    if lines is not None:
                        successes.append((lines[pos], op, status, result))
                    continue
                error_type, reason = item_error(details)
                verdict = classify_item(op, status, error_type, reason)
                if verdict == "done":
                    counts["not_found"] += 1
                    if lines is not None:
                        successes.append((lines[pos], op, status, "not_found"))
                    continue
                failures.append((pos, status, error_type, reason or f"status {status}", verdict))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise BadAnswer(f"malformed item: {exc!r}") from None
        return counts, failures, successes

    def _systemic_answer(
        self, batch: Batch, failures: list[tuple[int, int, str | None, str, str]]
    ) -> Stop | None:
        """The stop an answer calls for, whose every item failed: every failure ``systemic``
        (``classify.systemic_item``), of one error type, for one index."""
        first = failures[0]
        if any(f[4] != "systemic" or f[2] != first[2] for f in failures):
            return None
        single, index = one_index(batch.lines, self.index)
        if not single:
            return None  # another index of the load may be fine: dead-letter these, go on
        _, status, error_type, reason, _ = first
        return item_stop(status, error_type, reason, index)

    def settle_error(
        self, batch: Batch, exc: SturdySearchError, now: float, rand: float
    ) -> Settlement:
        """The request for ``batch`` raised ``exc`` (after the transport's own handling)."""
        verdict = classify_request(exc)
        status = exc.status if isinstance(exc, ApiError) else None
        return self._settle_failure(
            batch, verdict, status, f"{type(exc).__name__}: {exc}", now, rand, exc
        )

    def _settle_failure(
        self,
        batch: Batch,
        verdict: str,
        status: int | None,
        reason: str,
        now: float,
        rand: float,
        exc: SturdySearchError | None = None,
    ) -> Settlement:
        self.in_flight -= 1
        self.failed_requests += 1
        settlement = Settlement(verdict, reason=reason)
        states = batch.states()
        error_type = getattr(exc, "error_type", None)
        if not unanswered(exc):
            self._silent_since = None  # a node answered, if only with an error
        elif self.aborted is None:
            if self._silent_since is None:
                self._silent_since = now
                settlement.silence = True
            self._silent_cause = exc
        if verdict == "split":
            return self._split(batch, states, now, settlement, reason)
        if verdict == "fatal":
            for item in states:
                item.attempts += 1
                item.failed(status, error_type, reason)
                self._dead(item.letter("rejected", reason))
            self.pending_bytes -= batch.nbytes
            settlement.dead_lettered = len(states)
            if exc is not None and self.stopped_by is None:
                settlement.stopped = request_stop(exc)
                settlement.dead_lettered += self.stop(settlement.stopped)
            return settlement
        since = self._silent_since
        if since is not None and now >= since + self.config.abort_after and self.aborted is None:
            settlement.dead_lettered += self._stop_silent(now)
            settlement.stopped = self.stopped_by
        retry = self._resendable(states, verdict == "lost", status, error_type, reason, settlement)
        if status == 429:
            self._decrease_limit(batch)
        # Every resend is charged, also after NoLiveNodesError and refused connections: in an
        # outage those are all there is, and uncharged they would never meet the budget.
        if retry:
            settlement.delay, settlement.retried, dead = self._schedule(
                retry, now, rand, _retry_after(exc)
            )
            settlement.dead_lettered += dead
            if status is None:
                # No answer at all (lost, refused, no live node): hold every sender until
                # the retry, then send one request at a time until answers come back (the
                # limit grows by one per clean answer), as TCP restarts from one segment
                # after a retransmission timeout.
                self._hold_until = max(self._hold_until, now + settlement.delay)
                self.limit = 1
        return settlement

    def _resendable(
        self,
        states: list[Item],
        lost: bool,
        status: int | None,
        error_type: str | None,
        reason: str,
        settlement: Settlement,
    ) -> list[Item]:
        """The actions of a failed request that may be sent again. After a lost request (it
        may have reached the server) an action that is not safe to apply twice is
        dead-lettered as ``unknown`` instead."""
        retry: list[Item] = []
        for item in states:
            item.failed(status, error_type, reason)
            if lost:
                item.attempts += 1
                item.lost = True
                if not item.safe:
                    self._dead(
                        item.letter(
                            "unknown",
                            "the request was lost after it may have reached the server, and "
                            f"resending this action could apply it twice ({reason})",
                        )
                    )
                    self.pending_bytes -= len(item.line)
                    settlement.dead_lettered += 1
                    continue
            retry.append(item)
        return retry

    def _split(
        self, batch: Batch, states: list[Item], now: float, settlement: Settlement, reason: str
    ) -> Settlement:
        if len(states) == 1:
            (item,) = states
            item.attempts += 1
            item.failed(413, None, reason)
            self._dead(
                item.letter(
                    "too_large",
                    f"413 on its own: larger than the server's http.max_content_length ({reason})",
                )
            )
            self.pending_bytes -= len(item.line)
            settlement.dead_lettered = 1
            return settlement
        self.splits += 1
        self.max_bytes = max(_MIN_BATCH_BYTES, min(self.max_bytes, batch.nbytes // 2))
        half = len(states) // 2
        for part in (states[:half], states[half:]):
            self._ready.appendleft(Batch.of_items(part, now, "split"))
        settlement.retried = len(states)
        return settlement

    def _decrease_limit(self, batch: Batch) -> None:
        """Halve the concurrency once per round of requests (requests launched before the last
        decrease report the same overload and must not halve it again)."""
        if batch.launch > self._last_decrease:
            self.limit = max(1, self.limit // 2)
            self._last_decrease = self._launches

    def _schedule(
        self,
        items: list[Item],
        now: float,
        rand: float,
        retry_after: float | None,
    ) -> tuple[float, int, int]:
        """Queue ``items`` for another attempt; returns ``(delay, queued, dead-lettered)``."""
        tries = 0
        for item in items:
            item.tries += 1
            tries = max(tries, item.tries)
        delay = self._backoff(tries, rand)
        if retry_after is not None:
            delay = max(delay, retry_after)
        if not self.budget.try_withdraw():
            delay = max(delay, self.config.backoff_cap)
        due = now + delay
        keep: list[Item] = []
        dead = 0
        for item in items:
            if self.aborted is not None:
                why = f"{self.aborted}; last error: {item.reason}"
            elif item.attempts >= self.config.max_attempts:
                why = f"gave up after {item.attempts} attempts; last error: {item.reason}"
            elif due >= item.deadline:
                why = (
                    "the delivery timeout would pass before the next attempt; last error: "
                    f"{item.reason}"
                )
            else:
                keep.append(item)
                continue
            self._give_up(item, why)
            dead += 1
        if keep:
            heapq.heappush(self._retry, (due, next(self._seq), keep))
        return delay, len(keep), dead

    def _give_up(self, item: Item, why: str) -> None:
        """Dead-letter an action whose retries ended (``pending_bytes`` released here)."""
        if item.lost and not item.safe:
            outcome = "unknown"
        elif self.aborted is not None:
            outcome = "aborted"
        else:
            outcome = "exhausted"
        self._dead(item.letter(outcome, why))
        self.pending_bytes -= len(item.line)

    # -- stopping ----------------------------------------------------------------------------

    def stop(self, why: Stop) -> int:
        """Stop the load for a failure that every later document would meet: :meth:`abort`
        with its reason, and :attr:`stopped_by` set for the driver to raise. Returns how many
        actions were dead-lettered (``aborted``)."""
        if self.stopped_by is None:
            self.stopped_by = why
        self._silent_since = None
        return self.abort(f"the bulk load stopped: {why.reason}")

    def _stop_silent(self, now: float) -> int:
        """Stop after ``abort_after`` seconds without an answer (from a settlement, or from
        :meth:`tick` while requests are held back or still in flight). Returns how many
        actions were dead-lettered."""
        since, cause = self._silent_since, self._silent_cause
        if since is None or cause is None or self.stopped_by is not None:
            return 0
        return self.stop(silence_stop(now - since, cause))

    def abort(self, reason: str) -> int:
        """Stop sending: every action not in flight is dead-lettered now as ``aborted`` (as
        ``unknown`` if a request carrying it was lost and resending it is not safe), and
        in-flight batches are not retried. Returns how many were dead-lettered."""
        if self.aborted is None:
            self.aborted = reason
        self.closing = True
        count = 0
        batches = list(self._ready)
        if self._open is not None:
            batches.append(self._open)
        self._open = None
        self._ready.clear()
        items = [item for batch in batches for item in batch.states()]
        while self._retry:
            items.extend(heapq.heappop(self._retry)[2])
        for item in items:
            self._give_up(item, reason)
            count += 1
        return count


def _retry_after(exc: SturdySearchError | None) -> float | None:
    """How long the failure itself says to wait: the server's ``Retry-After``, or the time to
    the next probe of the client's shared schedule when no node is live."""
    if isinstance(exc, ApiError):
        return exc.retry_after
    if isinstance(exc, NoLiveNodesError):
        return exc.next_probe_in
    return None

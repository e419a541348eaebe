"""The bulk engine, pumped by hand: batching, outcomes, retries, deadlines, bounds, accounting.

Every test ends by checking the accounting invariant against the engine's actual contents
(:func:`check`), not only against its counters.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from sturdysearch import errors
from sturdysearch._core.budget import BudgetConfig
from sturdysearch._core.bulk.answer import UniformAnswer
from sturdysearch._core.bulk.config import BulkConfig
from sturdysearch._core.bulk.deadletter import DeadLetter
from sturdysearch._core.bulk.engine import ADDED, DEAD, FULL, WAKE, Batch, BulkEngine
from sturdysearch._core.responses import error_class


def line(i: int, *, safe: bool = True, size: int = 0) -> bytes:
    pad = b"x" * size
    if safe:
        return b'{"index":{"_id":"%d"}}\n{"n":%d,"p":"%s"}\n' % (i, i, pad)
    return b'{"index":{}}\n{"n":%d,"p":"%s"}\n' % (i, pad)


def api(status: int, retry_after: str | None = None) -> errors.ApiError:
    headers = {"retry-after": retry_after} if retry_after else None
    return error_class(status)(status, headers=headers, reason="test")


def answer(batch: Batch, statuses: list[int] | None = None, **kw: Any) -> dict[str, Any]:
    statuses = statuses or [201] * len(batch)
    items = []
    for status in statuses:
        if status < 300:
            items.append({"index": {"status": status, "result": "created"}})
        else:
            kind = {
                429: "es_rejected_execution_exception",
                400: "document_parsing_exception",
                409: "version_conflict_engine_exception",
                503: "unavailable_shards_exception",
            }.get(status, "exception")
            items.append({"index": {"status": status, "error": {"type": kind, "reason": "r"}}})
    return {"errors": any(s >= 300 for s in statuses), "items": items, **kw}


def held_items(engine: BulkEngine, inflight: list[Batch]) -> list[bytes]:
    lines: list[bytes] = []
    if engine._open is not None:
        lines += engine._open.lines
    for batch in engine._ready:
        lines += batch.lines
    for _, _, group in engine._retry:
        lines += [item.line for item in group]
    for batch in inflight:
        lines += batch.lines
    return lines


def check(engine: BulkEngine, inflight: list[Batch] = ()) -> None:  # type: ignore[assignment]
    held = held_items(engine, list(inflight))
    assert engine.pending == len(held) + engine.dead_pending
    assert engine.added == engine.succeeded + engine.dead_lettered + engine.pending
    assert engine.pending_bytes == sum(len(x) for x in held)
    assert engine.in_flight == len(inflight)
    stats = engine.stats()
    assert stats.added == stats.succeeded + stats.dead_lettered + stats.pending


def written(engine: BulkEngine) -> list[DeadLetter]:
    letters = engine.drain()
    engine.dead_letters_written(len(letters))
    return letters


def config(**kw: Any) -> BulkConfig:
    base: dict[str, Any] = {"max_actions": 4, "max_bytes": 1 << 20, "workers": 2}
    base.update(kw)
    return BulkConfig(**base)


# -- batching ------------------------------------------------------------------------------


def test_flush_by_count() -> None:
    engine = BulkEngine(config(max_actions=3))
    assert engine.add(line(1), True, 0.0) == WAKE  # a batch opened: the timer must know
    assert engine.add(line(2), True, 0.0) == ADDED
    assert engine.add(line(3), True, 0.0) == WAKE  # full: ready
    batch = engine.take(0.0)
    assert batch is not None and batch.lines == [line(1), line(2), line(3)]
    assert batch.idempotent and batch.kind == "fresh"
    check(engine, [batch])


def test_flush_by_bytes_never_exceeds_max_bytes() -> None:
    size = len(line(1, size=100))
    engine = BulkEngine(config(max_actions=100, max_bytes=size * 2 + 10))
    for i in range(5):
        engine.add(line(i, size=100), True, 0.0)
    sizes = []
    while (batch := engine.take(0.0)) is not None:
        sizes.append(len(batch))
        assert batch.nbytes <= size * 2 + 10
        engine.settle_answer(batch, answer(batch), 0.0, 0.5)
    assert sizes == [2, 2]  # the fifth waits in the open batch
    check(engine)


def test_flush_by_interval() -> None:
    engine = BulkEngine(config(flush_interval=1.0))
    engine.add(line(1), True, 10.0)
    assert engine.take(10.5) is None
    assert engine.next_wakeup(10.5) == pytest.approx(0.5)
    assert not engine.tick(10.9)
    assert engine.tick(11.0)
    batch = engine.take(11.0)
    assert batch is not None and len(batch) == 1
    check(engine, [batch])


def test_closing_sends_the_open_batch_at_once() -> None:
    engine = BulkEngine(config())
    engine.add(line(1), True, 0.0)
    engine.close_input()
    batch = engine.take(0.0)
    assert batch is not None
    engine.settle_answer(batch, answer(batch), 0.0, 0.5)
    assert engine.finished and engine.pending == 0


def test_unsafe_positions_make_the_batch_non_idempotent() -> None:
    engine = BulkEngine(config(max_actions=3))
    engine.add(line(1), True, 0.0)
    engine.add(line(2, safe=False), False, 0.0)
    engine.add(line(3), True, 0.0)
    batch = engine.take(0.0)
    assert batch is not None and not batch.idempotent and batch.unsafe == [1]


# -- bounds --------------------------------------------------------------------------------


def test_memory_bound() -> None:
    size = len(line(1))
    engine = BulkEngine(config(max_actions=2, max_bytes=size * 2, max_pending_bytes=size * 4))
    for i in range(4):
        assert engine.has_room(size)
        engine.add(line(i), True, 0.0)
    assert not engine.has_room(size)  # the producer blocks here
    assert engine.add(line(9), True, 0.0) == FULL and engine.added == 4
    first = engine.take(0.0)
    assert first is not None
    assert not engine.has_room(size)  # in flight still counts
    engine.settle_answer(first, answer(first), 0.0, 0.5)
    assert engine.has_room(size)
    check(engine)


def test_a_blocked_producer_seals_the_open_batch_only_for_an_idle_sender() -> None:
    """The bound's slack lets a few actions into a new batch just before the producer blocks:
    while every sender is busy, that batch keeps filling once room comes back instead of going
    out as a request of its own."""
    size = len(line(1))
    engine = BulkEngine(config(max_actions=2, max_bytes=size * 2, max_pending_bytes=size * 5))
    for i in range(5):
        engine.add(line(i), True, 0.0)
    a, b = engine.take(0.0), engine.take(0.0)
    assert a is not None and b is not None  # two in flight, one action in the open batch
    assert engine.add(line(5), True, 0.0) == FULL
    assert not engine.seal_if_idle() and engine.take(0.0) is None
    engine.settle_answer(a, answer(a), 0.0, 0.5)
    assert engine.add(line(5), True, 0.0) == WAKE  # the open batch filled up instead
    c = engine.take(0.0)
    assert c is not None and len(c) == 2
    check(engine, [b, c])
    # A sender with nothing to do: the open batch goes out rather than wait for room.
    assert engine.add(line(6), True, 0.0) == WAKE  # a new batch, one action
    assert engine.add(line(7), True, 0.0) == FULL
    assert not engine.seal_if_idle()  # both senders busy
    engine.settle_answer(b, answer(b), 0.0, 0.5)
    engine.settle_answer(c, answer(c), 0.0, 0.5)
    assert engine.seal_if_idle()
    assert not engine.seal_if_idle()  # nothing left to seal
    check(engine)


def test_waiting_retries_count_against_the_memory_bound() -> None:
    size = len(line(1))
    engine = BulkEngine(config(max_actions=2, max_bytes=size * 2, max_pending_bytes=size * 4))
    for i in range(4):
        engine.add(line(i), True, 0.0)
    a, b = engine.take(0.0), engine.take(0.0)
    assert a is not None and b is not None
    engine.settle_answer(a, answer(a, [429, 429]), 0.0, 0.5)
    engine.settle_answer(b, answer(b), 0.0, 0.5)
    assert engine.pending_bytes == 2 * size
    assert engine.has_room(size) and engine.has_room(2 * size)
    assert not engine.has_room(3 * size)
    check(engine)


def test_an_empty_engine_takes_an_action_larger_than_the_bound() -> None:
    engine = BulkEngine(config(max_bytes=100, max_pending_bytes=200))
    assert engine.has_room(10_000)


def test_concurrency_limit_and_aimd() -> None:
    engine = BulkEngine(config(max_actions=1, workers=4))
    for i in range(8):
        engine.add(line(i), True, 0.0)
    flying = [engine.take(0.0) for _ in range(4)]
    assert all(flying) and engine.take(0.0) is None  # 4 in flight
    engine.settle_answer(flying[0], answer(flying[0], [429]), 0.0, 0.5)  # type: ignore[arg-type]
    assert engine.limit == 2
    engine.settle_answer(flying[1], answer(flying[1], [429]), 0.0, 0.5)  # type: ignore[arg-type]
    assert engine.limit == 2  # same round of requests: halved once
    engine.settle_answer(flying[2], answer(flying[2]), 0.0, 0.5)  # type: ignore[arg-type]
    assert engine.limit == 3
    more = [engine.take(0.0), engine.take(0.0)]  # 1 in flight, limit 3: two more
    assert all(more) and engine.take(0.0) is None
    check(engine, [flying[3], *more])  # type: ignore[list-item]


# -- outcomes ------------------------------------------------------------------------------


def _one_batch(
    n: int = 4, *, safe: bool = True, collect: bool = True, **kw: Any
) -> tuple[BulkEngine, Batch]:
    engine = BulkEngine(config(max_actions=n, **kw), collect_successes=collect)
    for i in range(n):
        engine.add(line(i, safe=safe), safe, 0.0)
    batch = engine.take(0.0)
    assert batch is not None
    return engine, batch


def test_mixed_answer() -> None:
    engine, batch = _one_batch()
    s = engine.settle_answer(batch, answer(batch, [201, 400, 429, 201]), 1.0, 0.5)
    assert (s.succeeded, s.retried, s.dead_lettered) == (2, 1, 1)
    assert [x[0] for x in s.successes] == [line(0), line(3)]
    (letter,) = written(engine)
    assert (letter.line, letter.outcome, letter.status) == (line(1), "rejected", 400)
    assert letter.error_type == "document_parsing_exception" and letter.attempts == 1
    assert (engine.retried_requests, engine.retried_documents) == (0, 0)  # counted when sent
    check(engine)
    assert engine.tick(1.0 + s.delay)
    retry = engine.take(1.0 + s.delay)
    assert retry is not None and retry.lines == [line(2)] and retry.kind == "retry"
    stats = engine.stats()
    assert (stats.retried_requests, stats.retried_documents, stats.batches) == (1, 1, 2)
    assert stats.retried == stats.retried_documents  # the deprecated alias
    engine.settle_answer(retry, answer(retry), 2.0, 0.5)
    assert engine.stats().created == 3 and engine.pending == 0
    check(engine)


def test_results_are_counted() -> None:
    engine, batch = _one_batch()
    body = {
        "errors": False,
        "items": [
            {"index": {"status": 200, "result": "updated"}},
            {"update": {"status": 200, "result": "noop"}},
            {"delete": {"status": 200, "result": "deleted"}},
            {"delete": {"status": 404, "result": "not_found"}},
        ],
    }
    engine.settle_answer(batch, body, 0.0, 0.5)
    stats = engine.stats()
    assert (stats.updated, stats.noop, stats.deleted, stats.not_found) == (1, 1, 1, 1)
    assert stats.succeeded == 4


def test_a_uniform_answer_settles_like_the_parsed_one() -> None:
    engine, batch = _one_batch()
    parsed_engine, parsed_batch = _one_batch()
    s = engine.settle_answer(batch, UniformAnswer("index", "updated", 200, 4), 0.0, 0.5)
    body = {"errors": False, "items": [{"index": {"status": 200, "result": "updated"}}] * 4}
    p = parsed_engine.settle_answer(parsed_batch, body, 0.0, 0.5)
    assert (s.verdict, s.succeeded, s.retried, s.dead_lettered) == ("answered", 4, 0, 0)
    assert s.successes == p.successes == [(line(i), "index", 200, "updated") for i in range(4)]
    assert engine.stats() == parsed_engine.stats() and engine.stats().updated == 4
    check(engine)


def test_a_uniform_answer_collects_no_successes_unless_asked() -> None:
    engine, batch = _one_batch(2, collect=False)
    s = engine.settle_answer(batch, UniformAnswer("create", "created", 201, 2), 0.0, 0.5)
    assert s.succeeded == 2 and s.successes == [] and engine.stats().created == 2
    check(engine)


@pytest.mark.parametrize("count", [3, 5])
def test_a_uniform_answer_with_the_wrong_count_is_a_lost_request(count: int) -> None:
    engine, batch = _one_batch()
    s = engine.settle_answer(batch, UniformAnswer("index", "created", 201, count), 0.0, 0.5)
    assert s.verdict == "lost" and s.retried == 4 and f"{count} items for 4" in s.reason
    assert engine.succeeded == 0
    check(engine)


@pytest.mark.parametrize(
    "body",
    [
        {"errors": False, "items": [{"index": {"status": 201}}] * 3},  # count mismatch
        None,  # empty body
        "<html>",  # not JSON object
        {"errors": False, "items": [{"index": {"status": 201}}] * 3 + [{"index": {}}]},
        {"errors": False, "items": [{"index": {"status": 201}}] * 3 + [42]},
    ],
)
def test_untrustworthy_answer_is_a_lost_request(body: Any) -> None:
    engine, batch = _one_batch()
    s = engine.settle_answer(batch, body, 0.0, 0.5)
    assert s.verdict == "lost" and s.retried == 4
    assert engine.succeeded == 0  # nothing of the partial answer was believed
    assert all(item.lost and item.attempts == 1 for item in batch.states())
    check(engine)


def test_lost_request_resends_idempotent_and_dead_letters_the_rest() -> None:
    engine = BulkEngine(config(max_actions=4))
    for i, safe in enumerate([True, False, True, False]):
        engine.add(line(i, safe=safe), safe, 0.0)
    batch = engine.take(0.0)
    assert batch is not None
    exc = errors.ConnectionError("reset", request_sent=True)
    s = engine.settle_error(batch, exc, 0.0, 0.5)
    assert (s.verdict, s.retried, s.dead_lettered) == ("lost", 2, 2)
    letters = written(engine)
    assert [x.line for x in letters] == [line(1, safe=False), line(3, safe=False)]
    assert {x.outcome for x in letters} == {"unknown"}
    check(engine)


def test_not_sent_resends_everything_without_counting_an_attempt() -> None:
    engine, batch = _one_batch(safe=False)
    s = engine.settle_error(batch, errors.ConnectionError("refused"), 0.0, 0.5)
    assert (s.verdict, s.retried, s.dead_lettered) == ("resend", 4, 0)
    assert all(item.attempts == 0 for item in batch.states())
    # Nothing reached a server, but the resend is still charged: in an outage such resends
    # are all there is, and uncharged they would never meet the budget.
    assert engine.budget.granted == 1
    check(engine)


@pytest.mark.parametrize(
    "exc",
    [errors.NoLiveNodesError("none live", next_probe_in=0.0), errors.ConnectionError("refused")],
    ids=["no-live-nodes", "refused"],
)
def test_resends_after_an_outage_meet_the_budget_and_then_wait(exc: errors.TransportError) -> None:
    """With the budget spent, a resend waits ``backoff_cap`` for the cluster instead of going
    out after its short backoff; no document is dropped for it while its deadline allows."""
    engine = BulkEngine(
        config(
            max_actions=1,
            backoff_base=0.1,
            backoff_cap=2.0,
            budget=BudgetConfig(ratio=0.0, max_tokens=2.0, initial_tokens=2.0),
        )
    )
    delays: list[float] = []
    now = 0.0
    for i in range(4):
        engine.add(line(i), True, now)
        batch = engine.take(now)
        assert batch is not None
        delays.append(engine.settle_error(batch, exc, now, 1.0).delay)
        now += delays[-1]  # the hold (see the next test) ends with the retry's delay
    assert delays[:2] == [pytest.approx(0.1)] * 2
    assert delays[2:] == [2.0, 2.0]
    assert (engine.budget.granted, engine.budget.denied) == (2, 2)
    assert engine.stats().retries_denied == 2
    assert engine.stats().dead_lettered == 0 and engine.pending == 4
    check(engine)


@pytest.mark.parametrize(
    "exc",
    [
        errors.NoLiveNodesError("none live", next_probe_in=0.0),
        errors.ConnectionError("refused"),
        errors.ReadTimeout("no answer"),
    ],
    ids=["no-live-nodes", "refused", "lost"],
)
def test_a_request_without_answer_holds_every_worker_until_its_retry(
    exc: errors.TransportError,
) -> None:
    """Fresh batches wait too: with the cluster silent, each worker sending its next batch at
    once would make the load grow with the number of workers."""
    engine = BulkEngine(config(max_actions=1, workers=4, backoff_base=1.0, backoff_cap=4.0))
    for i in range(4):
        engine.add(line(i), True, 0.0)
    batch = engine.take(0.0)
    assert batch is not None
    delay = engine.settle_error(batch, exc, 0.0, 1.0).delay
    assert delay == 1.0
    assert engine.take(0.5) is None  # three fresh batches are ready, and a worker is free
    assert engine.next_wakeup(0.5) == pytest.approx(0.5)
    assert engine.tick(1.0) is True  # the timer wakes the senders
    ok = {"errors": False, "items": [{"index": {"status": 201}}]}
    # One request at a time until answers come back; each clean answer allows one more.
    for in_flight in (1, 2):
        taken = [engine.take(1.0) for _ in range(in_flight)]
        assert all(b is not None for b in taken)
        assert engine.take(1.0) is None
        for b in taken:
            assert b is not None
            engine.settle_answer(b, ok, 1.0, 0)
    assert engine.limit == 4
    check(engine)


def test_an_answer_ends_the_hold() -> None:
    engine = BulkEngine(config(max_actions=1, workers=2, backoff_base=1.0, backoff_cap=4.0))
    for i in range(3):
        engine.add(line(i), True, 0.0)
    first, second = engine.take(0.0), engine.take(0.0)
    assert first is not None and second is not None
    engine.settle_error(first, errors.ConnectionError("refused"), 0.0, 1.0)
    assert engine.take(0.1) is None
    engine.settle_answer(second, {"errors": False, "items": [{"index": {"status": 201}}]}, 0.1, 0)
    assert engine.take(0.1) is not None


def test_a_resend_after_no_live_nodes_waits_for_the_next_scheduled_probe() -> None:
    engine, batch = _one_batch(safe=True)
    exc = errors.NoLiveNodesError("none live", next_probe_in=3.5)
    s = engine.settle_error(batch, exc, 0.0, 0.0)
    assert s.verdict == "resend"
    assert s.delay == 3.5
    check(engine)


def test_backoff_grows_while_no_node_can_be_reached() -> None:
    engine, batch = _one_batch(max_attempts=2, backoff_base=1.0, backoff_cap=100.0)
    now, delays = 0.0, []
    for _ in range(5):
        s = engine.settle_error(batch, errors.NoLiveNodesError("none"), now, 1.0)
        delays.append(s.delay)
        now += s.delay
        engine.tick(now)
        batch = engine.take(now)  # type: ignore[assignment]
        assert batch is not None
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0]  # not sent: no attempt counted, no give-up
    check(engine, [batch])


def test_whole_request_429_honours_retry_after() -> None:
    engine, batch = _one_batch()
    s = engine.settle_error(batch, api(429, retry_after="7"), 0.0, 0.0)
    assert s.verdict == "resend" and s.delay == 7.0
    assert engine.limit == 1
    assert not engine.tick(6.9)
    assert engine.tick(7.0)
    check(engine)


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (401, "refused the client's credentials"),
        (403, "may not write with _bulk"),
        (400, "rejected the _bulk request itself"),
        (404, "rejected the _bulk request itself"),
    ],
)
def test_a_request_level_rejection_stops_the_engine(status: int, words: str) -> None:
    """401, 403 or any other 4xx of the request itself: every later request would carry the
    same credentials, path and parameters. The batch is dead-lettered with the server's
    reason, what is buffered as ``aborted``, once each."""
    engine = BulkEngine(config(max_actions=2))
    for i in range(5):
        engine.add(line(i), True, 0.0)
    batch = engine.take(0.0)
    assert batch is not None
    s = engine.settle_error(batch, api(status), 0.0, 0.5)
    assert engine.stopped_by is not None and s.stopped is engine.stopped_by
    assert isinstance(engine.stopped_by.cause, errors.ApiError)
    assert engine.stopped_by.cause.status == status
    assert words in engine.stopped_by.reason
    assert s.dead_lettered == 5 and engine.finished
    letters = written(engine)
    assert Counter(x.outcome for x in letters) == {"rejected": 2, "aborted": 3}
    assert all(words in x.reason for x in letters if x.outcome == "aborted")
    check(engine)


@pytest.mark.parametrize(
    "exc",
    [errors.TLSError("certificate verify failed"), errors.ProxyAuthenticationError("407")],
)
def test_tls_and_proxy_credentials_stop_the_engine(exc: errors.SturdySearchError) -> None:
    engine, batch = _one_batch()
    s = engine.settle_error(batch, exc, 0.0, 0.5)
    assert s.verdict == "fatal" and engine.stopped_by is not None
    assert engine.stopped_by.cause is exc
    check(engine)


def systemic_answer(batch: Batch, error: dict[str, Any], status: int) -> dict[str, Any]:
    return {"errors": True, "items": [{"index": {"status": status, "error": error}}] * len(batch)}


SYSTEMIC = [
    (404, "index_not_found_exception", "no such index [logs]", "does not exist"),
    (400, "invalid_index_name_exception", "Invalid index name [Logs], must be lowercase", "valid"),
    (400, "index_closed_exception", "closed", "is closed"),
    (403, "security_exception", "action [indices:data/write/bulk[s]] is unauthorized", "may not"),
    (403, "cluster_block_exception", "blocked by: [FORBIDDEN/8/index write (api)];", "blocked"),
    (
        429,
        "cluster_block_exception",
        "index [logs] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage "
        "watermark, index has read-only-allow-delete block];",
        "read_only_allow_delete",
    ),
]


@pytest.mark.parametrize(("status", "error_type", "reason", "words"), SYSTEMIC)
def test_an_answer_failing_every_item_of_one_index_systemically_stops(
    status: int, error_type: str, reason: str, words: str
) -> None:
    engine = BulkEngine(config(max_actions=2), index="logs")
    for i in range(5):
        engine.add(line(i), True, 0.0)
    batch = engine.take(0.0)
    assert batch is not None
    error = {"type": error_type, "reason": reason}
    s = engine.settle_answer(batch, systemic_answer(batch, error, status), 0.0, 0.5)
    stop = engine.stopped_by
    assert stop is not None and s.stopped is stop and words in stop.reason
    assert "[logs]" in stop.reason or error_type == "cluster_block_exception"
    assert isinstance(stop.cause, errors.ApiError) and stop.cause.error_type == error_type
    assert engine.take(0.0) is None and engine.finished  # nothing more is sent
    letters = written(engine)
    assert Counter(x.outcome for x in letters) == {"rejected": 2, "aborted": 3}
    assert {x.error_type for x in letters if x.outcome == "rejected"} == {error_type}
    check(engine)


def test_a_systemic_failure_of_some_items_goes_on() -> None:
    """A closed index named per document, beside documents that went in: dead-letter those,
    keep going."""
    engine, batch = _one_batch()
    body = answer(batch)
    body["items"][1] = {"index": {"status": 400, "error": {"type": "index_closed_exception"}}}
    s = engine.settle_answer(batch, body, 0.0, 0.5)
    assert s.stopped is None and engine.stopped_by is None and engine.aborted is None
    assert s.dead_lettered == 1 and s.succeeded == 3
    check(engine)


def test_a_systemic_failure_over_several_indices_goes_on() -> None:
    """Every item failed systemically, but they went to two indices (a multi-index load): the
    next batch may go to an index that is fine."""
    engine = BulkEngine(config(max_actions=2), index="logs")
    engine.add(b'{"index":{"_index":"a","_id":"1"}}\n{}\n', True, 0.0)
    engine.add(b'{"index":{"_index":"b","_id":"2"}}\n{}\n', True, 0.0)
    batch = engine.take(0.0)
    assert batch is not None
    error = {"type": "index_not_found_exception", "reason": "no such index"}
    s = engine.settle_answer(batch, systemic_answer(batch, error, 404), 0.0, 0.5)
    assert s.stopped is None and s.dead_lettered == 2 and engine.aborted is None
    check(engine)


def test_every_item_of_one_named_index_stops() -> None:
    """Actions naming their own ``_index`` (a replay, a load without a default index), all
    for one index that is missing: the load stops, and the reason names that index."""
    engine = BulkEngine(config(max_actions=2))
    for i in range(2):
        engine.add(b'{"index":{"_index":"gone","_id":"%d"}}\n{}\n' % i, True, 0.0)
    batch = engine.take(0.0)
    assert batch is not None
    error = {"type": "index_not_found_exception", "reason": "no such index [gone]"}
    engine.settle_answer(batch, systemic_answer(batch, error, 404), 0.0, 0.5)
    assert engine.stopped_by is not None and "index [gone]" in engine.stopped_by.reason
    check(engine)


def test_a_transient_block_is_retried() -> None:
    """No elected master, a cluster starting: blocks that lift by themselves are retried."""
    engine, batch = _one_batch()
    error = {
        "type": "cluster_block_exception",
        "reason": "blocked by: [SERVICE_UNAVAILABLE/2/no master];",
    }
    s = engine.settle_answer(batch, systemic_answer(batch, error, 503), 0.0, 0.5)
    assert s.stopped is None and s.retried == 4
    check(engine)


# -- no answer for abort_after ---------------------------------------------------------------


def fail_until(engine: BulkEngine, batch: Batch, exc: Any, now: float, end: float) -> float:
    """Settle ``batch``, then each retry, with ``exc``, stepping the clock by 0.5 s, until the
    engine stops or ``end`` passes (nothing is in flight then); returns the time reached."""
    while True:
        engine.settle_error(batch, exc, now, 0.5)
        while True:
            if engine.stopped_by is not None or now >= end:
                return now
            now += 0.5
            engine.tick(now)
            taken = engine.take(now)
            if taken is not None:
                batch = taken
                break


@pytest.mark.parametrize(
    "exc",
    [
        errors.ConnectionError("refused"),
        errors.NoLiveNodesError("none", next_probe_in=1.0),
        errors.ReadTimeout("quiet"),
        api(503),
        api(502),
    ],
)
def test_no_answer_for_abort_after_stops_the_engine(exc: errors.SturdySearchError) -> None:
    engine, batch = _one_batch(
        abort_after=10.0, backoff_base=0.5, backoff_cap=1.0, delivery_timeout=600.0
    )
    stopped_at = fail_until(engine, batch, exc, 0.0, 100.0)
    stop = engine.stopped_by
    assert stop is not None and stop.cause is exc
    assert stopped_at == 10.0  # the first failure at 0, then abort_after
    assert "no answer from the cluster for 10.0 s" in stop.reason and "abort_after=" in stop.reason
    assert engine.finished
    assert {x.outcome for x in written(engine)} == {"aborted"}
    check(engine)


def test_an_answer_starts_the_count_anew() -> None:
    """A blip shorter than ``abort_after``, an answer, another blip: never ``abort_after``
    seconds without an answer, so the load goes on until the second blip lasts that long."""
    engine, batch = _one_batch(abort_after=10.0, backoff_base=0.5, backoff_cap=1.0)
    refused = errors.ConnectionError("refused")
    assert engine.settle_error(batch, refused, 0.0, 0.5).silence  # the driver warns once
    retry = _retry(engine, 9.0)
    assert not engine.settle_error(retry, refused, 9.0, 0.5).silence  # the same silence
    retry = _retry(engine, 9.5)
    engine.settle_answer(retry, answer(retry), 9.6, 0.5)  # answered: the count ends
    assert not engine.tick(10.0) and engine.stopped_by is None
    assert engine.settle_error(_fresh(engine, 12.0), refused, 12.0, 0.5).silence
    engine.tick(21.9)
    assert engine.stopped_by is None
    assert engine.tick(22.0) and engine.stopped_by is not None  # 10 s from the new first failure
    check(engine)


def test_the_timer_stops_a_silent_load_while_requests_are_in_flight() -> None:
    """The first request failed unanswered, its retry hangs (a blackholed node): the engine
    stops at ``abort_after`` from its timer, not only when the hanging request returns."""
    engine, batch = _one_batch(abort_after=10.0, backoff_base=0.5, backoff_cap=1.0)
    engine.settle_error(batch, errors.ReadTimeout("quiet"), 0.0, 0.5)
    hanging = _retry(engine, 1.0)
    assert engine.next_wakeup(1.0) == pytest.approx(9.0)
    assert engine.tick(10.0) and engine.stopped_by is not None
    check(engine, [hanging])
    # The hanging request ends at last: not retried, dead-lettered once.
    engine.settle_error(hanging, errors.ReadTimeout("quiet"), 12.0, 0.5)
    assert engine.finished
    assert {x.outcome for x in written(engine)} == {"aborted"}
    check(engine)


def test_errors_that_are_answers_are_not_silence() -> None:
    """A 500 or a 429 shows that a node is there: however long they go on, the load does not
    stop (each document still ends at its delivery timeout)."""
    for exc in (api(500), api(429)):
        engine, batch = _one_batch(abort_after=10.0, backoff_base=0.5, backoff_cap=1.0)
        fail_until(engine, batch, exc, 0.0, 30.0)
        assert engine.stopped_by is None and engine.aborted is None
        check(engine)


def _retry(engine: BulkEngine, now: float) -> Batch:
    engine.tick(now)
    batch = engine.take(now)
    assert batch is not None
    return batch


def _fresh(engine: BulkEngine, now: float) -> Batch:
    engine.add(line(100), True, now)
    engine.seal()
    batch = engine.take(now)
    assert batch is not None
    return batch


def test_conflict_after_a_lost_attempt_says_so() -> None:
    engine, batch = _one_batch(1)
    engine.settle_error(batch, errors.ReadTimeout("quiet"), 0.0, 0.0)
    engine.tick(0.0)
    retry = engine.take(0.0)
    assert retry is not None
    engine.settle_answer(retry, answer(retry, [409]), 0.0, 0.5)
    (letter,) = written(engine)
    assert letter.outcome == "rejected" and "earlier attempt" in letter.reason
    assert letter.attempts == 2


# -- 413 -----------------------------------------------------------------------------------


def test_413_splits_in_halves_and_lowers_max_bytes() -> None:
    engine, batch = _one_batch(4, max_bytes=1 << 20)
    s = engine.settle_error(batch, api(413), 0.0, 0.5)
    assert s.verdict == "split" and engine.splits == 1
    assert engine.max_bytes == 64 * 1024  # halved, but not below the floor
    halves = [engine.take(0.0), engine.take(0.0)]
    assert [h.lines for h in halves if h] == [[line(0), line(1)], [line(2), line(3)]] or [
        h.lines for h in halves if h
    ] == [[line(2), line(3)], [line(0), line(1)]]
    assert all(h is not None and h.kind == "split" for h in halves)
    check(engine, halves)  # type: ignore[arg-type]


def test_413_on_a_single_action_dead_letters_it_as_too_large() -> None:
    engine, batch = _one_batch(4)
    engine.settle_error(batch, api(413), 0.0, 0.5)
    for _ in range(2):  # split down to single actions
        while (part := engine.take(0.0)) is not None:
            engine.settle_error(part, api(413), 0.0, 0.5)
    assert engine.pending == 4 and engine.dead_pending == 4
    letters = written(engine)
    assert {x.outcome for x in letters} == {"too_large"} and len(letters) == 4
    check(engine)


def test_oversized_action_is_dead_lettered_unsent() -> None:
    engine = BulkEngine(config(max_document_bytes=50))
    assert engine.add(line(1, size=100), True, 0.0) == DEAD
    (letter,) = written(engine)
    assert letter.outcome == "too_large" and engine.pending_bytes == 0


# -- time ----------------------------------------------------------------------------------


def test_retry_that_would_pass_the_deadline_is_dead_lettered_now() -> None:
    engine, batch = _one_batch(2, delivery_timeout=10.0)
    s = engine.settle_answer(batch, answer(batch, [429, 201]), 9.99, 1.0)
    assert s.dead_lettered == 1
    (letter,) = written(engine)
    assert letter.outcome == "exhausted" and "delivery timeout" in letter.reason
    assert letter.status == 429
    check(engine)


def test_batch_queued_past_its_deadline_is_expired() -> None:
    engine = BulkEngine(config(max_actions=1, workers=1, delivery_timeout=5.0))
    engine.add(line(1), True, 0.0)
    engine.add(line(2), True, 0.0)
    first = engine.take(0.0)
    assert first is not None and engine.take(0.0) is None  # one worker busy
    assert engine.next_wakeup(0.0) == 5.0
    engine.tick(5.0)
    (letter,) = written(engine)
    assert letter.line == line(2) and letter.outcome == "exhausted" and letter.attempts == 0
    check(engine, [first])


def test_request_timeout_never_outlives_the_deadline() -> None:
    engine, batch = _one_batch(delivery_timeout=100.0, request_timeout=60.0)
    assert engine.request_timeout(batch, 0.0) == 60.0
    assert engine.request_timeout(batch, 70.0) == pytest.approx(30.0)


def test_max_attempts() -> None:
    engine, batch = _one_batch(1, max_attempts=3, backoff_cap=0.01, backoff_base=0.01)
    now = 0.0
    for _ in range(3):
        engine.settle_answer(batch, answer(batch, [503]), now, 0.5)
        now += 1
        engine.tick(now)
        batch = engine.take(now)  # type: ignore[assignment]
        if batch is None:
            break
    (letter,) = written(engine)
    assert letter.outcome == "exhausted" and letter.attempts == 3
    assert "after 3 attempts" in letter.reason
    check(engine)


def test_backoff_grows_with_attempts_and_budget_exhaustion_slows_retries() -> None:
    cfg = config(max_actions=1, backoff_base=1.0, backoff_cap=30.0)
    engine = BulkEngine(cfg)
    engine.budget._balance = 1.0
    engine.add(line(1), True, 0.0)
    batch = engine.take(0.0)
    assert batch is not None
    s1 = engine.settle_answer(batch, answer(batch, [503]), 0.0, 1.0)
    assert s1.delay == 1.0  # rand=1: the full first ceiling
    engine.tick(1.0)
    batch = engine.take(1.0)
    assert batch is not None
    engine.budget._balance = 0.0
    s2 = engine.settle_answer(batch, answer(batch, [503]), 1.0, 0.0)
    assert s2.delay == 30.0  # no token: the slow lane


# -- stopping and accounting ---------------------------------------------------------------


def test_abort_dead_letters_everything_not_in_flight() -> None:
    engine = BulkEngine(config(max_actions=2))
    for i in range(5):
        engine.add(line(i), True, 0.0)
    flying = engine.take(0.0)
    assert flying is not None
    assert engine.abort("stop") == 3
    assert engine.take(0.0) is None
    engine.settle_answer(flying, answer(flying, [429, 201]), 0.0, 0.5)
    outcomes = Counter(x.outcome for x in written(engine))
    assert outcomes == {"aborted": 4}
    assert engine.finished and engine.pending == 0
    check(engine)


OUTCOMES: list[Any] = [
    "ok",
    "mixed",
    "bad",
    "systemic",
    errors.ConnectionError("refused"),
    errors.ConnectionError("reset", request_sent=True),
    errors.ReadTimeout("quiet"),
    errors.NoLiveNodesError("none"),
    api(413),
    api(429, retry_after="0.5"),
    api(502),
    api(400),
    api(401),
]


@pytest.mark.parametrize("seed", range(60))
def test_every_action_gets_exactly_one_outcome(seed: int) -> None:
    """Random producers, answers and failures: at every step the engine's contents match its
    counters, and at the end every action is applied once or dead-lettered once."""
    rng = random.Random(seed)
    cfg = BulkConfig(
        max_actions=rng.choice([1, 3, 10]),
        max_bytes=rng.choice([200, 1000, 1 << 20]),
        workers=rng.choice([1, 2, 4]),
        delivery_timeout=rng.choice([5.0, 60.0]),
        max_attempts=rng.choice([2, 5, 50]),
        backoff_base=0.1,
        backoff_cap=2.0,
        flush_interval=0.5,
        abort_after=rng.choice([2.0, 60.0]),
    )
    engine = BulkEngine(cfg, collect_successes=True)
    added: list[bytes] = []
    applied: list[bytes] = []
    dead: list[bytes] = []
    inflight: list[Batch] = []
    now = 0.0
    n = rng.randint(1, 120)
    i = 0

    def settle(batch: Batch) -> None:
        choice = rng.choice(OUTCOMES[:-1]) if rng.random() < 0.97 else OUTCOMES[-1]
        inflight.remove(batch)
        if choice == "ok":
            s = engine.settle_answer(batch, answer(batch), now, rng.random())
        elif choice == "mixed":
            statuses = [rng.choice([201, 201, 400, 429, 503, 409]) for _ in batch.lines]
            s = engine.settle_answer(batch, answer(batch, statuses), now, rng.random())
        elif choice == "bad":
            body = answer(batch)
            body["items"] = body["items"][:-1]
            s = engine.settle_answer(batch, body, now, rng.random())
        elif choice == "systemic":
            error = {"type": "index_not_found_exception", "reason": "no such index"}
            s = engine.settle_answer(batch, systemic_answer(batch, error, 404), now, rng.random())
        else:
            s = engine.settle_error(batch, choice, now, rng.random())
        applied.extend(x[0] for x in s.successes)

    while True:
        step = rng.random()
        if engine.aborted is not None:
            n = i  # the engine stopped the load: the driver takes nothing more
        if i < n and step < 0.5:
            safe = rng.random() < 0.8
            item = line(i, safe=safe, size=rng.choice([0, 50]))
            if engine.has_room(len(item)):
                engine.add(item, safe, now)
                added.append(item)
                i += 1
            elif rng.random() < 0.5:
                engine.seal()
            else:
                engine.seal_if_idle()
        elif step < 0.7:
            batch = engine.take(now)
            if batch is not None:
                inflight.append(batch)
        elif step < 0.85 and inflight:
            settle(rng.choice(inflight))
        else:
            now += rng.choice([0.01, 0.3, 1.0, 3.0])
            engine.tick(now)
        dead.extend(x.line for x in written(engine) if x.line is not None)
        check(engine, inflight)
        if i == n and not engine.closing:
            engine.close_input()
        if engine.finished:
            break
    assert engine.pending == 0
    assert Counter(applied) + Counter(dead) == Counter(added)
    assert max(Counter(applied + dead).values()) == 1
    assert (engine.stopped_by is not None) == (engine.aborted is not None)


# -- the producer's context ------------------------------------------------------------------


def _add_with_context(engine: BulkEngine, i: int, **kw: Any) -> int:
    item = line(i, **kw)
    code = engine.add(item, kw.get("safe", True), 0.0)
    if code != FULL:
        engine.attach(item, code, {"line": i})
    return code


def test_context_rides_with_its_action_through_retries_and_splits() -> None:
    """Only the actions given a context carry one, whichever batch (open, or just made ready by
    this very action) took them, and they keep it through a 429 retry and a 413 split."""
    engine = BulkEngine(config(max_actions=3, max_document_bytes=10_000))
    assert _add_with_context(engine, 0) == WAKE  # opened the batch
    engine.add(line(1), True, 0.0)  # no context
    assert _add_with_context(engine, 2) == WAKE  # filled it: the batch is ready
    batch = engine.take(0.0)
    assert batch is not None and batch.contexts == {0: {"line": 0}, 2: {"line": 2}}
    s = engine.settle_answer(batch, answer(batch, [429, 400, 429]), 1.0, 0.5)
    (rejected,) = written(engine)
    assert rejected.line == line(1) and rejected.context is None
    engine.tick(1.0 + s.delay)
    retry = engine.take(1.0 + s.delay)
    assert retry is not None and retry.lines == [line(0), line(2)]
    engine.settle_error(retry, api(413), 2.0, 0.5)  # split in two single-action halves
    for _ in range(2):  # one at a time: the 429 halved the concurrency
        half = engine.take(2.0)
        assert half is not None and len(half) == 1
        engine.settle_error(half, api(413), 3.0, 0.5)  # alone: too large
    letters = written(engine)
    assert sorted((x.outcome, x.context["line"]) for x in letters) == [
        ("too_large", 0),
        ("too_large", 2),
    ]
    check(engine)


def test_context_of_an_action_dead_lettered_at_once_or_aborted() -> None:
    engine = BulkEngine(config(max_actions=10, max_document_bytes=100))
    assert _add_with_context(engine, 7, size=200) == DEAD  # too large to take at all
    (big,) = written(engine)
    assert (big.outcome, big.context) == ("too_large", {"line": 7})
    _add_with_context(engine, 8)
    engine.abort("stop")
    (aborted,) = written(engine)
    assert (aborted.outcome, aborted.context) == ("aborted", {"line": 8})
    check(engine)

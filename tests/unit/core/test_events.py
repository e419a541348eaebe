"""The trace hook (``sturdysearch._core.events``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from sturdysearch._core.events import Event, Tracer, describe


@pytest.fixture(autouse=True)
def quiet_logger() -> Iterator[None]:
    """These tests assume DEBUG is off unless they turn it on."""
    logger = logging.getLogger("sturdysearch")
    level = logger.level
    logger.setLevel(logging.INFO)
    yield
    logger.setLevel(level)


def test_listeners_receive_events() -> None:
    tracer = Tracer()
    got_a: list[Event] = []
    got_b: list[Event] = []
    tracer.subscribe(got_a.append)
    tracer.subscribe(got_b.append)
    tracer.emit("request.attempt", node="http://h:9200", status=200)
    tracer.emit("node.ejected", node="http://h:9200")
    assert [e.name for e in got_a] == ["request.attempt", "node.ejected"]
    assert got_a == got_b
    assert got_a[0].fields == {"node": "http://h:9200", "status": 200}


def test_event_fields_default() -> None:
    assert Event("x").fields == {}
    with pytest.raises(AttributeError):
        Event("x").name = "y"  # type: ignore[misc]


def test_failing_listener_does_not_propagate(caplog: pytest.LogCaptureFixture) -> None:
    tracer = Tracer()
    after: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("listener bug")

    tracer.subscribe(broken)
    tracer.subscribe(after.append)
    with caplog.at_level(logging.ERROR, logger="sturdysearch"):
        tracer.emit("request.retry", attempt=1)
    assert [e.name for e in after] == ["request.retry"]
    failures = [r for r in caplog.records if "event listener" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].levelno == logging.ERROR
    assert "request.retry" in failures[0].getMessage()
    assert failures[0].exc_info is not None
    assert isinstance(failures[0].exc_info[1], RuntimeError)


def test_unsubscribe() -> None:
    tracer = Tracer()
    got: list[Event] = []
    other: list[Event] = []
    unsubscribe = tracer.subscribe(got.append)
    tracer.subscribe(other.append)
    tracer.emit("one")
    unsubscribe()
    tracer.emit("two")
    unsubscribe()  # idempotent
    tracer.emit("three")
    assert [e.name for e in got] == ["one"]
    assert [e.name for e in other] == ["one", "two", "three"]


def test_active() -> None:
    tracer = Tracer()
    assert tracer.active is False
    unsubscribe = tracer.subscribe(lambda e: None)
    assert tracer.active is True
    unsubscribe()
    assert tracer.active is False


def test_active_when_debug_logging(caplog: pytest.LogCaptureFixture) -> None:
    tracer = Tracer()
    with caplog.at_level(logging.DEBUG, logger="sturdysearch"):
        assert tracer.active is True


def test_debug_logging_through_caplog(caplog: pytest.LogCaptureFixture) -> None:
    tracer = Tracer()
    with caplog.at_level(logging.DEBUG, logger="sturdysearch"):
        tracer.emit(
            "request.attempt",
            node="http://h:9200",
            method="GET",
            path="/i/_doc/1",
            attempt=2,
            outcome="ok",
            status=200,
            duration=0.0125,
        )
    records = [r for r in caplog.records if r.name.startswith("sturdysearch")]
    assert len(records) == 1
    record = records[0]
    assert record.name == "sturdysearch.transport"
    assert record.levelno == logging.DEBUG
    assert record.getMessage() == (
        "GET /i/_doc/1 on http://h:9200: attempt 2 ok (status 200, 12.5 ms)"
    )
    assert (record.node, record.method, record.path, record.status, record.attempt) == (  # type: ignore[attr-defined]
        "http://h:9200",
        "GET",
        "/i/_doc/1",
        200,
        2,
    )
    assert record.duration_ms == 12.5  # type: ignore[attr-defined]
    event = record.sturdysearch_event  # type: ignore[attr-defined]
    assert event.name == "request.attempt" and event.fields["attempt"] == 2


@pytest.mark.parametrize(
    ("name", "level", "logger_name"),
    [
        ("request.retry", logging.INFO, "sturdysearch.transport"),
        ("retry.budget_exhausted", logging.WARNING, "sturdysearch.transport"),
        ("node.ejected", logging.WARNING, "sturdysearch.nodes"),
        ("node.readmitted", logging.INFO, "sturdysearch.nodes"),
        ("nodes.sniffed", logging.INFO, "sturdysearch.nodes"),
        ("node.probe", logging.DEBUG, "sturdysearch.nodes"),
        ("bulk.batch", logging.DEBUG, "sturdysearch.bulk"),
    ],
)
def test_event_levels(
    caplog: pytest.LogCaptureFixture, name: str, level: int, logger_name: str
) -> None:
    """Rare events log above DEBUG without anyone listening; frequent ones only at DEBUG."""
    tracer = Tracer()
    with caplog.at_level(logging.DEBUG, logger="sturdysearch"):
        tracer.emit(name, node="http://h:9200")
    (record,) = [r for r in caplog.records if r.name.startswith("sturdysearch")]
    assert (record.levelno, record.name) == (level, logger_name)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sturdysearch"):
        tracer.emit(name, node="http://h:9200")
    shown = [r for r in caplog.records if r.name.startswith("sturdysearch")]
    assert len(shown) == (1 if level >= logging.INFO else 0)


def test_no_logging_without_debug(caplog: pytest.LogCaptureFixture) -> None:
    tracer = Tracer()
    with caplog.at_level(logging.INFO, logger="sturdysearch"):
        tracer.emit("request.attempt", node="x")
    assert [r for r in caplog.records if r.name.startswith("sturdysearch")] == []


def test_emit_without_listeners_is_noop() -> None:
    Tracer().emit("x", a=1)  # no error, nothing to observe


@pytest.mark.parametrize(
    ("live", "then"),
    [
        (2, "calls go to the 2 live nodes left"),
        (1, "calls go to the 1 live node left"),
        (0, "no node is live now: calls wait for the probes"),
        (None, "calls go to the other nodes"),  # an event from a listener's own emit
    ],
)
def test_an_ejection_says_where_calls_go_now(live: int | None, then: str) -> None:
    """A single-node client once read "calls go to the other nodes" when there were none."""
    fields: dict[str, object] = {"node": "http://a:9200", "reason": "ConnectionError"}
    if live is not None:
        fields["live"] = live
    text = describe(Event("node.ejected", fields))
    assert text == (
        f"node http://a:9200 ejected after ConnectionError; {then}, and it is probed with "
        "backoff until it answers"
    )

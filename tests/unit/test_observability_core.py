"""Pure pieces of observability: endpoint identification, the call scope's bookkeeping, the
dead-letter summaries' rate limit, the ECS formatter, and the settings' validation."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import pytest

from sturdysearch import Observability
from sturdysearch._core.bulk.deadletter import DeadLetter
from sturdysearch._core.bulk.driving import DeadLetterLog
from sturdysearch._core.nodes import NodeConfig
from sturdysearch._core.observe import AttemptRecord, BatchScope, CallScope
from sturdysearch._core.operation import identify
from sturdysearch._core.request import RequestSpec
from sturdysearch.errors import ConfigError, ServerError
from sturdysearch.logging import JsonFormatter


@pytest.mark.parametrize(
    ("method", "path", "flavor", "name", "parts"),
    [
        ("POST", "/logs/_search", None, "search", {"index": "logs"}),
        ("GET", "/_search", None, "search", {}),
        ("PUT", "/i/_doc/a%2Fb", None, "index", {"index": "i", "id": "a/b"}),
        ("POST", "/_bulk", None, "bulk", {}),
        ("GET", "/", None, "info", {}),
        ("HEAD", "/", None, "ping", {}),
        ("GET", "/_cat/indices", None, "cat.indices", {}),
        ("POST", "/i/_pit", "elasticsearch", "open_point_in_time", {"index": "i"}),
        ("POST", "/i/_search/point_in_time", "opensearch", "create_pit", {"index": "i"}),
        ("POST", "/_all/_refresh", None, "indices.refresh", {"index": "_all"}),
    ],
)
def test_identify(
    method: str, path: str, flavor: str | None, name: str, parts: dict[str, str]
) -> None:
    op = identify(method, path, flavor)
    assert op is not None
    assert (op.name, dict(op.parts)) == (name, parts)


def test_identify_unknown_path() -> None:
    assert identify("GET", "/no/such/endpoint/really/here") is None


class Recorder:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def enabled(self) -> bool:
        return True

    def call_started(self, scope: CallScope) -> None:
        self.seen.append("call")

    def attempt_started(self, scope: CallScope, attempt: AttemptRecord) -> None:
        self.seen.append(f"attempt {attempt.node.port} hedge={attempt.hedge}")
        attempt.headers["traceparent"] = "tp"

    def attempt_ended(self, scope: CallScope, attempt: AttemptRecord) -> None:
        self.seen.append(f"end {attempt.node.port} {attempt.outcome}")

    def call_ended(self, scope: CallScope) -> None:
        self.seen.append(f"call end {scope.status} {len(scope.attempts)}")

    def batch_started(self, batch: BatchScope) -> None:
        pass

    def batch_ended(self, batch: BatchScope) -> None:
        pass


def test_call_scope_books_attempts_hedges_and_losers() -> None:
    a, b = NodeConfig("http", "h", 1), NodeConfig("http", "h", 2)
    rec = Recorder()
    scope = CallScope(RequestSpec("POST", "/i/_search"), 0.0, [rec], None, None)
    scope.opaque_id = "abc"
    assert scope.endpoint == "search"
    assert scope.attempt_sent(a, 1, 0.1) == {"traceparent": "tp", "x-opaque-id": "abc"}
    scope.attempt_done(a, 1, started=0.0, now=0.2, status=503, error=ServerError(503))
    scope.retried()
    scope.attempt_sent(a, 2, 0.3)
    scope.attempt_sent(b, 2, 0.4)  # a hedge while the primary is open
    scope.attempt_done(b, 2, started=0.4, now=0.5, status=200, error=None)
    scope.ended(0.6, 200, None)  # the primary never answered: cancelled
    assert rec.seen == [
        "call",
        "attempt 1 hedge=False",
        "end 1 ServerError",
        "attempt 1 hedge=False",
        "attempt 2 hedge=True",
        "end 2 ok",
        "end 1 cancelled",
        "call end 200 3",
    ]
    assert scope.retries == 1 and scope.duration == pytest.approx(0.6)


def test_failing_instrument_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(Recorder):
        def call_started(self, scope: CallScope) -> None:
            raise RuntimeError("bug")

    with caplog.at_level(logging.ERROR, logger="sturdysearch"):
        CallScope(RequestSpec("GET", "/"), 0.0, [Broken()], None, None)
    assert any("instrument hook" in r.getMessage() for r in caplog.records)


def _letters(n: int, reason: str = "mapper_parsing_exception: bad") -> list[DeadLetter]:
    return [DeadLetter(b'{"index":{}}\n{}\n', "rejected", reason) for _ in range(n)]


def test_dead_letter_log_rate_limits_and_closes_with_the_total() -> None:
    log = DeadLetterLog("/tmp/dl.ndjson", interval=60.0)
    first = log.add(_letters(2), now=0.0)
    assert first is not None and (first["count"], first["total"]) == (2, 2)
    assert log.add(_letters(3, "other"), now=10.0) is None  # within the interval
    later = log.add(_letters(1), now=61.0)
    assert later is not None and (later["count"], later["total"]) == (4, 6)
    assert later["reasons"] == ["rejected: other", "rejected: mapper_parsing_exception: bad"]
    closing = log.closing(now=62.0)
    assert closing is not None and closing["closing"] and closing["count"] == 6
    assert closing["reasons"] == ["rejected: mapper_parsing_exception: bad", "rejected: other"]
    assert DeadLetterLog("/x", 1.0).closing(0.0) is None


def test_json_formatter_ecs_fields() -> None:
    logger = logging.getLogger("sturdysearch.transport")
    record = logger.makeRecord(
        "sturdysearch.transport",
        logging.WARNING,
        __file__,
        10,
        "slow call",
        (),
        None,
        extra={
            "method": "POST",
            "path": "/i/_search",
            "status": 200,
            "node": "https://es1:9200",
            "duration_ms": 1500.0,
            "opaque_id": "t1",
            "trace_id": "0af7651916cd43dd8448eb211c80319c",
            "endpoint": "search",
            "service.name": "app",
        },
    )
    doc = json.loads(JsonFormatter(extra_fields={"service.version": "1.2"}).format(record))
    assert doc["log.level"] == "warning" and doc["message"] == "slow call"
    assert doc["ecs.version"] and doc["@timestamp"].endswith("Z")
    assert doc["http"] == {
        "request": {"method": "POST", "id": "t1"},
        "response": {"status_code": 200},
    }
    assert doc["url"] == {"path": "/i/_search"}
    assert doc["server"] == {"address": "es1", "port": 9200}
    assert doc["event"]["duration"] == 1_500_000_000
    assert doc["trace"] == {"id": "0af7651916cd43dd8448eb211c80319c"}
    assert doc["sturdysearch"]["endpoint"] == "search"
    assert doc["service"] == {"name": "app", "version": "1.2"}
    assert doc["log"]["logger"] == "sturdysearch.transport"


def test_json_formatter_exception() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    doc = json.loads(JsonFormatter().format(record))
    assert doc["error"]["type"] == "ValueError" and doc["error"]["message"] == "boom"
    assert "Traceback" in doc["error"]["stack_trace"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"slow_call": -1}, "slow_call"),
        ({"opaque_id": "a\nb"}, "line breaks"),
        ({"opaque_id": 5}, "must be a string"),
        ({"opentelemetry": "yes"}, "None, True or False"),
        ({"opentelemetry": False, "tracer_provider": object()}, "opentelemetry=False"),
        ({"dead_letter_log_interval": 0}, "dead_letter_log_interval"),
    ],
)
def test_observability_validation(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Observability(**options)


def test_client_installs_no_scope_without_a_backend() -> None:
    """OpenTelemetry off and DEBUG off: a call gets no scope at all (the hot path's cost is
    one tuple check and one level check)."""
    from sturdysearch import Client

    logging.getLogger("sturdysearch").setLevel(logging.INFO)
    with Client("http://127.0.0.1:9", observability=Observability(opentelemetry=False)) as c:
        assert c.tracer.call_scope(RequestSpec("GET", "/"), 0.0) is None
        slow = Client("http://127.0.0.1:9", observability=Observability(slow_call=1.0))
        assert slow.tracer.call_scope(RequestSpec("GET", "/"), 0.0) is not None
        slow.close()


def test_opentelemetry_is_neither_imported_nor_needed(tmp_path: Any) -> None:
    """``import sturdysearch`` never imports OpenTelemetry; with the package absent (blocked
    here) a client works and carries no OpenTelemetry instrument."""
    import subprocess

    script = """
import sys
import sturdysearch
assert "opentelemetry" not in sys.modules, "import sturdysearch loaded OpenTelemetry"

class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ModuleNotFoundError(name)
        return None

sys.meta_path.insert(0, Block())
from sturdysearch import Client, Observability
from sturdysearch.errors import ConfigError
with Client("http://127.0.0.1:9") as c:
    kinds = sorted(type(i).__name__ for i in c.tracer.instruments)
    assert kinds == ["CallLogger"], kinds
try:
    Observability(opentelemetry=True)
except ConfigError as exc:
    assert "sturdysearch[otel]" in str(exc)
else:
    raise AssertionError("opentelemetry=True without the package was accepted")
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"

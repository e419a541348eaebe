"""The client's thin drivers over the core flows, with the transport replaced by a fake: dialect
detection and its cache, the warning-once rule, scan cleanup when the consumer stops, and the
sleeps of ``update_with_retry``. No sockets are opened."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from sturdysearch import Client
from sturdysearch._core.request import RequestSpec
from sturdysearch._core.responses import Response, ResponseMeta
from sturdysearch.errors import AuthorizationError, ConflictError, NotFoundError

NODE = "http://127.0.0.1:9"

OPENSEARCH_2 = {"version": {"number": "2.19.6", "distribution": "opensearch"}, "name": "n"}
ELASTIC_9 = {"version": {"number": "9.5.4"}, "tagline": "You Know, for Search", "name": "n"}


def answer(body: Any, status: int = 200) -> Response:
    return Response(body, ResponseMeta(status, {}, NODE, 0.001))


class FakeTransport:
    def __init__(self, handler: Callable[[RequestSpec], Response]) -> None:
        self.handler = handler
        self.requests: list[RequestSpec] = []

    def __call__(self, spec: RequestSpec) -> Response:
        self.requests.append(spec)
        return self.handler(spec)

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]


@pytest.fixture
def client() -> Iterator[Client]:
    with Client([NODE]) as c:
        yield c


def fake(client: Client, handler: Callable[[RequestSpec], Response]) -> FakeTransport:
    transport = FakeTransport(handler)
    client._transport.perform = transport  # type: ignore[method-assign]
    return transport


def test_dialect_is_detected_once_and_again_after_readmission(client: Client) -> None:
    roots = [ELASTIC_9, OPENSEARCH_2]
    transport = fake(client, lambda spec: answer(roots[0]))
    assert client.dialect().server is not None
    assert client.dialect().pit == "elasticsearch"
    assert transport.paths() == ["GET /"]
    assert client.tracer.active is False  # no listener: no event per request
    roots.pop(0)
    (state,) = client._transport.health.states.values()
    state.alive, state.ejections = False, 1  # ejected...
    state.alive = True  # ...and re-admitted, perhaps upgraded meanwhile
    assert client.dialect().pit == "opensearch"
    assert client.dialect().pit == "opensearch"
    assert transport.paths() == ["GET /", "GET /"]


def test_info_refreshes_the_cached_dialect(client: Client) -> None:
    fake(client, lambda spec: answer(OPENSEARCH_2))
    info = client.info()
    assert str(info) == "opensearch 2.19.6"
    assert client.dialect().server == info


def test_unknown_server_is_warned_about_once(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    fake(client, lambda spec: answer({"version": {"number": "7.10.2"}}))
    with caplog.at_level(logging.WARNING, logger="sturdysearch"):
        client.dialect()
        (state,) = client._transport.health.states.values()
        state.ejections += 1
        client.dialect()
        client.info()
    warnings = [r for r in caplog.records if "neither Elasticsearch nor OpenSearch" in r.message]
    assert len(warnings) == 1


def test_detection_refused_gives_the_conservative_dialect(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    def handler(spec: RequestSpec) -> Response:
        raise AuthorizationError(403, reason="no monitor privilege")

    fake(client, handler)
    with caplog.at_level(logging.WARNING, logger="sturdysearch"):
        dialect = client.dialect()
    assert dialect.server is None and dialect.pit is None
    assert "could not be detected" in caplog.text
    with pytest.raises(AuthorizationError):
        client.info()  # asked explicitly: the refusal is the answer


def test_a_root_answer_that_is_no_root_document_is_survived(client: Client) -> None:
    fake(client, lambda spec: answer("<html>Welcome to nginx!</html>"))
    assert client.dialect().pit is None  # conservative: scan by scroll


def scan_server(total: int, size_seen: list[int]) -> Callable[[RequestSpec], Response]:
    state = {"pos": 0}

    def handler(spec: RequestSpec) -> Response:
        if spec.path == "/":
            return answer(ELASTIC_9)
        if spec.path == "/i/_pit":
            return answer({"id": "p1"})
        if spec.method == "DELETE":
            return answer({"succeeded": True})
        assert spec.body is not None
        body = orjson.loads(spec.body)
        size_seen.append(body["size"])
        start = state["pos"]
        hits = [
            {"_id": str(i), "sort": [i]} for i in range(start, min(start + body["size"], total))
        ]
        state["pos"] += len(hits)
        return answer({"pit_id": "p1", "_shards": {"failed": 0}, "hits": {"hits": hits}})

    return handler


def test_scan_iterates_every_hit(client: Client) -> None:
    sizes: list[int] = []
    transport = fake(client, scan_server(25, sizes))
    assert [h["_id"] for h in client.scan(index="i", size=10)] == [str(i) for i in range(25)]
    assert transport.paths()[-1] == "DELETE /_pit"


def test_scan_broken_off_releases_the_pit_at_once(client: Client) -> None:
    sizes: list[int] = []
    transport = fake(client, scan_server(1000, sizes))
    for n, _ in enumerate(client.scan(index="i", size=10), 1):
        if n == 12:
            break
    assert transport.paths()[-1] == "DELETE /_pit"
    assert len(sizes) == 2  # no page was fetched after the break


def test_scan_consumer_error_releases_the_pit(client: Client) -> None:
    transport = fake(client, scan_server(1000, []))
    with pytest.raises(RuntimeError, match="consumer"):
        for _ in client.scan(index="i", size=10):
            raise RuntimeError("consumer failed")
    assert transport.paths()[-1] == "DELETE /_pit"


def test_update_with_retry_sleeps_between_attempts(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr("sturdysearch._sync.client.time.sleep", slept.append)
    conflicts = [ConflictError(409, reason="conflict")] * 2

    def handler(spec: RequestSpec) -> Response:
        if spec.method == "GET":
            return answer({"found": True, "_seq_no": 1, "_primary_term": 1, "_source": {"n": 1}})
        if conflicts:
            raise conflicts.pop()
        return answer({"result": "updated", "_seq_no": 2, "_primary_term": 1, "_version": 2})

    fake(client, handler)
    result = client.update_with_retry("i", "1", lambda doc: {"n": doc["n"] + 1})
    assert (result.seq_no, result.version) == (2, 2)
    assert len(slept) == 2 and all(0 <= s <= 0.04 for s in slept)


def test_get_or_none(client: Client) -> None:
    def handler(spec: RequestSpec) -> Response:
        assert spec.ignore == frozenset({404})
        if spec.path.endswith("/missing"):
            return answer({"_id": "missing", "found": False}, 404)
        if spec.path.startswith("/nope/"):
            return answer({"error": {"type": "index_not_found_exception"}}, 404)
        return answer({"_id": "1", "found": True, "_source": {"a": 1}})

    fake(client, handler)
    assert client.get_or_none(index="i", id="missing") is None
    got = client.get_or_none(index="i", id="1")
    assert got is not None and got.source == {"a": 1}
    with pytest.raises(NotFoundError):
        client.get_or_none(index="nope", id="1")


def test_health_wait_uses_the_client_deadline(client: Client) -> None:
    transport = fake(client, lambda spec: answer({"status": "yellow", "timed_out": True}, 408))
    health = client.cluster.health(wait_for_status="green", raise_on_timeout=False)
    assert health.timed_out
    spec = transport.requests[0]
    assert spec.timeout == client.config.timeouts.total
    assert spec.params is not None and spec.params["timeout"] == "29000ms"


def test_cat_rows_are_typed(client: Client) -> None:
    fake(client, lambda spec: answer([{"index": "7", "docs.count": "3"}]))
    assert client.cat.indices(index="7") == [{"index": "7", "docs.count": 3}]

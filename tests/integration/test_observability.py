"""Traces, metrics and trace context against a real node, with the real OpenTelemetry SDK
(in-memory exporters), for the blocking and the async client: success, retry, failure, hedged
reads and bulk; the server sees ``traceparent`` and ``X-Opaque-Id``."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import LoopThread, MakeClient
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from sturdysearch import AsyncBulkIndexer, BulkIndexer, Client, Observability
from sturdysearch._core.request import RequestSpec
from sturdysearch.errors import NotFoundError
from sturdysearch.testing.faults import Fault
from sturdysearch.testing.proxy import FaultProxy

pytestmark = pytest.mark.sturdysearch_integration


class Otel:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def observability(self, **options: Any) -> Observability:
        return Observability(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider, **options
        )

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def calls(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.finished() if s.name == name]

    def children(self, parent: ReadableSpan) -> list[ReadableSpan]:
        assert parent.context is not None
        return [
            s
            for s in self.finished()
            if s.parent is not None and s.parent.span_id == parent.context.span_id
        ]

    def metric_points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        points: list[Any] = []
        if data is None:
            return points
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        points.extend(metric.data.data_points)
        return points


@pytest.fixture
def otel() -> Iterator[Otel]:
    o = Otel()
    yield o
    o.tracer_provider.shutdown()
    o.meter_provider.shutdown()


def _flavor(client: Any) -> str:
    return str(client.info().flavor)


def test_call_span_with_attempt_child(
    make_client: MakeClient, node_url: str, index_name: str, otel: Otel
) -> None:
    with make_client([node_url], observability=otel.observability()) as c:
        flavor = _flavor(c)
        c.index(index=index_name, id="1", document={"n": 1}, refresh=True)
        otel.spans.clear()
        c.search(index=index_name, query={"match_all": {}})
    (call,) = otel.calls(f"search {index_name}")
    assert call.kind is SpanKind.CLIENT
    attrs = dict(call.attributes or {})
    assert attrs["db.system.name"] == flavor
    assert attrs["db.operation.name"] == "search"
    assert attrs["db.collection.name"] == index_name
    assert attrs["db.operation.parameter.index"] == index_name
    assert attrs["http.request.method"] == "POST"
    assert attrs["db.response.status_code"] == "200"
    assert attrs["server.port"] == int(node_url.rsplit(":", 1)[1])
    assert str(attrs["url.full"]).startswith(f"{node_url}/{index_name}/_search")
    assert attrs["sturdysearch.attempts"] == 1
    assert attrs["sturdysearch.retries"] == 0
    assert call.status.status_code is StatusCode.UNSET
    (attempt,) = otel.children(call)
    assert attempt.kind is SpanKind.CLIENT
    assert attempt.name == "POST"
    assert attempt.context is not None and call.context is not None
    assert attempt.context.trace_id == call.context.trace_id
    assert dict(attempt.attributes or {})["http.response.status_code"] == 200
    durations = otel.metric_points("db.client.operation.duration")
    searches = [p for p in durations if p.attributes.get("db.operation.name") == "search"]
    assert sum(p.count for p in searches) == 1
    assert searches[0].attributes["db.system.name"] == flavor


def test_user_span_is_the_parent(node_url: str, index_name: str, otel: Otel) -> None:
    """The application's current span is the call span's parent (blocking client; the async
    one is ``test_async_tasks_keep_their_own_context``)."""
    tracer = otel.tracer_provider.get_tracer("app")
    with Client([node_url], observability=otel.observability()) as c:
        with tracer.start_as_current_span("handle-request") as outer:
            c.indices.exists(index=index_name)
    (call,) = otel.calls(f"indices.exists {index_name}")
    assert call.parent is not None
    assert call.parent.span_id == outer.get_span_context().span_id


def test_retry_is_two_attempt_spans(
    make_client: MakeClient, proxy: FaultProxy, index_name: str, client: Client, otel: Otel
) -> None:
    client.indices.create(index=index_name)
    proxy.set_fault(Fault.status(503).times(1).matching(path_prefix=f"/{index_name}/_search"))
    with make_client([proxy.url], observability=otel.observability()) as c:
        c.search(index=index_name)
    (call,) = otel.calls(f"search {index_name}")
    attrs = dict(call.attributes or {})
    assert (attrs["sturdysearch.attempts"], attrs["sturdysearch.retries"]) == (2, 1)
    first, second = sorted(otel.children(call), key=lambda s: s.start_time or 0)
    assert dict(first.attributes or {})["error.type"] == "503"
    assert first.status.status_code is StatusCode.ERROR
    assert dict(second.attributes or {})["http.request.resend_count"] == 1
    assert second.status.status_code is StatusCode.UNSET
    retries = otel.metric_points("sturdysearch.client.retries")
    assert sum(p.value for p in retries) == 1
    attempts = otel.metric_points("sturdysearch.client.attempts")
    by_outcome = {p.attributes["outcome"]: p.value for p in attempts}
    assert by_outcome.get("ServerError") == 1


def test_failure_marks_the_span(
    make_client: MakeClient, node_url: str, index_name: str, otel: Otel
) -> None:
    with make_client([node_url], observability=otel.observability()) as c:
        with pytest.raises(NotFoundError):
            c.search(index=index_name)
    (call,) = otel.calls(f"search {index_name}")
    attrs = dict(call.attributes or {})
    assert attrs["error.type"] == "404"
    assert attrs["db.response.status_code"] == "404"
    assert call.status.status_code is StatusCode.ERROR
    assert any(e.name == "exception" for e in call.events)
    durations = otel.metric_points("db.client.operation.duration")
    assert any(p.attributes.get("error.type") == "404" for p in durations)


def test_hedged_read_shows_both_attempts(
    make_client: MakeClient, node_url: str, index_name: str, client: Client, otel: Otel
) -> None:
    client.indices.create(index=index_name)
    with FaultProxy(node_url) as slow, FaultProxy(node_url) as fast:
        slow.set_fault(Fault.latency(1.5).matching(path_prefix=f"/{index_name}/_search"))
        options = {"hedge_after": 0.1, "observability": otel.observability()}
        with make_client([slow.url, fast.url], **options) as c:
            hedged = None
            for _ in range(4):
                otel.spans.clear()
                c.search(index=index_name)
                (call,) = otel.calls(f"search {index_name}")
                if len(otel.children(call)) == 2:
                    hedged = call
                    break
    assert hedged is not None, "no call started on the slow node in four tries"
    attempts = otel.children(hedged)
    flags = {bool(dict(a.attributes or {}).get("sturdysearch.hedge")) for a in attempts}
    assert flags == {True, False}
    outcomes = [dict(a.attributes or {}).get("sturdysearch.attempt.outcome") for a in attempts]
    assert outcomes.count("cancelled") == 1
    (winner,) = [a for a in attempts if dict(a.attributes or {}).get("sturdysearch.hedge")]
    assert dict(winner.attributes or {})["server.port"] == fast.port


def _bulk_docs(n: int) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = [{"id": str(i), "n": i} for i in range(n)]
    docs[3] = {"id": "3", "n": "not a number"}
    return docs


def _check_bulk_spans(otel: Otel, n: int, parent: Any) -> None:
    batches = otel.calls("bulk.batch")
    assert batches, "no bulk.batch span"
    totals = {"succeeded": 0, "dead_lettered": 0}
    for batch in batches:
        # The span current where the indexer was created (blocking) or started (async).
        assert batch.parent is not None and batch.parent.span_id == parent.context.span_id
        attrs: dict[str, Any] = dict(batch.attributes or {})
        totals["succeeded"] += int(attrs.get("sturdysearch.bulk.succeeded", 0))
        totals["dead_lettered"] += int(attrs.get("sturdysearch.bulk.dead_lettered", 0))
        (request,) = otel.children(batch)
        assert request.name.startswith("bulk")
        assert dict(request.attributes or {})["db.operation.name"] == "bulk"
    assert totals == {"succeeded": n - 1, "dead_lettered": 1}
    items = {
        p.attributes["outcome"]: p.value for p in otel.metric_points("sturdysearch.bulk.items")
    }
    assert items == {"succeeded": n - 1, "dead_lettered": 1}


@pytest.fixture
def typed_index(client: Client, index_name: str) -> str:
    client.indices.create(index=index_name, mappings={"properties": {"n": {"type": "long"}}})
    return index_name


def test_bulk_batch_spans_blocking(
    node_url: str, typed_index: str, otel: Otel, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tracer = otel.tracer_provider.get_tracer("load-job")
    with Client([node_url], observability=otel.observability()) as c:
        with caplog.at_level(logging.WARNING, logger="sturdysearch"):
            with tracer.start_as_current_span("load") as load:
                with BulkIndexer(c, index=typed_index, dead_letter=tmp_path / "dl.ndjson") as bulk:
                    bulk.add_many(_bulk_docs(50), id_field="id")
    _check_bulk_spans(otel, 50, load)
    summaries = [r for r in caplog.records if r.name == "sturdysearch.bulk"]
    assert summaries, "a load that dead-letters must say so"
    closing = [r for r in summaries if r.sturdysearch_event.fields["closing"]]  # type: ignore[attr-defined]
    assert len(closing) == 1 and closing[0].levelno == logging.WARNING
    message = closing[0].getMessage()
    assert "1 document(s) dead-lettered" in message and str(tmp_path / "dl.ndjson") in message
    assert "not a number" in message  # the server's reason, quoting the bad value


def test_bulk_batch_spans_async(
    node_url: str, typed_index: str, otel: Otel, tmp_path: Path, loop_thread: LoopThread
) -> None:
    from sturdysearch import AsyncClient

    tracer = otel.tracer_provider.get_tracer("load-job")

    async def run() -> Any:
        async with AsyncClient([node_url], observability=otel.observability()) as c:
            with tracer.start_as_current_span("load") as load:
                async with AsyncBulkIndexer(
                    c, index=typed_index, dead_letter=tmp_path / "dl.ndjson"
                ) as bulk:
                    await bulk.add_many(_bulk_docs(50), id_field="id")
        return load

    load = loop_thread.run(run())
    _check_bulk_spans(otel, 50, load)


def test_no_provider_builds_nothing(node_url: str) -> None:
    """With OpenTelemetry installed but no provider configured, no call gets a scope."""
    assert not getattr(trace, "_TRACER_PROVIDER", None), "a test set a global provider"
    with Client([node_url]) as c:
        (otel_instrument,) = [
            i for i in c.tracer.instruments if type(i).__name__ == "OpenTelemetryInstrument"
        ]
        assert otel_instrument.enabled() is False
        assert c.tracer.call_scope(RequestSpec("GET", "/"), 0.0) is None
        assert c.ping() is True


# -- trace context at the server ----------------------------------------------------------


def test_opaque_id_in_tasks(make_client: MakeClient, node_url: str, otel: Otel) -> None:
    """The trace id travels as X-Opaque-Id: ``_tasks`` shows it on the running task (the
    listing itself), on Elasticsearch and OpenSearch alike."""
    with make_client([node_url], observability=otel.observability()) as c:
        answer = c.tasks.list(detailed=True)
    (call,) = otel.calls("tasks.list")
    assert call.context is not None
    trace_id = format(call.context.trace_id, "032x")
    headers = [
        task.get("headers", {})
        for node in answer.body["nodes"].values()
        for task in node["tasks"].values()
    ]
    assert {"X-Opaque-Id": trace_id} in [
        {k: v for k, v in h.items() if k == "X-Opaque-Id"} for h in headers
    ]


def test_fixed_opaque_id_and_per_call_override(make_client: MakeClient, node_url: str) -> None:
    with make_client([node_url], observability=Observability(opaque_id="checkout-svc")) as c:
        answer = c.tasks.list(detailed=True)
        mine = c.tasks.list(detailed=True, headers={"X-Opaque-Id": "call-42"})

    def ids(body: Any) -> set[str]:
        return {
            task.get("headers", {}).get("X-Opaque-Id", "")
            for node in body["nodes"].values()
            for task in node["tasks"].values()
        }

    assert "checkout-svc" in ids(answer.body)
    assert "call-42" in ids(mine.body) and "checkout-svc" not in ids(mine.body)


def _slowlog_lines(search_cluster: Any, deadline: float, want: str) -> list[str]:
    """The search slow log lines mentioning ``want``, waiting (bounded) for the server to
    flush them."""
    while True:
        found = []
        for node in search_cluster.nodes:
            for path in Path(node.logs_dir).glob("*search_slowlog*"):
                found += [
                    line for line in path.read_text(errors="replace").splitlines() if want in line
                ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_slow_log_carries_trace_and_opaque_id(
    search_cluster: Any, node_url: str, index_name: str, client: Client, otel: Otel
) -> None:
    """The server's own search slow log (threshold 0) names the caller: Elasticsearch 8+ logs
    the ``trace.id`` taken from ``traceparent``; both flavors log the ``X-Opaque-Id``."""
    client.indices.create(
        index=index_name,
        settings={
            "index.search.slowlog.threshold.query.trace": "0ms",
            "index.search.slowlog.threshold.fetch.trace": "0ms",
            "index.search.slowlog.level": "trace",
        }
        if search_cluster.flavor.value == "opensearch"
        else {
            "index.search.slowlog.threshold.query.trace": "0ms",
            "index.search.slowlog.threshold.fetch.trace": "0ms",
        },
    )
    client.index(index=index_name, id="1", document={"n": 1}, refresh=True)
    with Client([node_url], observability=otel.observability()) as c:
        c.search(index=index_name, query={"match_all": {}})
    (call,) = otel.calls(f"search {index_name}")
    assert call.context is not None
    trace_id = format(call.context.trace_id, "032x")
    lines = _slowlog_lines(search_cluster, time.monotonic() + 15, trace_id)
    assert lines, f"no slow log line mentions trace {trace_id}"
    major = int(search_cluster.version.split(".")[0])
    if search_cluster.flavor.value == "elasticsearch" and major >= 8:
        records = [json.loads(line) for line in lines if line.startswith("{")]
        assert any(r.get("trace.id") == trace_id for r in records), lines[:2]
        assert any(r.get("elasticsearch.slowlog.id") == trace_id for r in records), lines[:2]
    else:
        assert any(f"id[{trace_id}]" in line for line in lines), lines[:2]


def test_traceparent_reaches_the_server_per_attempt(
    proxy: FaultProxy, index_name: str, client: Client, otel: Otel
) -> None:
    """Each attempt carries its own span's context: a retried call's second attempt is the
    one the server records, and its ``traceparent`` names the second attempt span."""
    client.indices.create(index=index_name)
    proxy.set_fault(Fault.status(503).times(1).matching(path_prefix=f"/{index_name}/_search"))
    seen: list[dict[str, str]] = []
    with Client([proxy.url], observability=otel.observability()) as c:
        original = c._transport.encode_for

        def spy(call: Any, node: Any) -> Any:
            head, body = original(call, node)
            request_line, *lines = head.decode("latin-1").split("\r\n")
            if "_search" in request_line:  # not the health probe after the 503
                seen.append({k.lower(): v for k, _, v in (x.partition(": ") for x in lines if x)})
            return head, body

        c._transport.encode_for = spy  # type: ignore[method-assign]
        c.search(index=index_name)
    (call,) = otel.calls(f"search {index_name}")
    attempts = sorted(otel.children(call), key=lambda s: s.start_time or 0)
    assert len(seen) == 2 == len(attempts)
    for headers, span in zip(seen, attempts, strict=True):
        assert span.context is not None
        ids = span.context
        want = f"00-{ids.trace_id:032x}-{ids.span_id:016x}-{int(ids.trace_flags):02x}"
        assert headers["traceparent"] == want
        assert headers["x-opaque-id"] == f"{span.context.trace_id:032x}"


def test_async_tasks_keep_their_own_context(
    node_url: str, otel: Otel, loop_thread: LoopThread
) -> None:
    """Concurrent calls of one AsyncClient from tasks with their own spans: each call span's
    parent is its task's span."""
    from sturdysearch import AsyncClient

    tracer = otel.tracer_provider.get_tracer("app")
    parents: dict[int, int] = {}

    async def one(c: AsyncClient, i: int) -> None:
        with tracer.start_as_current_span(f"task-{i}") as span:
            parents[i] = span.get_span_context().span_id
            await c.ping()

    async def run() -> None:
        async with AsyncClient([node_url], observability=otel.observability()) as c:
            await asyncio.gather(*(one(c, i) for i in range(20)))

    loop_thread.run(run())
    pings = otel.calls("ping")
    assert len(pings) == 20
    assert {p.parent.span_id for p in pings if p.parent is not None} == set(parents.values())


PASSWORD = "hunter2-Obs-Pa55"
API_KEY = "T2JzZXJ2YWJpbGl0eTpub3QtYS1yZWFsLWtleS0xMjM0NQ=="


@pytest.mark.parametrize(
    "credentials", [{"basic_auth": ("elastic", PASSWORD)}, {"api_key": API_KEY}]
)
def test_no_credential_in_any_record_span_or_error(
    proxy: FaultProxy,
    typed_index: str,
    otel: Otel,
    tmp_path: Path,
    credentials: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every log record (as text and as ECS JSON), exception text and exported span of a run
    with credentials configured, at DEBUG and with every call logged as slow: no credential,
    and no Authorization scheme, anywhere."""
    from sturdysearch.logging import JsonFormatter

    secrets = [PASSWORD, API_KEY, "Basic ", "ApiKey "]
    texts: list[str] = []
    observability = otel.observability(slow_call=1e-6)
    with caplog.at_level(logging.DEBUG, logger="sturdysearch"):
        with Client([proxy.url], observability=observability, **credentials) as c:
            c.info()
            c.search(index=typed_index)
            proxy.set_fault(Fault.status(503).times(1))
            c.search(index=typed_index)
            for fault in (Fault.status(401, body=b'{"error":"nope"}'), Fault.blackhole()):
                proxy.set_fault(fault)
                try:
                    c.search(index=typed_index, timeout=0.5)
                except Exception as exc:
                    texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
            proxy.set_fault(None)
            with BulkIndexer(c, index=typed_index, dead_letter=tmp_path / "dl.ndjson") as bulk:
                bulk.add_many(_bulk_docs(20), id_field="id")
            texts.append(repr(c.stats()))
    formatter = JsonFormatter()
    for record in caplog.records:
        texts += [record.getMessage(), repr(record.__dict__), formatter.format(record)]
    for span in otel.finished():
        texts.append(span.to_json())
    joined = "\n".join(texts)
    names = {r.name for r in caplog.records}
    assert {"sturdysearch.transport", "sturdysearch.nodes", "sturdysearch.bulk"} <= names
    assert "slow call" in joined and "retrying in" in joined
    assert otel.finished(), "spans were exported"
    for secret in secrets:
        assert secret not in joined


def test_healthy_steady_state_logs_nothing_above_debug(
    make_client: MakeClient,
    node_url: str,
    typed_index: str,
    client: Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Builds without the root endpoint (Elasticsearch's integration builds answer GET / with
    # 405) cost detection one refused call before it asks GET /_nodes/_local.
    root = client.request("GET", "/", ignore=range(400, 600)).meta.status
    refused = 0 if root == 200 else 1
    with caplog.at_level(logging.INFO, logger="sturdysearch"):
        with make_client([node_url]) as c:
            c.info()
            for i in range(20):
                c.index(index=typed_index, id=str(i), document={"n": i})
            c.indices.refresh(index=typed_index)
            assert c.count(index=typed_index).body["count"] == 20
            c.search(index=typed_index, query={"match_all": {}})
            stats = c.stats()
    assert [r.getMessage() for r in caplog.records if r.name.startswith("sturdysearch")] == []
    assert stats["calls"] == 24 + refused and stats["calls_failed"] == refused
    assert stats["attempts"] == stats["calls"] and stats["retries"] == 0


def test_stats_count_retries_and_failures(
    make_client: MakeClient, proxy: FaultProxy, index_name: str, client: Client
) -> None:
    client.indices.create(index=index_name)
    with make_client([proxy.url]) as c:
        c.search(index=index_name)
        proxy.set_fault(Fault.status(503).times(1).matching(path_prefix=f"/{index_name}/_search"))
        c.search(index=index_name)
        with pytest.raises(NotFoundError):
            c.search(index=index_name + "-missing")
        stats = c.stats()
        pools = c.pool_stats()
    assert (stats["calls"], stats["calls_failed"]) == (3, 1)
    assert (stats["attempts"], stats["attempts_failed"], stats["retries"]) == (4, 2, 1)
    assert stats["ejections"] == 1  # the 503 ejected the only node; a probe re-admitted it
    assert stats["readmissions"] == 1
    assert pools[proxy.url]["opened"] >= 1 and pools[proxy.url]["waits"] == 0


def test_namespace_and_pool_metrics(node_url: str, otel: Otel) -> None:
    with Client([node_url], observability=otel.observability()) as c:
        server = c.info()
        otel.spans.clear()
        c.cluster.health()
        (call,) = otel.calls("cluster.health")
        assert dict(call.attributes or {})["db.namespace"] == server.cluster_name
        connections = otel.metric_points("db.client.connection.count")
        opened = otel.metric_points("sturdysearch.client.connections.opened")
    states = {p.attributes["state"]: p.value for p in connections}
    assert states == {"idle": 1, "used": 0}
    assert [p.value for p in opened] == [1]
    assert opened[0].attributes["db.client.connection.pool.name"] == node_url


def test_event_records_carry_the_current_trace(
    proxy: FaultProxy, index_name: str, client: Client, otel: Otel, caplog: pytest.LogCaptureFixture
) -> None:
    """A retry's INFO record names the trace of the application's span it happened in."""
    client.indices.create(index=index_name)
    proxy.set_fault(Fault.status(503).times(1).matching(path_prefix=f"/{index_name}/_search"))
    tracer = otel.tracer_provider.get_tracer("app")
    with caplog.at_level(logging.INFO, logger="sturdysearch"):
        with Client([proxy.url], observability=otel.observability()) as c:
            with tracer.start_as_current_span("job") as job:
                c.search(index=index_name)
    (retry,) = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert retry.levelno == logging.INFO and retry.name == "sturdysearch.transport"
    assert retry.trace_id == format(job.get_span_context().trace_id, "032x")  # type: ignore[attr-defined]

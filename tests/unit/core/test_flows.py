"""The multi-step flows (``sturdysearch._core.flows``), driven with fake answers: no server, no
clock, no sleeping."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from sturdysearch._core import flows
from sturdysearch._core.dialect import dialect_for, parse_server_info
from sturdysearch._core.request import RequestSpec
from sturdysearch._core.responses import Response, ResponseMeta
from sturdysearch._core.results import ByQueryResult, WriteResult
from sturdysearch._core.timeouts import Deadline
from sturdysearch.errors import (
    BadRequestError,
    ConflictError,
    ConnectionError,
    DeadlineExceeded,
    IncompleteResultsError,
    NotFoundError,
    ReadTimeout,
    ServerError,
    SturdySearchError,
    TransportError,
)

NODE = "http://127.0.0.1:9200"


def answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body, ResponseMeta(status, headers or {}, NODE, 0.001))


def body_of(spec: RequestSpec) -> Any:
    assert spec.body is not None
    return orjson.loads(spec.body)


Handler = Callable[[RequestSpec], Response]


class Driver:
    """A fake driver: answers requests with ``handler``, advances a fake clock on sleeps, and
    records every step."""

    def __init__(self, handler: Handler, *, budget: float | None = None) -> None:
        self.handler = handler
        self.now = 0.0
        self.budget = budget
        self.steps: list[flows.Step] = []
        self.requests: list[RequestSpec] = []
        self.sleeps: list[float] = []
        self.pages: list[list[dict[str, Any]]] = []

    def run(self, flow: flows.Flow[Any], *, stop_after_pages: int | None = None) -> Any:
        deadline = Deadline(self.now, self.budget) if self.budget is not None else None
        run = flows.FlowRun(flow, deadline, per_request=30.0)
        step = run.start(self.now)
        while not isinstance(step, flows.Done):
            if isinstance(step, flows.Page) and stop_after_pages == len(self.pages) + 1:
                self.pages.append(list(step.hits))
                step = run.abandon(self.now)
                continue
            step = self.step(run, step)
        return step.value

    def step(self, run: flows.FlowRun[Any], step: flows.Step) -> Any:
        self.steps.append(step)
        if isinstance(step, flows.Sleep):
            self.sleeps.append(step.seconds)
            self.now += step.seconds
            return run.send(None, self.now)
        if isinstance(step, flows.Page):
            self.pages.append(list(step.hits))
            return run.send(None, self.now)
        self.requests.append(step)
        try:
            response = self.handler(step)
        except SturdySearchError as exc:
            return run.throw(exc, self.now)
        return run.send(response, self.now)


def conflict() -> ConflictError:
    return ConflictError(409, error_type="version_conflict_engine_exception", reason="conflict")


# -- FlowRun -----------------------------------------------------------------------------------


def test_request_timeouts_are_clamped_to_the_time_left() -> None:
    def flow() -> flows.Flow[None]:
        yield RequestSpec("GET", "/a")
        yield flows.Sleep(4.0)
        yield RequestSpec("GET", "/b", timeout=2.0)
        yield RequestSpec("GET", "/c")

    driver = Driver(lambda spec: answer({}), budget=10.0)
    driver.run(flow())
    assert [r.timeout for r in driver.requests] == [10.0, 2.0, 6.0]


def test_without_a_deadline_requests_get_the_per_request_default() -> None:
    def flow() -> flows.Flow[None]:
        yield RequestSpec("GET", "/a")
        yield RequestSpec("GET", "/b", timeout=3.0)

    driver = Driver(lambda spec: answer({}))
    driver.run(flow())
    assert [r.timeout for r in driver.requests] == [30.0, 3.0]


def test_a_sleep_past_the_deadline_is_thrown_into_the_flow() -> None:
    seen: list[BaseException] = []

    def flow() -> flows.Flow[str]:
        try:
            yield flows.Sleep(5.0)
        except DeadlineExceeded as exc:
            seen.append(exc)
            return "gave up"
        return "slept"

    assert Driver(lambda spec: answer({}), budget=1.0).run(flow()) == "gave up"
    assert "deadline of 1 s" in str(seen[0])
    assert seen[0].request_sent is False


def test_an_uncaught_deadline_propagates() -> None:
    def flow() -> flows.Flow[None]:
        yield flows.Sleep(0.5)
        yield RequestSpec("GET", "/never")

    driver = Driver(lambda spec: answer({}), budget=0.5)
    with pytest.raises(DeadlineExceeded):
        driver.run(flow())
    assert driver.requests == []


# -- detection ---------------------------------------------------------------------------------


def test_detect_from_the_root_document() -> None:
    root = {"version": {"number": "2.19.6", "distribution": "opensearch"}, "cluster_name": "c"}
    info = Driver(lambda spec: answer(root)).run(flows.detect())
    assert (info.flavor, info.version) == ("opensearch", "2.19.6")


@pytest.mark.parametrize("status", [400, 404, 405])
def test_detect_falls_back_to_nodes_info(status: int) -> None:
    def handler(spec: RequestSpec) -> Response:
        if spec.path == "/":
            raise BadRequestError(status, reason="Incorrect HTTP method for uri [/]")
        assert spec.path == "/_nodes/_local"
        assert "filter_path" in (spec.params or {})
        return answer(
            {
                "cluster_name": "c",
                "nodes": {"x": {"name": "n0", "version": "9.5.4", "build_flavor": "default"}},
            },
            headers={"x-elastic-product": "Elasticsearch"},
        )

    info = Driver(handler).run(flows.detect())
    assert (info.flavor, info.version, info.build_flavor) == ("elasticsearch", "9.5.4", "default")
    assert (info.cluster_name, info.node_name) == ("c", "n0")


def test_detect_raises_what_the_server_said_otherwise() -> None:
    def handler(spec: RequestSpec) -> Response:
        raise ServerError(403, reason="no monitor privilege")

    with pytest.raises(ServerError):
        Driver(handler).run(flows.detect())


def test_ping() -> None:
    assert Driver(lambda spec: answer(True)).run(flows.ping()) is True
    assert Driver(lambda spec: answer(False, 404)).run(flows.ping()) is False


def test_ping_without_a_root_endpoint_asks_the_node() -> None:
    def handler(spec: RequestSpec) -> Response:
        if spec.path == "/":
            raise BadRequestError(405, reason="Incorrect HTTP method")
        return answer({"nodes": {}})

    driver = Driver(handler)
    assert driver.run(flows.ping()) is True
    assert [r.path for r in driver.requests] == ["/", "/_nodes/_local"]


def test_ping_passes_other_refusals_on() -> None:
    def handler(spec: RequestSpec) -> Response:
        raise ServerError(503, reason="unavailable")

    with pytest.raises(ServerError):
        Driver(handler).run(flows.ping())


# -- update_with_retry -------------------------------------------------------------------------


class Store:
    """One document with optimistic concurrency, as the server keeps it."""

    def __init__(self, source: Any = None, *, index_exists: bool = True) -> None:
        self.source = source
        self.seq_no = 0
        self.term = 1
        self.index_exists = index_exists
        self.interfere: list[Any] = []  # sources written by "someone else" before our writes
        self.writes = 0

    def handle(self, spec: RequestSpec) -> Response:
        if spec.method == "GET":
            if not self.index_exists:
                return answer(
                    {"error": {"type": "index_not_found_exception", "reason": "no such index"}},
                    404,
                )
            if self.source is None:
                return answer({"_id": "1", "found": False}, 404)
            return answer(
                {
                    "_id": "1",
                    "found": True,
                    "_seq_no": self.seq_no,
                    "_primary_term": self.term,
                    "_source": self.source,
                }
            )
        if self.interfere:
            self.source = self.interfere.pop(0)
            self.seq_no += 1
        params = spec.params or {}
        if "/_create/" in spec.path:
            if self.source is not None:
                raise conflict()
        elif params.get("if_seq_no") != self.seq_no:
            raise conflict()
        self.source = body_of(spec)
        self.seq_no += 1
        self.writes += 1
        return answer({"_id": "1", "result": "updated", "_seq_no": self.seq_no, "_primary_term": 1})


def increment(doc: Any) -> Any:
    return {"n": (doc or {"n": 0})["n"] + 1}


def test_update_with_retry_reads_applies_and_writes_conditionally() -> None:
    store = Store({"n": 1})
    driver = Driver(store.handle)
    result = driver.run(flows.update_with_retry(index="i", id="1", fn=increment, rand=lambda: 0.5))
    assert isinstance(result, WriteResult)
    assert (result.seq_no, result.primary_term) == (1, 1)
    assert store.source == {"n": 2}
    write = driver.requests[1]
    assert (write.method, write.path) == ("PUT", "/i/_doc/1")
    assert write.params == {"if_seq_no": 0, "if_primary_term": 1}
    assert write.idempotent is False  # a transport resend could turn our success into a 409


def test_update_with_retry_backs_off_with_jitter_on_conflicts() -> None:
    store = Store({"n": 1})
    store.interfere = [{"n": 10}, {"n": 20}]
    driver = Driver(store.handle)
    driver.run(flows.update_with_retry(index="i", id="1", fn=increment, rand=lambda: 0.5))
    assert store.source == {"n": 21}
    assert driver.sleeps == pytest.approx([0.5 * 0.02, 0.5 * 0.04])


def test_update_with_retry_gives_up_after_max_attempts() -> None:
    store = Store({"n": 1})
    store.interfere = [{"n": k} for k in range(10)]
    driver = Driver(store.handle)
    with pytest.raises(ConflictError, match="gave up after 3 attempts") as caught:
        driver.run(
            flows.update_with_retry(
                index="i", id="1", fn=increment, rand=lambda: 0.0, max_attempts=3
            )
        )
    assert caught.value.status == 409
    assert len(driver.sleeps) == 2


def test_update_with_retry_stops_at_the_deadline() -> None:
    store = Store({"n": 1})
    store.interfere = [{"n": k} for k in range(50)]
    driver = Driver(store.handle, budget=0.1)
    with pytest.raises(DeadlineExceeded) as caught:
        driver.run(
            flows.update_with_retry(
                index="i", id="1", fn=increment, rand=lambda: 1.0, max_attempts=50
            )
        )
    assert isinstance(caught.value.__context__, ConflictError)


def test_update_with_retry_missing_document() -> None:
    with pytest.raises(NotFoundError, match="create_if_missing") as caught:
        Driver(Store(None).handle).run(
            flows.update_with_retry(index="i", id="1", fn=increment, rand=lambda: 0.0)
        )
    assert caught.value.error_type == "document_missing"


def test_update_with_retry_missing_index_is_not_created() -> None:
    store = Store(None, index_exists=False)
    with pytest.raises(NotFoundError) as caught:
        Driver(store.handle).run(
            flows.update_with_retry(
                index="i", id="1", fn=increment, rand=lambda: 0.0, create_if_missing=True
            )
        )
    assert caught.value.error_type == "index_not_found_exception"


def test_update_with_retry_creates_when_asked() -> None:
    store = Store(None)
    seen: list[Any] = []

    def fn(doc: Any) -> Any:
        seen.append(doc)
        return increment(doc)

    driver = Driver(store.handle)
    driver.run(
        flows.update_with_retry(index="i", id="1", fn=fn, rand=lambda: 0.0, create_if_missing=True)
    )
    assert seen == [None]
    assert driver.requests[1].path == "/i/_create/1"
    assert store.source == {"n": 1}


def test_update_with_retry_create_race_reads_again() -> None:
    store = Store(None)
    store.interfere = [{"n": 5}]
    driver = Driver(store.handle)
    driver.run(
        flows.update_with_retry(
            index="i", id="1", fn=increment, rand=lambda: 0.0, create_if_missing=True
        )
    )
    assert store.source == {"n": 6}


def test_update_with_retry_refuses_a_none_from_fn() -> None:
    with pytest.raises(TypeError, match="returned None"):
        Driver(Store({"n": 1}).handle).run(
            flows.update_with_retry(index="i", id="1", fn=lambda d: None, rand=lambda: 0.0)
        )


def test_update_with_retry_lost_answer_without_effect_is_retried() -> None:
    store = Store({"n": 1})
    failures = [ReadTimeout("no answer", node=NODE)]

    def handler(spec: RequestSpec) -> Response:
        if spec.method == "PUT" and failures:
            raise failures.pop()  # lost before the server applied it
        return store.handle(spec)

    driver = Driver(handler)
    driver.run(flows.update_with_retry(index="i", id="1", fn=increment, rand=lambda: 0.0))
    assert store.source == {"n": 2}
    assert store.writes == 1


def test_update_with_retry_lost_answer_after_effect_is_not_applied_twice() -> None:
    store = Store({"n": 1})
    lose = [True]

    def handler(spec: RequestSpec) -> Response:
        if spec.method == "PUT" and lose:
            lose.pop()
            store.handle(spec)  # applied, but the answer never arrives
            raise ConnectionError("reset", node=NODE, request_sent=True)
        return store.handle(spec)

    with pytest.raises(TransportError, match="may have been applied") as caught:
        Driver(handler).run(
            flows.update_with_retry(index="i", id="1", fn=increment, rand=lambda: 0.0)
        )
    assert isinstance(caught.value.__cause__, ConnectionError)
    assert store.source == {"n": 2}


def test_update_with_retry_not_sent_failures_propagate() -> None:
    def handler(spec: RequestSpec) -> Response:
        if spec.method == "PUT":
            raise ConnectionError("refused", node=NODE, request_sent=False)
        return Store({"n": 1}).handle(spec)

    with pytest.raises(ConnectionError, match="refused"):
        Driver(handler).run(
            flows.update_with_retry(index="i", id="1", fn=increment, rand=lambda: 0.0)
        )


def test_update_with_retry_validates_max_attempts() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        next(
            flows.update_with_retry(
                index="i", id="1", fn=increment, rand=lambda: 0.0, max_attempts=0
            )
        )


# -- by query ----------------------------------------------------------------------------------


def start_spec() -> RequestSpec:
    return RequestSpec(
        "POST", "/i/_delete_by_query", params={"wait_for_completion": False}, idempotent=False
    )


def test_by_query_polls_the_task_until_done() -> None:
    polls = [
        {"completed": False, "task": {}},
        {"completed": False, "task": {}},
        {"completed": True, "response": {"total": 3, "deleted": 3, "failures": []}},
    ]

    def handler(spec: RequestSpec) -> Response:
        if spec.path == "/i/_delete_by_query":
            return answer({"task": "n1:42"})
        assert (spec.method, spec.path) == ("GET", "/_tasks/n1%3A42")
        return answer(polls.pop(0))

    driver = Driver(handler, budget=30.0)
    result = driver.run(flows.by_query(start_spec()))
    assert isinstance(result, ByQueryResult)
    assert (result.total, result.deleted, result.task, result.failures) == (3, 3, "n1:42", [])
    assert driver.sleeps == [flows.POLL_FIRST, flows.POLL_FIRST * 2]


def test_by_query_poll_interval_is_capped() -> None:
    remaining = [{"completed": False}] * 8 + [{"completed": True, "response": {"deleted": 0}}]

    def handler(spec: RequestSpec) -> Response:
        if spec.method == "POST":
            return answer({"task": "n:1"})
        return answer(remaining.pop(0))

    driver = Driver(handler, budget=60.0)
    driver.run(flows.by_query(start_spec()))
    assert max(driver.sleeps) == flows.POLL_MAX


def test_by_query_without_waiting_returns_the_task() -> None:
    driver = Driver(lambda spec: answer({"task": "n:7"}))
    result = driver.run(flows.by_query(start_spec(), wait_for_completion=False))
    assert result.task == "n:7"
    assert len(driver.requests) == 1


def test_by_query_deadline_names_the_running_task() -> None:
    def handler(spec: RequestSpec) -> Response:
        return answer({"task": "n:9"} if spec.method == "POST" else {"completed": False})

    with pytest.raises(DeadlineExceeded, match=r"task n:9 .* keeps running") as caught:
        Driver(handler, budget=1.0).run(flows.by_query(start_spec()))
    assert "client.tasks.cancel(task_id='n:9')" in str(caught.value)


def test_by_query_failed_task_raises() -> None:
    def handler(spec: RequestSpec) -> Response:
        if spec.method == "POST":
            return answer({"task": "n:1"})
        return answer(
            {
                "completed": True,
                "error": {"type": "search_phase_execution_exception", "reason": "x"},
            }
        )

    with pytest.raises(ServerError, match="task n:1 failed") as caught:
        Driver(handler, budget=5.0).run(flows.by_query(start_spec()))
    assert caught.value.error_type == "search_phase_execution_exception"


def test_by_query_synchronous_answer_is_the_result() -> None:
    result = Driver(lambda spec: answer({"deleted": 2})).run(flows.by_query(start_spec()))
    assert result.deleted == 2


def test_by_query_names_the_missing_module() -> None:
    def handler(spec: RequestSpec) -> Response:
        raise BadRequestError(
            400,
            reason=None,
            body={"error": "no handler found for uri [/i/_delete_by_query] and method [POST]"},
        )

    with pytest.raises(BadRequestError, match="lacks the reindex module"):
        Driver(handler).run(flows.by_query(start_spec()))


# -- scan --------------------------------------------------------------------------------------


def dialect(flavor: str, version: str) -> Any:
    body: dict[str, Any] = {"version": {"number": version}, "name": "n"}
    if flavor == "opensearch":
        body["version"]["distribution"] = "opensearch"
    else:
        body["tagline"] = "You Know, for Search"
    return dialect_for(parse_server_info(body, NODE))


class PitServer:
    """A PIT-capable server holding ``total`` documents, ``size`` per page."""

    def __init__(self, total: int, *, style: str) -> None:
        self.docs = [{"_id": str(i), "_source": {"n": i}, "sort": [i]} for i in range(total)]
        self.style = style
        self.open: set[str] = set()
        self.generation = 0
        self.fail_on_page: int | None = None
        self.pages = 0

    def handle(self, spec: RequestSpec) -> Response:
        if spec.method == "POST" and spec.path.endswith(("/_pit", "/_search/point_in_time")):
            self.generation += 1
            pit = f"pit{self.generation}"
            self.open.add(pit)
            return answer({"id": pit} if self.style == "elasticsearch" else {"pit_id": pit})
        if spec.method == "DELETE":
            body = body_of(spec)
            ids = [body["id"]] if self.style == "elasticsearch" else body["pit_id"]
            for pit in ids:
                self.open.discard(pit)
            return answer({"succeeded": True})
        assert (spec.method, spec.path) == ("POST", "/_search")
        body = body_of(spec)
        assert body["pit"]["id"] in self.open
        self.pages += 1
        if self.pages == self.fail_on_page:
            raise ServerError(503, reason="unavailable")
        after = body.get("search_after", [-1])[0]
        hits = [d for d in self.docs if d["sort"][0] > after][: body["size"]]
        # Elasticsearch may hand out a new PIT id with any answer: the flow must follow it.
        old = body["pit"]["id"]
        self.open.discard(old)
        self.generation += 1
        new = f"pit{self.generation}"
        self.open.add(new)
        return answer({"pit_id": new, "_shards": {"total": 1, "failed": 0}, "hits": {"hits": hits}})


@pytest.mark.parametrize(
    ("flavor", "version", "open_path"),
    [
        ("elasticsearch", "9.5.4", "/logs/_pit"),
        ("elasticsearch", "7.17.29", "/logs/_pit"),
        ("opensearch", "3.8.0", "/logs/_search/point_in_time"),
    ],
)
def test_scan_with_point_in_time(flavor: str, version: str, open_path: str) -> None:
    server = PitServer(25, style=flavor)
    driver = Driver(server.handle)
    driver.run(flows.scan(dialect(flavor, version), index="logs", query={"match_all": {}}, size=10))
    ids = [h["_id"] for page in driver.pages for h in page]
    assert ids == [str(i) for i in range(25)]
    assert [len(p) for p in driver.pages] == [10, 10, 5]
    first = driver.requests[0]
    assert (first.method, first.path, first.params) == ("POST", open_path, {"keep_alive": "5m"})
    search = body_of(driver.requests[2])
    assert search["sort"] == [{"_shard_doc": "asc"}]
    assert search["search_after"] == [9]
    assert search["query"] == {"match_all": {}}
    assert search["track_total_hits"] is False
    assert all(r.idempotent for r in driver.requests)
    assert server.open == set()  # the latest PIT id was closed
    assert driver.requests[-1].method == "DELETE"
    assert driver.requests[-1].ignore == frozenset({404})


def test_scan_keeps_a_user_sort_and_adds_the_tiebreaker_once() -> None:
    server = PitServer(3, style="elasticsearch")
    driver = Driver(server.handle)
    driver.run(
        flows.scan(dialect("elasticsearch", "9.5.4"), index="i", sort=[{"ts": "desc"}], size=5)
    )
    assert body_of(driver.requests[1])["sort"] == [{"ts": "desc"}, {"_shard_doc": "asc"}]
    driver = Driver(PitServer(3, style="elasticsearch").handle)
    driver.run(
        flows.scan(dialect("elasticsearch", "9.5.4"), index="i", sort=["_shard_doc"], size=5)
    )
    assert body_of(driver.requests[1])["sort"] == ["_shard_doc"]


def test_scan_abandoned_by_its_consumer_releases_the_pit() -> None:
    server = PitServer(100, style="elasticsearch")
    driver = Driver(server.handle)
    assert (
        driver.run(
            flows.scan(dialect("elasticsearch", "9.5.4"), index="i", size=10), stop_after_pages=1
        )
        is None
    )
    assert server.open == set()
    assert driver.requests[-1].method == "DELETE"


def test_scan_failure_releases_the_pit_and_raises() -> None:
    server = PitServer(100, style="opensearch")
    server.fail_on_page = 3
    driver = Driver(server.handle)
    with pytest.raises(ServerError):
        driver.run(flows.scan(dialect("opensearch", "3.8.0"), index="i", size=10))
    assert server.open == set()
    assert len(driver.pages) == 2


def test_scan_release_failure_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    server = PitServer(3, style="elasticsearch")

    def handler(spec: RequestSpec) -> Response:
        if spec.method == "DELETE":
            raise ConnectionError("reset", node=NODE)
        return server.handle(spec)

    Driver(handler).run(flows.scan(dialect("elasticsearch", "9.5.4"), index="i"))
    assert "could not release a search context" in caplog.text


class ScrollServer:
    def __init__(self, total: int) -> None:
        self.total = total
        self.position = 0
        self.open: set[str] = set()
        self.size = 0

    def page(self) -> Response:
        hits = [
            {"_id": str(i)}
            for i in range(self.position, min(self.position + self.size, self.total))
        ]
        self.position += len(hits)
        sid = f"s{self.position}"
        self.open = {sid}
        return answer(
            {"_scroll_id": sid, "_shards": {"total": 2, "failed": 0}, "hits": {"hits": hits}}
        )

    def handle(self, spec: RequestSpec) -> Response:
        if spec.path == "/i/_search":
            assert spec.params == {"scroll": "5m"}
            self.size = body_of(spec)["size"]
            assert body_of(spec)["sort"] == ["_doc"]
            return self.page()
        if spec.method == "DELETE":
            assert spec.path == "/_search/scroll"
            for sid in body_of(spec)["scroll_id"]:
                self.open.discard(sid)
            return answer({"succeeded": True})
        assert (spec.method, spec.path) == ("POST", "/_search/scroll")
        assert body_of(spec)["scroll_id"] in self.open
        assert spec.idempotent is False  # each call moves the cursor
        return self.page()


@pytest.mark.parametrize(
    ("flavor", "version"),
    [("opensearch", "1.3.20"), ("opensearch", "2.19.6"), ("elasticsearch", "7.9.3")],
)
def test_scan_with_scroll_where_no_unique_tiebreaker(flavor: str, version: str) -> None:
    server = ScrollServer(23)
    driver = Driver(server.handle)
    driver.run(flows.scan(dialect(flavor, version), index="i", size=10))
    assert [len(p) for p in driver.pages] == [10, 10, 3]
    assert server.open == set()


def test_scan_scroll_forced_and_abandoned() -> None:
    server = ScrollServer(50)
    driver = Driver(server.handle)
    driver.run(
        flows.scan(dialect("elasticsearch", "9.5.4"), index="i", size=10, pagination="scroll"),
        stop_after_pages=2,
    )
    assert server.open == set()


def test_scan_shard_failure_is_loud_and_releases() -> None:
    server = ScrollServer(50)

    def handler(spec: RequestSpec) -> Response:
        response = server.handle(spec)
        if spec.path == "/_search/scroll":
            response.body["_shards"] = {
                "total": 2,
                "failed": 1,
                "failures": [{"reason": {"type": "node_disconnected", "reason": "gone"}}],
            }
        return response

    driver = Driver(handler)
    with pytest.raises(IncompleteResultsError, match="1 of 2 shards failed: gone") as caught:
        driver.run(flows.scan(dialect("opensearch", "2.19.6"), index="i", size=10))
    assert caught.value.error_type == "node_disconnected"
    assert server.open == set()


@pytest.mark.parametrize(
    ("flavor", "version", "why"),
    [
        ("opensearch", "2.19.6", "no unique sort tiebreaker"),
        ("opensearch", "1.3.20", "no point-in-time API"),
    ],
)
def test_scan_refuses_an_unsafe_forced_pit(flavor: str, version: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        next(flows.scan(dialect(flavor, version), index="i", pagination="pit"))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"pagination": "fast"}, "pagination"), ({"size": 0}, "size"), ({"size": True}, "size")],
)
def test_scan_validates(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        next(flows.scan(dialect("elasticsearch", "9.5.4"), index="i", **kwargs))


def test_a_scan_closed_without_driver_does_not_complain() -> None:
    flow = flows.scan(dialect("elasticsearch", "9.5.4"), index="i", size=1)
    next(flow)  # the open-PIT request
    flow.send(answer({"id": "p"}))  # the first search
    page = flow.send(answer({"_shards": {"failed": 0}, "hits": {"hits": [{"sort": [1]}]}}))
    assert isinstance(page, flows.Page)
    flow.close()  # no RuntimeError("generator ignored GeneratorExit")


def test_single_names_a_missing_module() -> None:
    def handler(spec: RequestSpec) -> Response:
        raise BadRequestError(400, body={"error": "no handler found for uri [/_render/template]"})

    with pytest.raises(BadRequestError, match="lang-mustache") as caught:
        Driver(handler).run(flows.single(RequestSpec("POST", "/_render/template")))
    assert isinstance(caught.value.__cause__, BadRequestError)


def test_single_passes_other_errors_unchanged() -> None:
    error = BadRequestError(400, error_type="parsing_exception", reason="bad query")

    def handler(spec: RequestSpec) -> Response:
        raise error

    with pytest.raises(BadRequestError) as caught:
        Driver(handler).run(flows.single(RequestSpec("POST", "/_search/template")))
    assert caught.value is error

"""The client API, written once for asyncio.

``scripts/unasync.py`` generates the blocking twin, ``sturdysearch/_sync/client.py``, from this
file (``async``/``await`` dropped, ``Async`` names turned into their sync ones); a unit test fails
when the two drift. Each method is one line over a pure request builder in
``sturdysearch._core.api`` (and a pure post-processor in ``sturdysearch._core.results``), and
multi-step calls are sans-IO generators in ``sturdysearch._core.flows`` pumped by
:meth:`AsyncClient._run_flow`, so that nothing but waiting differs between the two.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

from sturdysearch._async.transport import AsyncTransport
from sturdysearch._core import api, flows, results
from sturdysearch._core.config import ClientConfig, build_config
from sturdysearch._core.dialect import Dialect, ServerInfo, dialect_for
from sturdysearch._core.events import Tracer
from sturdysearch._core.nodes import NodeConfig
from sturdysearch._core.request import RequestSpec
from sturdysearch._core.responses import Response
from sturdysearch._core.retry import RetryPolicy
from sturdysearch._core.timeouts import Deadline, call_budget
from sturdysearch.errors import ApiError, MalformedResponseError, SturdySearchError

logger = logging.getLogger("sturdysearch")
T = TypeVar("T")


class AsyncClient:
    """A client for one Elasticsearch or OpenSearch cluster. Create one per cluster and share it
    across threads; close it (or use ``with``) when done.

    ``Client(["https://es1:9200", "https://es2:9200"], api_key=..., ca_certs="http_ca.crt")``

    Options (all keyword): ``basic_auth``, ``api_key``, ``bearer_auth``; ``ca_certs``,
    ``ssl_assert_fingerprint``, ``client_cert``, ``client_key``, ``dangerously_skip_tls_verify``;
    ``timeout`` (the per-call deadline, default 30 s), ``connect_timeout`` (2 s), ``read_timeout``
    (10 s); ``connections_per_node`` (16), ``idle_timeout`` (30 s); ``headers``,
    ``http_compress``, ``allow_credentials_over_http``; ``retry`` (a :class:`RetryPolicy`);
    ``retry_budget_ratio`` (0.1) and ``retry_budget_max_tokens`` (10); node health:
    ``probe_timeout`` (2 s), ``probe_backoff_base`` (0.5 s), ``probe_backoff_cap`` (60 s);
    discovery: ``sniff_on_start``, ``sniff_interval``, ``sniff_on_node_failure`` (all off),
    ``sniff_timeout`` (5 s); ``hedge_after`` (seconds, off) for hedged reads.
    Invalid values raise :class:`~sturdysearch.errors.ConfigError` here, not on first use.
    """

    def __init__(
        self,
        hosts: str | Sequence[str | NodeConfig] | None = None,
        *,
        retry: RetryPolicy | None = None,
        **options: Any,
    ) -> None:
        self.config: ClientConfig = build_config(hosts, **options)
        self.tracer = Tracer()
        self._transport = AsyncTransport(self.config, retry=retry, tracer=self.tracer)
        self.indices = AsyncIndicesClient(self)
        self.cluster = AsyncClusterClient(self)
        self.cat = AsyncCatClient(self)
        self.tasks = AsyncTasksClient(self)
        self._dialect: Dialect | None = None
        self._dialect_mark: tuple[tuple[str, int, bool], ...] = ()
        self._warned: set[str] = set()

    def __repr__(self) -> str:
        return f"AsyncClient({[n.url for n in self.config.nodes]!r})"

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every pooled connection; later calls raise ``TransportError``."""
        await self._transport.close()

    def nodes_status(self) -> list[dict[str, Any]]:
        """For operators: per node its state (alive / ejected / probing), consecutive failures,
        last probe, in-flight calls and pool use."""
        return self._transport.nodes_status()

    def stats(self) -> dict[str, Any]:
        """For operators: what an outage costs the cluster. ``probes_sent`` and
        ``probes_by_node`` (health probes, by callers and the background prober, which share
        one schedule per node), ``retries_granted`` and ``retries_denied`` by the retry budget
        and its balance, and how many nodes are live."""
        return self._transport.stats()

    async def sniff(self) -> list[str]:
        """Discover the cluster's nodes now (see ``sniff_on_start``); returns the node URLs in
        use afterwards. Unreachable discoveries are ignored with a warning."""
        return [n.url for n in await self._transport.sniff()]

    @property
    def retry_budget(self) -> dict[str, float]:
        """The retry budget's balance and how many retries it granted and denied."""
        budget = self._transport.budget
        return {"balance": budget.balance, "granted": budget.granted, "denied": budget.denied}

    def pool_stats(self) -> dict[str, dict[str, int]]:
        """Per node: ``open``, ``idle`` and ``in_use`` connections."""
        return self._transport.pool_stats()

    # -- generic ---------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        raw_body: bytes | None = None,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        ignore: int | Collection[int] = (),
        idempotent: bool | None = None,
        long_running: bool = False,
    ) -> Response:
        """Any API call. ``body`` is serialized (a list becomes NDJSON); strings are refused, and
        bytes you built yourself go through ``raw_body``. ``idempotent`` overrides the method's
        default (GET/HEAD/PUT/DELETE are) and decides whether the call may be resent after it may
        have reached the server. ``ignore=(404,)`` returns those statuses instead of raising.
        ``long_running=True`` allows deadlines beyond 300 s for admin calls."""
        return await self._transport.perform(
            api.request(
                method,
                path,
                params=params,
                body=body,
                raw_body=raw_body,
                content_type=content_type,
                headers=headers,
                timeout=timeout,
                ignore=ignore,
                idempotent=idempotent,
                long_running=long_running,
            )
        )

    async def perform(self, spec: RequestSpec) -> Response:
        """Run a prepared :class:`RequestSpec` (the API layer's building block)."""
        return await self._transport.perform(spec)

    async def _run_flow(
        self, flow: flows.Flow[T], *, timeout: float | None = None, long_running: bool = False
    ) -> T:
        """Pump a sans-IO flow (``sturdysearch._core.flows``) to its result within one deadline:
        ``timeout=`` or the client default for the whole flow, requests and sleeps included."""
        budget = call_budget(self.config.timeouts, timeout, long_running=long_running)
        now = time.monotonic()
        run = flows.FlowRun(flow, Deadline(now, budget), per_request=self.config.timeouts.total)
        step = run.start(now)
        while not isinstance(step, flows.Done):
            step = await self._flow_step(run, step)
        return step.value

    async def _flow_step(self, run: flows.FlowRun[Any], step: flows.Step) -> Any:
        """Do one request or sleep of a flow; return the flow's next step."""
        if isinstance(step, flows.Sleep):
            await asyncio.sleep(step.seconds)
            return run.send(None, time.monotonic())
        if isinstance(step, flows.Page):
            raise TypeError("only scan() consumes pages")
        try:
            response = await self._transport.perform(step)
        except SturdySearchError as exc:
            return run.throw(exc, time.monotonic())
        return run.send(response, time.monotonic())

    # -- dialect -----------------------------------------------------------------------------

    def _health_mark(self) -> tuple[tuple[str, int, bool], ...]:
        """The node set and each node's (ejections, alive): it changes when a node is ejected,
        re-admitted, or sniffed in or out. Read instead of subscribing to ``node.readmitted``:
        any tracer listener turns on an event for every request (about 3 us each)."""
        states = list(self._transport.health.states.items())
        return tuple((node.url, state.ejections, state.alive) for node, state in states)

    def _adopt(self, server: ServerInfo | None, mark: tuple[tuple[str, int, bool], ...]) -> Dialect:
        dialect = dialect_for(server)
        if dialect.warning and dialect.warning not in self._warned:
            self._warned.add(dialect.warning)
            logger.warning("%s", dialect.warning)
        self._dialect, self._dialect_mark = dialect, mark
        return dialect

    async def dialect(self) -> Dialect:
        """How this client talks to the server: detected on first use (``GET /``), cached, and
        detected again on the next use after a node was ejected or re-admitted (the server
        behind it may have been upgraded meanwhile). A server that refuses detection (no
        ``monitor`` privilege) gets the conservative dialect, with one warning."""
        mark = self._health_mark()
        dialect = self._dialect
        if dialect is not None and mark == self._dialect_mark:
            return dialect
        try:
            server: ServerInfo | None = await self._run_flow(flows.detect())
        except (ApiError, MalformedResponseError) as exc:  # refused, or not a root document
            logger.debug("server detection failed: %s", exc)
            server = None
        return self._adopt(server, mark)

    # -- cluster ---------------------------------------------------------------------------

    async def info(self, *, timeout: float | None = None) -> ServerInfo:
        """Flavor, version and cluster name of the server (``GET /``, or ``GET /_nodes/_local``
        on builds without a root endpoint); also refreshes the cached dialect."""
        mark = self._health_mark()
        server = await self._run_flow(flows.detect(timeout=timeout), timeout=timeout)
        self._adopt(server, mark)
        return server

    async def ping(self, *, timeout: float | None = None) -> bool:
        """True if a node answers ``HEAD /`` with 200 (or, on builds without a root endpoint,
        ``GET /_nodes/_local``). Transport failures still raise."""
        return await self._run_flow(flows.ping(timeout=timeout), timeout=timeout)

    # -- documents -------------------------------------------------------------------------

    async def index(self, **kwargs: Any) -> results.WriteResult:
        """``index(index=, document=, id=None, refresh=None, op_type=None, if_seq_no=None,
        if_primary_term=None, routing=None, pipeline=None, params=None, timeout=None)``.
        Returns a :class:`WriteResult` (``.seq_no``, ``.primary_term``, ``.version``)."""
        return results.WriteResult.of(await self._transport.perform(api.index(**kwargs)))

    async def create(self, **kwargs: Any) -> results.WriteResult:
        """``create(index=, id=, document=, refresh=None, ...)``: raises ``ConflictError`` if
        the id exists."""
        return results.WriteResult.of(await self._transport.perform(api.create(**kwargs)))

    async def update(self, **kwargs: Any) -> results.WriteResult:
        """``update(index=, id=, doc=None, script=None, upsert=None, doc_as_upsert=None,
        scripted_upsert=None, detect_noop=None, retry_on_conflict=None, if_seq_no=None,
        if_primary_term=None, refresh=None, routing=None, source=None, body=None, ...)``:
        exactly one of ``doc``/``script``. Resent after a lost answer only when that cannot
        apply it twice (see ``_core.api.update``)."""
        return results.WriteResult.of(await self._transport.perform(api.update(**kwargs)))

    async def update_with_retry(
        self,
        index: str,
        id: Any,
        fn: Callable[[Any], Any],
        *,
        max_attempts: int = 10,
        create_if_missing: bool = False,
        refresh: bool | str | None = None,
        routing: str | None = None,
        timeout: float | None = None,
    ) -> results.WriteResult:
        """Read-modify-write with optimistic concurrency: ``fn(current_source) -> new_source``
        is written back only if nobody wrote in between, retried on 409 with jittered backoff
        up to ``max_attempts`` times, all within ``timeout`` (the client default otherwise).
        ``fn`` may run several times and must have no side effects. Raises ``ConflictError``
        when every attempt lost, ``NotFoundError`` for a missing document (unless
        ``create_if_missing``: then ``fn(None)`` creates it), ``DeadlineExceeded``."""
        return await self._run_flow(
            flows.update_with_retry(
                index=index,
                id=id,
                fn=fn,
                rand=random.random,
                max_attempts=max_attempts,
                create_if_missing=create_if_missing,
                refresh=refresh,
                routing=routing,
            ),
            timeout=timeout,
        )

    async def get(self, **kwargs: Any) -> results.GetResult:
        """``get(index=, id=, source=None, routing=None, realtime=None, ...)``: raises
        ``NotFoundError`` for a missing document (or pass ``ignore=404``)."""
        return results.GetResult.of(await self._transport.perform(api.get(**kwargs)))

    async def get_or_none(self, **kwargs: Any) -> results.GetResult | None:
        """Like :meth:`get`, but ``None`` when the document does not exist. A missing *index*
        still raises ``NotFoundError``: a misspelt index name should not look like an empty
        one."""
        return results.found_or_none(await self._transport.perform(api.get(**kwargs, ignore=404)))

    async def mget(self, **kwargs: Any) -> results.MultiGetResult:
        """``mget(index=None, ids=None, docs=None, source=None, routing=None, realtime=None,
        refresh=None, body=None, ...)``: ``.docs`` in the order asked."""
        return results.MultiGetResult.of(await self._transport.perform(api.mget(**kwargs)))

    async def exists(self, **kwargs: Any) -> bool:
        """``exists(index=, id=)``: whether the document exists."""
        response = await self._transport.perform(api.exists(**kwargs))
        return bool(response.body)

    async def delete(self, **kwargs: Any) -> results.WriteResult:
        """``delete(index=, id=, refresh=None, if_seq_no=None, if_primary_term=None, ...)``."""
        return results.WriteResult.of(await self._transport.perform(api.delete(**kwargs)))

    async def search(self, **kwargs: Any) -> results.SearchResult:
        """``search(index=None, body=None, query=None, size=None, from_=None, sort=None,
        aggs=None, source=None, search_after=None, track_total_hits=None, params=None,
        timeout=None)``. ``.hits``, and ``.total`` whatever form the server sent it in."""
        return results.SearchResult.of(await self._transport.perform(api.search(**kwargs)))

    async def msearch(self, **kwargs: Any) -> results.MultiSearchResult:
        """``msearch(searches=[header, body, header, body, ...], index=None, ...)``.
        ``.responses`` holds a ``SearchResult`` or the typed ``ApiError`` per search."""
        return results.MultiSearchResult.of(await self._transport.perform(api.msearch(**kwargs)))

    async def search_template(self, **kwargs: Any) -> results.SearchResult:
        """``search_template(index=None, id=None, source=None, params=None, ...)``: a mustache
        template filled with ``params`` (user input goes there, JSON-escaped by the server)."""
        response = await self._run_flow(flows.single(api.search_template(**kwargs)))
        return results.SearchResult.of(response)

    async def render_search_template(self, **kwargs: Any) -> Response:
        """``render_search_template(id=None, source=None, params=None)``: the rendered search
        body under ``template_output``."""
        return await self._run_flow(flows.single(api.render_search_template(**kwargs)))

    async def scan(
        self,
        *,
        index: str | Sequence[str],
        query: Mapping[str, Any] | None = None,
        size: int = 1000,
        keep_alive: str = "5m",
        sort: Sequence[Any] | None = None,
        source: Any = None,
        pagination: str = "auto",
        timeout: float | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every hit matching ``query``, exactly once, ``size`` per request: point in time +
        ``search_after`` where the server has a unique tiebreaker, else scroll
        (``pagination="pit"|"scroll"`` forces one). The PIT or scroll is released when the
        iteration ends, fails, or is closed early (``break`` closes a plain generator; wrap the
        async one in ``contextlib.aclosing``). Raises ``IncompleteResultsError`` if shards fail.
        ``timeout`` bounds each request, not the whole scan."""
        dialect = await self.dialect()
        run: flows.FlowRun[None] = flows.FlowRun(
            flows.scan(
                dialect,
                index=index,
                query=query,
                size=size,
                keep_alive=keep_alive,
                sort=sort,
                source=source,
                pagination=pagination,
                timeout=timeout,
            ),
            per_request=self.config.timeouts.total,
        )
        step = run.start(time.monotonic())
        try:
            while not isinstance(step, flows.Done):
                if isinstance(step, flows.Page):
                    for hit in step.hits:
                        yield hit
                    step = run.send(None, time.monotonic())
                else:
                    step = await self._flow_step(run, step)
        finally:
            if not run.finished:
                step = run.abandon(time.monotonic())
                while not isinstance(step, flows.Done):
                    step = await self._flow_step(run, step)

    async def delete_by_query(
        self,
        *,
        wait_for_completion: bool = True,
        long_running: bool = False,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> results.ByQueryResult:
        """``delete_by_query(index=, query=, conflicts=None, max_docs=None, refresh=None,
        routing=None, slices=None, ...)``. Runs as a server task polled until done within
        ``timeout`` (``long_running=True`` allows more than 300 s); on the deadline
        ``DeadlineExceeded`` names the task, which keeps running. ``wait_for_completion=False``
        returns at once with ``.task``."""
        return await self._run_flow(
            flows.by_query(api.delete_by_query(**kwargs), wait_for_completion=wait_for_completion),
            timeout=timeout,
            long_running=long_running,
        )

    async def update_by_query(
        self,
        *,
        wait_for_completion: bool = True,
        long_running: bool = False,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> results.ByQueryResult:
        """``update_by_query(index=, query=None, script=None, conflicts=None, ...)``; runs as a
        server task, like :meth:`delete_by_query`."""
        return await self._run_flow(
            flows.by_query(api.update_by_query(**kwargs), wait_for_completion=wait_for_completion),
            timeout=timeout,
            long_running=long_running,
        )

    async def count(self, **kwargs: Any) -> Response:
        """``count(index=None, body=None, query=None, params=None, timeout=None)``."""
        return await self._transport.perform(api.count(**kwargs))

    async def bulk(
        self,
        *,
        operations: Iterable[Mapping[str, Any]],
        index: str | None = None,
        refresh: bool | str | None = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Response:
        """A raw ``_bulk`` call. Its answer may be HTTP 200 with ``errors: true``: check the
        items, or use :class:`BulkIndexer`, which accounts for every document."""
        return await self._transport.perform(
            api.bulk(
                operations=operations, index=index, refresh=refresh, params=params, timeout=timeout
            )
        )


class AsyncIndicesClient:
    """``client.indices``: index-level calls."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(self, **kwargs: Any) -> Response:
        """``create(index=, mappings=None, settings=None, aliases=None, body=None, ...)``."""
        return await self._client.perform(api.indices_create(**kwargs))

    async def delete(self, **kwargs: Any) -> Response:
        """``delete(index=, ignore=())``."""
        return await self._client.perform(api.indices_delete(**kwargs))

    async def exists(self, **kwargs: Any) -> bool:
        """``exists(index=)``."""
        response = await self._client.perform(api.indices_exists(**kwargs))
        return bool(response.body)

    async def refresh(self, **kwargs: Any) -> Response:
        """``refresh(index=None)``."""
        return await self._client.perform(api.refresh(**kwargs))

    async def get_mapping(self, **kwargs: Any) -> Response:
        """``get_mapping(index=None)``: ``{index: {"mappings": {...}}}``."""
        return await self._client.perform(api.indices_get_mapping(**kwargs))

    async def put_mapping(self, **kwargs: Any) -> Response:
        """``put_mapping(index=, properties=None, dynamic=None, body=None)``."""
        return await self._client.perform(api.indices_put_mapping(**kwargs))

    async def get_settings(self, **kwargs: Any) -> Response:
        """``get_settings(index=None, name=None, include_defaults=None, flat_settings=None)``."""
        return await self._client.perform(api.indices_get_settings(**kwargs))

    async def put_settings(self, **kwargs: Any) -> Response:
        """``put_settings(settings=, index=None, preserve_existing=None)``."""
        return await self._client.perform(api.indices_put_settings(**kwargs))

    async def put_alias(self, **kwargs: Any) -> Response:
        """``put_alias(index=, name=, filter=None, routing=None, is_write_index=None)``."""
        return await self._client.perform(api.indices_put_alias(**kwargs))

    async def delete_alias(self, **kwargs: Any) -> Response:
        """``delete_alias(index=, name=, ignore=())``."""
        return await self._client.perform(api.indices_delete_alias(**kwargs))

    async def get_alias(self, **kwargs: Any) -> Response:
        """``get_alias(index=None, name=None, ignore=())``: ``{index: {"aliases": {...}}}``."""
        return await self._client.perform(api.indices_get_alias(**kwargs))

    async def update_aliases(self, **kwargs: Any) -> Response:
        """``update_aliases(actions=[{"add": {...}}, {"remove": {...}}])``, atomically."""
        return await self._client.perform(api.indices_update_aliases(**kwargs))


class AsyncClusterClient:
    """``client.cluster``: cluster-level calls."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def health(
        self,
        *,
        raise_on_timeout: bool = True,
        **kwargs: Any,
    ) -> results.ClusterHealth:
        """``health(index=None, wait_for_status=None, wait_for_nodes=None,
        wait_for_active_shards=None, wait_for_events=None, wait_for_no_relocating_shards=None,
        wait_for_no_initializing_shards=None, level=None, local=None, timeout=None)``.

        A ``wait_for_*`` condition is waited for server-side within this call's deadline. If it
        is not met, raises ``ApiError`` (status 408) saying what the health was, or with
        ``raise_on_timeout=False`` returns the report with ``.timed_out`` True."""
        spec = api.cluster_health(**kwargs, default_timeout=self._client.config.timeouts.total)
        return results.cluster_health(await self._client.perform(spec), raise_on_timeout)


class AsyncCatClient:
    """``client.cat``: the ``_cat`` APIs as lists of dicts, numbers typed (sizes in bytes)."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def aliases(self, *, name: str | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        return results.cat_rows((await self._cat("aliases", name, **kwargs)).body)

    async def allocation(
        self,
        *,
        node_id: str | None = None,
        **kwargs: Any,
    ) -> list[dict[str, Any]]:
        return results.cat_rows((await self._cat("allocation", node_id, **kwargs)).body)

    async def count(self, *, index: str | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        return results.cat_rows((await self._cat("count", index, **kwargs)).body)

    async def health(self, **kwargs: Any) -> list[dict[str, Any]]:
        return results.cat_rows((await self._cat("health", None, **kwargs)).body)

    async def indices(self, *, index: str | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        return results.cat_rows((await self._cat("indices", index, **kwargs)).body)

    async def nodes(self, **kwargs: Any) -> list[dict[str, Any]]:
        return results.cat_rows((await self._cat("nodes", None, **kwargs)).body)

    async def shards(self, *, index: str | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        return results.cat_rows((await self._cat("shards", index, **kwargs)).body)

    async def _cat(self, what: str, target: str | None, **kwargs: Any) -> Response:
        return await self._client.perform(api.cat(what, target=target, **kwargs))


class AsyncTasksClient:
    """``client.tasks``: server tasks (background ``*_by_query`` runs, among others)."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def get(self, **kwargs: Any) -> Response:
        """``get(task_id=)``: ``completed``, and ``response`` or ``error`` once done."""
        return await self._client.perform(api.tasks_get(**kwargs))

    async def cancel(self, **kwargs: Any) -> Response:
        """``cancel(task_id=)``: ask the task to stop."""
        return await self._client.perform(api.tasks_cancel(**kwargs))

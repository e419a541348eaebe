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
import os
import random
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from functools import cached_property
from types import TracebackType
from typing import Any, TypeVar

from sturdysearch._async.api.root import AsyncRootApi
from sturdysearch._async.transport import AsyncTransport
from sturdysearch._core import api, flows, results
from sturdysearch._core.auth import Auth
from sturdysearch._core.config import DEFAULT_CONNECTIONS_PER_NODE, ClientConfig, build_config
from sturdysearch._core.dialect import SERVERLESS, Dialect, ServerInfo, dialect_for
from sturdysearch._core.driver import CallerTransport
from sturdysearch._core.endpoint import Endpoint, adjust, build, merge_query
from sturdysearch._core.events import Tracer
from sturdysearch._core.hints import hint_peer_keywords
from sturdysearch._core.nodes import NodeConfig
from sturdysearch._core.request import RequestSpec
from sturdysearch._core.responses import Response
from sturdysearch._core.retry import RetryPolicy
from sturdysearch._core.timeouts import (
    DEFAULT_CONNECT,
    DEFAULT_READ,
    DEFAULT_TOTAL,
    Deadline,
    Timeouts,
    call_budget,
)
from sturdysearch.auth import from_options
from sturdysearch.errors import ApiError, ConfigError, MalformedResponseError, SturdySearchError
from sturdysearch.observability import Observability, install
from sturdysearch.tls import TLSConfig

logger = logging.getLogger("sturdysearch")
T = TypeVar("T")
#: The namespaces (``client.indices``...): cached per client, bound to it, so a view made by
#: ``options()`` makes its own.
_NAMESPACES = frozenset(
    name for name, value in vars(AsyncRootApi).items() if isinstance(value, cached_property)
)


@hint_peer_keywords
class AsyncClient(AsyncRootApi):
    """A client for one Elasticsearch or OpenSearch cluster. Create one per cluster and share it
    across threads; close it (or use ``with``) when done.

    ``Client(["https://es1:9200", "https://es2:9200"], api_key=..., ca_certs="http_ca.crt")``

    Options (all keyword): ``auth`` (a :mod:`sturdysearch.auth` value: ``BasicAuth``,
    ``ApiKey``, ``BearerToken``, ``ServiceToken``, ``AwsSigV4``) or the peers' ``basic_auth``,
    ``api_key``, ``bearer_auth``; ``cloud_id`` instead of node URLs; ``tls`` (a
    :class:`~sturdysearch.tls.TLSConfig`) or its ``ca_certs``, ``ssl_assert_fingerprint``,
    ``client_cert``, ``client_key``, ``dangerously_skip_tls_verify``; ``timeouts`` (a
    :class:`Timeouts`) or ``timeout`` (the per-call deadline, default 30 s), ``connect_timeout``
    (2 s), ``read_timeout`` (10 s); ``connections_per_node`` (16), ``idle_timeout`` (30 s); ``headers``,
    ``http_compress``, ``allow_credentials_over_http``; ``retry`` (a :class:`RetryPolicy`);
    ``retry_budget_ratio`` (0.1) and ``retry_budget_max_tokens`` (10); node health:
    ``probe_timeout`` (2 s), ``probe_backoff_base`` (0.5 s), ``probe_backoff_cap`` (60 s);
    discovery: ``sniff_on_start``, ``sniff_interval``, ``sniff_on_node_failure`` (all off),
    ``sniff_timeout`` (5 s); ``hedge_after`` (seconds, off) for hedged reads; ``observability``
    (an :class:`~sturdysearch.Observability`: slow-call logging, OpenTelemetry, X-Opaque-Id);
    an HTTP proxy: ``proxy`` (``"http://[user:password@]host:port"``) with ``no_proxy`` (hosts,
    ``.domains``, addresses and CIDR ranges connected to directly), or ``proxy_from_env=True``
    to read ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY`` (see
    ``docs/proxies.md``). Invalid values raise :class:`~sturdysearch.errors.ConfigError` here,
    not on first use.
    """

    def __init__(
        self,
        hosts: str | Sequence[str | NodeConfig] | None = None,
        *,
        auth: Auth | None = None,
        basic_auth: str | Sequence[str] | None = None,
        api_key: str | Sequence[str] | None = None,
        bearer_auth: str | None = None,
        cloud_id: str | None = None,
        tls: TLSConfig | None = None,
        ca_certs: str | None = None,
        ssl_assert_fingerprint: str | None = None,
        client_cert: str | None = None,
        client_key: str | None = None,
        dangerously_skip_tls_verify: bool = False,
        timeouts: Timeouts | None = None,
        timeout: float = DEFAULT_TOTAL,
        connect_timeout: float = DEFAULT_CONNECT,
        read_timeout: float = DEFAULT_READ,
        retry: RetryPolicy | None = None,
        retry_budget_ratio: float = 0.1,
        retry_budget_max_tokens: float = 10.0,
        connections_per_node: int = DEFAULT_CONNECTIONS_PER_NODE,
        idle_timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        http_compress: bool = False,
        allow_credentials_over_http: bool = False,
        probe_timeout: float = 2.0,
        probe_backoff_base: float = 0.5,
        probe_backoff_cap: float = 60.0,
        sniff_on_start: bool = False,
        sniff_interval: float | None = None,
        sniff_on_node_failure: bool = False,
        sniff_timeout: float = 5.0,
        hedge_after: float | None = None,
        observability: Observability | None = None,
        proxy: str | None = None,
        proxy_from_env: bool = False,
        no_proxy: Sequence[str] | None = None,
    ) -> None:
        """``timeouts=Timeouts(connect=, read=, total=)`` or the three ``connect_timeout=``,
        ``read_timeout=``, ``timeout=`` (the per-call deadline), not both; likewise
        ``tls=TLSConfig(...)`` or ``ca_certs=``, ``ssl_assert_fingerprint=``, ``client_cert=``,
        ``client_key=``, ``dangerously_skip_tls_verify=``.

        ``proxy="http://[user:password@]host:port"`` sends every node's traffic through that
        HTTP proxy: ``https://`` nodes through a CONNECT tunnel (TLS runs end to end with the
        node, whose certificate is checked), ``http://`` nodes as absolute-form requests.
        ``no_proxy=["localhost", ".internal.example.com", "10.0.0.0/8", "db1:9200"]`` lists
        the nodes reached directly. ``proxy_from_env=True`` reads the proxy from
        ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` and the bypass list from ``NO_PROXY``,
        once, here; it is off by default because a stray ``HTTPS_PROXY`` on a server would
        otherwise route cluster traffic through a corporate proxy without anyone choosing it.
        ``proxy=`` and ``proxy_from_env=True`` together are refused."""
        observability = observability or Observability()
        if isinstance(observability.opaque_id, str) and not any(
            name.lower() == "x-opaque-id" for name in headers or {}
        ):
            # A fixed value is a fixed header: no per-call work.
            headers = {**(headers or {}), "X-Opaque-Id": observability.opaque_id}
        self.config: ClientConfig = build_config(
            hosts,
            auth=auth,
            basic_auth=basic_auth,
            api_key=api_key,
            bearer_auth=bearer_auth,
            cloud_id=cloud_id,
            tls=tls,
            ca_certs=ca_certs,
            ssl_assert_fingerprint=ssl_assert_fingerprint,
            client_cert=client_cert,
            client_key=client_key,
            dangerously_skip_tls_verify=dangerously_skip_tls_verify,
            connections_per_node=connections_per_node,
            idle_timeout=idle_timeout,
            headers=headers,
            http_compress=http_compress,
            allow_credentials_over_http=allow_credentials_over_http,
            probe_timeout=probe_timeout,
            probe_backoff_base=probe_backoff_base,
            probe_backoff_cap=probe_backoff_cap,
            retry_budget_ratio=retry_budget_ratio,
            retry_budget_max_tokens=retry_budget_max_tokens,
            sniff_on_start=sniff_on_start,
            sniff_interval=sniff_interval,
            sniff_on_node_failure=sniff_on_node_failure,
            sniff_timeout=sniff_timeout,
            hedge_after=hedge_after,
            timeouts=timeouts,
            timeout=timeout,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            proxy=proxy,
            proxy_from_env=proxy_from_env,
            no_proxy=no_proxy,
            environ=os.environ if proxy_from_env else None,
        )
        self.tracer = Tracer()
        self._observability = observability
        self._transport = AsyncTransport(self.config, retry=retry, tracer=self.tracer)
        self._client = self  # the generated API methods reach the client the same way everywhere
        self._dialect: Dialect | None = None
        self._dialect_mark: tuple[tuple[str, int, bool], ...] = ()
        self._warned: set[str] = set()
        install(self._observability, self.tracer, self._transport.pool_stats)

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
        """Close every pooled connection; later calls raise ``TransportError``. On a view
        made by :meth:`options` it does nothing: the view shares its client's connections."""
        if isinstance(self._transport, CallerTransport):
            return
        await self._transport.close()

    def options(self, *, auth: Auth) -> AsyncClient:
        """A view of this client whose calls authenticate with ``auth`` instead (an end user's
        API key, a run-as service token...). It shares the connections, node health, retry
        budget and dialect of this client, so making one per request is cheap; it needs no
        closing, and closing the client closes it too.

        ``client.options(auth=ApiKey(user_key)).search(index="logs")``"""
        chosen = from_options(auth=auth)
        if chosen is None:
            raise ConfigError("options(auth=...) needs a sturdysearch.auth value")
        view = object.__new__(type(self))
        # Everything but the namespaces (``cached_property`` values bound to this client).
        view.__dict__.update(
            (name, value) for name, value in self.__dict__.items() if name not in _NAMESPACES
        )
        base = self._transport
        if isinstance(base, CallerTransport):
            base = base.transport
        view._transport = CallerTransport(base, chosen)  # type: ignore[assignment]
        view._client = view
        return view

    def nodes_status(self) -> list[dict[str, Any]]:
        """For operators: per node its state (alive / ejected / probing), consecutive failures,
        last probe, in-flight calls and pool use."""
        return self._transport.nodes_status()

    def stats(self) -> dict[str, Any]:
        """For operators, the numbers the OpenTelemetry metrics report, as a snapshot:
        ``calls`` and ``calls_failed``, ``attempts`` and ``attempts_failed``, ``retries``,
        ``hedges``, ``ejections`` and ``readmissions`` since the client started; what an
        outage costs the cluster: ``probes_sent`` and ``probes_by_node`` (health probes, by
        callers and the background prober, which share one schedule per node),
        ``retries_granted`` and ``retries_denied`` by the retry budget and its balance; and
        ``live_nodes`` of ``nodes``. Pool use is :meth:`pool_stats`; a bulk load's own
        numbers are its ``BulkIndexer.stats``."""
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
        """Per node: ``open``, ``idle`` and ``in_use`` connections now; ``opened`` since the
        start and ``waits`` (checkouts that had to wait for a free connection)."""
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

    async def _call(
        self,
        endpoint: Endpoint,
        parts: Mapping[str, Any],
        query: Mapping[str, Any] | None,
        body: Any,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        timeout: float | None,
        ignore: int | Collection[int],
    ) -> Response:
        """One call of a generated API method. An endpoint that every supported server serves
        alike is sent without knowing the server; any other first learns what the server is
        (``dialect()``, cached) so that the right URL form is chosen, or ``UnsupportedApiError``
        is raised before sending."""
        flavor: str | None = None
        version: tuple[int, int, int] | None = None
        if not endpoint.plain:
            server = (await self.dialect()).server
            if server is not None:
                flavor, version = server.flavor, server.version_tuple
        spec = build(
            endpoint, flavor, version, parts, query, body, params, headers, timeout, ignore
        )
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
        self.tracer.flavor = server.flavor if server is not None else None
        self.tracer.cluster = server.cluster_name if server is not None else None
        if dialect.warning and dialect.warning not in self._warned:
            self._warned.add(dialect.warning)
            logger.warning("%s", dialect.warning)
        self._dialect, self._dialect_mark = dialect, mark
        return dialect

    async def dialect(self) -> Dialect:
        """How this client talks to the server: detected on first use (``GET /``), cached, and
        detected again on the next use after a node was ejected or re-admitted (the server
        behind it may have been upgraded meanwhile). A server that refuses detection (no
        ``monitor`` privilege) gets the conservative dialect, with one warning. A client
        signing for OpenSearch Serverless (``AwsSigV4(service="aoss")``) has the Serverless
        dialect from the start: Serverless has no ``GET /`` to ask."""
        mark = self._health_mark()
        dialect = self._dialect
        if dialect is not None and (mark == self._dialect_mark or dialect.serverless):
            return dialect
        if self._transport.serverless:
            return self._adopt(SERVERLESS, mark)
        try:
            server: ServerInfo | None = await self._run_flow(flows.detect())
        except (ApiError, MalformedResponseError) as exc:  # refused, or not a root document
            logger.debug("server detection failed: %s", exc)
            server = None
        return self._adopt(server, mark)

    # -- cluster ---------------------------------------------------------------------------

    async def info(self, *, timeout: float | None = None) -> ServerInfo:
        """Flavor, version and cluster name of the server (``GET /``, or ``GET /_nodes/_local``
        on builds without a root endpoint); also refreshes the cached dialect. OpenSearch
        Serverless reports nothing: its fixed description is returned without a request."""
        mark = self._health_mark()
        if self._transport.serverless:
            self._adopt(SERVERLESS, mark)
            return SERVERLESS
        server = await self._run_flow(flows.detect(timeout=timeout), timeout=timeout)
        self._adopt(server, mark)
        return server

    async def ping(self, *, timeout: float | None = None) -> bool:
        """True if a node answers ``HEAD /`` with 200 (or, on builds without a root endpoint,
        ``GET /_nodes/_local``). Transport failures still raise. On OpenSearch Serverless,
        which has no root endpoint, a 404 is True too: it comes after the signature was
        accepted (a rejected one raises ``AuthorizationError``)."""
        if self._transport.serverless:
            await self._transport.perform(api.ping(timeout=timeout))
            return True
        return await self._run_flow(flows.ping(timeout=timeout), timeout=timeout)

    # -- helpers over the API ----------------------------------------------------------------

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

    async def get_or_none(
        self,
        *,
        index: str,
        id: Any,
        source: Any = None,
        routing: str | None = None,
        realtime: bool | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> results.GetResult | None:
        """Like :meth:`get`, but ``None`` when the document does not exist. A missing *index*
        still raises ``NotFoundError``: a misspelt index name should not look like an empty
        one."""
        spec = api.get(
            index=index,
            id=id,
            source=source,
            routing=routing,
            realtime=realtime,
            params=params,
            timeout=timeout,
            ignore=404,
        )
        return results.found_or_none(await self._transport.perform(adjust(spec, headers, ())))

    async def open_point_in_time(
        self,
        *,
        index: str | Sequence[str],
        keep_alive: str,
        routing: str | None = None,
        preference: str | None = None,
        expand_wildcards: str | None = None,
        ignore_unavailable: bool | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> results.PointInTime:
        """Open a point in time in the server's own dialect: ``POST /{index}/_pit`` on
        Elasticsearch 7.10+, ``POST /{index}/_search/point_in_time`` on OpenSearch 2.4+ (where
        the spec calls it ``create_pit``). ``.id`` is the id either way. Raises
        ``UnsupportedApiError`` on a server without point in time (OpenSearch 1.x)."""
        dialect = await self.dialect()
        names = list(index) if not isinstance(index, str) else index
        spec = dialect.open_pit(names, keep_alive, timeout=timeout)
        query = {
            k: v
            for k, v in (
                ("routing", routing),
                ("preference", preference),
                ("expand_wildcards", expand_wildcards),
                ("ignore_unavailable", ignore_unavailable),
            )
            if v is not None
        }
        spec = adjust(spec, headers, (), merge_query(params, query))
        return results.PointInTime.of(await self._transport.perform(spec))

    async def close_point_in_time(
        self,
        *,
        id: str | None = None,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response:
        """Close a point in time in the server's dialect (``DELETE /_pit`` on Elasticsearch,
        ``DELETE /_search/point_in_time`` on OpenSearch, where the spec calls it
        ``delete_pit``); ``id=``, or ``body={"id": ...}`` as elasticsearch-py takes it. One
        already gone is not an error."""
        if id is None:
            id = (body or {}).get("id")
        elif body is not None:
            raise ValueError("give id= or body={'id': ...}, not both")
        if not isinstance(id, str) or not id:
            raise ValueError("close_point_in_time needs id= (the PIT id)")
        dialect = await self.dialect()
        spec = adjust(dialect.close_pit(id, timeout=timeout), headers, ())
        return await self._transport.perform(spec)

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
        slice: tuple[int, int] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every hit matching ``query``, exactly once, ``size`` per request: point in time +
        ``search_after`` where the server has a unique tiebreaker, else scroll
        (``pagination="pit"|"scroll"`` forces one). The PIT or scroll is released when the
        iteration ends, fails, or is closed early (``break`` closes a plain generator; wrap the
        async one in ``contextlib.aclosing``). Raises ``IncompleteResultsError`` if shards fail.
        ``timeout`` bounds each request, not the whole scan. ``slice=(i, n)`` reads the
        ``i``-th of ``n`` disjoint slices: ``n`` scans in parallel (processes, Spark tasks)
        read every document once between them."""
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
                slice=slice,
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

"""The client API, written once for asyncio.

``scripts/unasync.py`` generates the blocking twin, ``sturdysearch/_sync/client.py``, from this
file (``async``/``await`` dropped, ``Async`` names turned into their sync ones); a unit test fails
when the two drift. Each method is one line over a pure request builder in
``sturdysearch._core.api``, so that nothing but waiting differs between the two.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from sturdysearch._async.transport import AsyncTransport
from sturdysearch._core import api
from sturdysearch._core.config import ClientConfig, build_config
from sturdysearch._core.dialect import ServerInfo, parse_server_info
from sturdysearch._core.events import Tracer
from sturdysearch._core.nodes import NodeConfig
from sturdysearch._core.request import RequestSpec
from sturdysearch._core.responses import Response
from sturdysearch._core.retry import RetryPolicy


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

    # -- cluster ---------------------------------------------------------------------------

    async def info(self, *, timeout: float | None = None) -> ServerInfo:
        """Flavor, version and cluster name of the server."""
        response = await self._transport.perform(api.info(timeout=timeout))
        return parse_server_info(response.body, response.meta.node)

    async def ping(self, *, timeout: float | None = None) -> bool:
        """True if a node answers ``HEAD /`` with 200. Transport failures still raise."""
        response = await self._transport.perform(api.ping(timeout=timeout))
        return bool(response.body)

    # -- documents -------------------------------------------------------------------------

    async def index(self, **kwargs: Any) -> Response:
        """``index(index=, document=, id=None, refresh=None, op_type=None, if_seq_no=None,
        if_primary_term=None, routing=None, pipeline=None, params=None, timeout=None)``."""
        return await self._transport.perform(api.index(**kwargs))

    async def create(self, **kwargs: Any) -> Response:
        """``create(index=, id=, document=, refresh=None, ...)``: raises ``ConflictError`` if
        the id exists."""
        return await self._transport.perform(api.create(**kwargs))

    async def get(self, **kwargs: Any) -> Response:
        """``get(index=, id=, source=None, routing=None, realtime=None, ...)``: raises
        ``NotFoundError`` for a missing document (or pass ``ignore=404``)."""
        return await self._transport.perform(api.get(**kwargs))

    async def exists(self, **kwargs: Any) -> bool:
        """``exists(index=, id=)``: whether the document exists."""
        response = await self._transport.perform(api.exists(**kwargs))
        return bool(response.body)

    async def delete(self, **kwargs: Any) -> Response:
        """``delete(index=, id=, refresh=None, if_seq_no=None, if_primary_term=None, ...)``."""
        return await self._transport.perform(api.delete(**kwargs))

    async def search(self, **kwargs: Any) -> Response:
        """``search(index=None, body=None, query=None, size=None, from_=None, sort=None,
        aggs=None, source=None, search_after=None, track_total_hits=None, params=None,
        timeout=None)``."""
        return await self._transport.perform(api.search(**kwargs))

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

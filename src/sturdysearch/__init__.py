"""sturdysearch: a client for Elasticsearch and OpenSearch that is hard to use wrong.

Public surface: :class:`Client`, :class:`AsyncClient` (asyncio, standard library only),
:class:`ServerInfo` and :class:`Dialect` (what the server is and how it is spoken to),
:class:`Response` and the typed answers built on it (:class:`WriteResult`, :class:`GetResult`,
:class:`SearchResult`, :class:`MultiGetResult`, :class:`MultiSearchResult`,
:class:`ClusterHealth`, :class:`ByQueryResult`), :class:`RetryPolicy`, :class:`Timeouts`,
:class:`BulkIndexer` with :func:`bulk_index` and :func:`replay_dead_letters` (and their asyncio
twins :class:`AsyncBulkIndexer`, :func:`async_bulk_index`, :func:`async_replay_dead_letters`),
their :class:`BulkConfig`, :class:`BulkStats`, :class:`ItemResult` and :class:`DeadLetter`, the
errors in :mod:`sturdysearch.errors`, and the safe-query helpers in :mod:`sturdysearch.query`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sturdysearch._core.bulk.config import BulkConfig, BulkStats, ItemResult
from sturdysearch._core.bulk.deadletter import DeadLetter
from sturdysearch._core.dialect import Dialect, ServerInfo
from sturdysearch._core.events import Event
from sturdysearch._core.responses import Response, ResponseMeta
from sturdysearch._core.results import (
    ByQueryResult,
    ClusterHealth,
    GetResult,
    MultiGetResult,
    MultiSearchResult,
    PointInTime,
    SearchResult,
    WriteResult,
)
from sturdysearch._core.retry import RetryPolicy
from sturdysearch._core.timeouts import Timeouts
from sturdysearch._sync.bulk import BulkIndexer, bulk_index, replay_dead_letters
from sturdysearch._sync.client import Client
from sturdysearch.observability import Observability

if TYPE_CHECKING:
    from sturdysearch._async.api.indices import AsyncIndicesClient
    from sturdysearch._async.bulk import (
        AsyncBulkIndexer,
        async_bulk_index,
        async_replay_dead_letters,
    )
    from sturdysearch._async.client import AsyncClient
    from sturdysearch._sync.api.indices import IndicesClient

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # AsyncClient and AsyncBulkIndexer are imported on first use: a blocking program never
    # loads asyncio (tests/unit/test_public_api.py checks it in a fresh interpreter).
    if name == "AsyncClient":
        from sturdysearch._async import client

        return client.AsyncClient
    if name in ("AsyncBulkIndexer", "async_bulk_index", "async_replay_dead_letters"):
        from sturdysearch._async import bulk

        return getattr(bulk, name)
    # The namespaces are imported on first use too (see ``_async/api/root.py``).
    if name == "AsyncIndicesClient":
        from sturdysearch._async.api import indices

        return indices.AsyncIndicesClient
    if name == "IndicesClient":
        from sturdysearch._sync.api import indices as sync_indices

        return sync_indices.IndicesClient
    raise AttributeError(f"module 'sturdysearch' has no attribute {name!r}")


__all__ = [
    "AsyncBulkIndexer",
    "AsyncClient",
    "AsyncIndicesClient",
    "BulkConfig",
    "BulkIndexer",
    "BulkStats",
    "ByQueryResult",
    "Client",
    "ClusterHealth",
    "DeadLetter",
    "Dialect",
    "Event",
    "GetResult",
    "IndicesClient",
    "ItemResult",
    "MultiGetResult",
    "MultiSearchResult",
    "Observability",
    "PointInTime",
    "Response",
    "ResponseMeta",
    "RetryPolicy",
    "SearchResult",
    "ServerInfo",
    "Timeouts",
    "WriteResult",
    "__version__",
    "async_bulk_index",
    "async_replay_dead_letters",
    "bulk_index",
    "replay_dead_letters",
]

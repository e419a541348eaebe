"""sturdysearch: a client for Elasticsearch and OpenSearch that is hard to use wrong.

Public surface: :class:`Client`, :class:`AsyncClient` (needs the ``async`` extra, aiohttp),
:class:`ServerInfo`, :class:`Response`, :class:`RetryPolicy`, :class:`Timeouts`, and the errors
in :mod:`sturdysearch.errors`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sturdysearch._core.dialect import ServerInfo
from sturdysearch._core.events import Event
from sturdysearch._core.responses import Response, ResponseMeta
from sturdysearch._core.retry import RetryPolicy
from sturdysearch._core.timeouts import Timeouts
from sturdysearch._sync.client import Client, IndicesClient

if TYPE_CHECKING:
    from sturdysearch._async.client import AsyncClient, AsyncIndicesClient

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # AsyncClient is imported on first use, so that the blocking client works without aiohttp.
    if name in ("AsyncClient", "AsyncIndicesClient"):
        from sturdysearch._async import client

        return getattr(client, name)
    raise AttributeError(f"module 'sturdysearch' has no attribute {name!r}")


__all__ = [
    "AsyncClient",
    "AsyncIndicesClient",
    "Client",
    "Event",
    "IndicesClient",
    "Response",
    "ResponseMeta",
    "RetryPolicy",
    "ServerInfo",
    "Timeouts",
    "__version__",
]

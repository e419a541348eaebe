"""sturdysearch: a client for Elasticsearch and OpenSearch that is hard to use wrong.

Public surface: :class:`Client`, :class:`ServerInfo`, :class:`Response`, :class:`RetryPolicy`,
:class:`Timeouts`, and the errors in :mod:`sturdysearch.errors`.
"""

from __future__ import annotations

from sturdysearch._core.dialect import ServerInfo
from sturdysearch._core.events import Event
from sturdysearch._core.responses import Response, ResponseMeta
from sturdysearch._core.retry import RetryPolicy
from sturdysearch._core.timeouts import Timeouts
from sturdysearch._sync.client import Client, IndicesClient

__version__ = "0.1.0"

__all__ = [
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

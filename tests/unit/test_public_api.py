"""The public surface changes only on purpose: update these lists when it does."""

from __future__ import annotations

import subprocess
import sys

import sturdysearch
import sturdysearch.errors

PACKAGE_ALL = [
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

ERRORS_ALL = [
    "ApiError",
    "AuthenticationError",
    "AuthorizationError",
    "BadRequestError",
    "BulkAbortedError",
    "ConfigError",
    "ConflictError",
    "ConnectTimeout",
    "ConnectionError",
    "DeadLetterError",
    "DeadlineExceeded",
    "IncompleteResultsError",
    "MalformedResponseError",
    "NoLiveNodesError",
    "NotFoundError",
    "PayloadTooLargeError",
    "ProxyAuthenticationError",
    "ProxyError",
    "ReadTimeout",
    "SerializationError",
    "ServerError",
    "SturdySearchError",
    "TLSError",
    "TooManyRequestsError",
    "TransportError",
    "UnsupportedApiError",
]


def test_package_all_exactly() -> None:
    assert list(sturdysearch.__all__) == PACKAGE_ALL


def test_errors_all_exactly() -> None:
    assert list(sturdysearch.errors.__all__) == ERRORS_ALL


def test_every_name_exists() -> None:
    for name in PACKAGE_ALL:
        assert hasattr(sturdysearch, name), name
    for name in ERRORS_ALL:
        obj = getattr(sturdysearch.errors, name)
        assert isinstance(obj, type) and issubclass(obj, BaseException), name
        assert issubclass(obj, sturdysearch.errors.SturdySearchError), name


def test_errors_module_defines_no_unlisted_exception() -> None:
    defined = {
        name
        for name, obj in vars(sturdysearch.errors).items()
        if isinstance(obj, type)
        and issubclass(obj, BaseException)
        and obj.__module__ == "sturdysearch.errors"
    }
    assert defined == set(ERRORS_ALL)


def test_version() -> None:
    assert sturdysearch.__version__ == "0.1.0"


def test_a_blocking_program_never_loads_asyncio() -> None:
    """`import sturdysearch` and a blocking client load no asyncio (about 35 ms); the asyncio
    classes still import on first use. Checked in a fresh interpreter, where nothing else has
    imported asyncio yet."""
    code = (
        "import sys, sturdysearch\n"
        "client = sturdysearch.Client('http://127.0.0.1:9', timeout=1.0)\n"
        "client.close()\n"
        "assert 'asyncio' not in sys.modules, sorted(m for m in sys.modules if 'asyncio' in m)\n"
        "assert sturdysearch.AsyncBulkIndexer.__name__ == 'AsyncBulkIndexer'\n"
        "assert 'asyncio' in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr

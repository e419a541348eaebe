"""The public surface changes only on purpose: update these lists when it does."""

from __future__ import annotations

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
    "PointInTime",
    "Response",
    "ResponseMeta",
    "RetryPolicy",
    "SearchResult",
    "ServerInfo",
    "Timeouts",
    "WriteResult",
    "__version__",
    "bulk_index",
    "replay_dead_letters",
]

ERRORS_ALL = [
    "ApiError",
    "AuthenticationError",
    "AuthorizationError",
    "BadRequestError",
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

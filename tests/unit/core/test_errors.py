"""The error tree (``sturdysearch.errors``): hierarchy, messages, and pickling."""

from __future__ import annotations

import builtins
import copy
import pickle
from typing import Any

import pytest

from sturdysearch import errors

NODE = "http://10.0.0.1:9200"


def roundtrip(exc: BaseException, protocol: int = pickle.HIGHEST_PROTOCOL) -> Any:
    return pickle.loads(pickle.dumps(exc, protocol=protocol))


API_CLASSES = [
    errors.ApiError,
    errors.BadRequestError,
    errors.AuthenticationError,
    errors.AuthorizationError,
    errors.NotFoundError,
    errors.ConflictError,
    errors.PayloadTooLargeError,
    errors.TooManyRequestsError,
    errors.ServerError,
    errors.IncompleteResultsError,
]
TRANSPORT_CLASSES = [
    errors.TransportError,
    errors.ConnectionError,
    errors.ConnectTimeout,
    errors.TLSError,
    errors.ProxyError,
    errors.ProxyAuthenticationError,
    errors.ReadTimeout,
    errors.DeadlineExceeded,
    errors.NoLiveNodesError,
    errors.MalformedResponseError,
]


def test_every_public_error_is_covered() -> None:
    covered = {
        errors.SturdySearchError,
        errors.ConfigError,
        errors.SerializationError,
        errors.DeadLetterError,
        errors.BulkAbortedError,
        errors.UnsupportedApiError,
        *API_CLASSES,
        *TRANSPORT_CLASSES,
    }
    assert {getattr(errors, name) for name in errors.__all__} == covered


@pytest.mark.parametrize(
    ("cls", "bases"),
    [
        (errors.ConfigError, (errors.SturdySearchError, ValueError)),
        (errors.SerializationError, (errors.SturdySearchError, TypeError)),
        (errors.DeadLetterError, (errors.SturdySearchError, OSError)),
        (errors.TransportError, (errors.SturdySearchError,)),
        (errors.ConnectionError, (errors.TransportError, builtins.ConnectionError)),
        (
            errors.ConnectTimeout,
            (errors.ConnectionError, errors.TransportError, builtins.TimeoutError, OSError),
        ),
        (errors.TLSError, (errors.ConnectionError, errors.TransportError)),
        (errors.ProxyError, (errors.ConnectionError, errors.TransportError)),
        (errors.ProxyAuthenticationError, (errors.ProxyError, errors.ConnectionError)),
        (errors.ReadTimeout, (errors.TransportError, builtins.TimeoutError)),
        (errors.DeadlineExceeded, (errors.TransportError, builtins.TimeoutError)),
        (errors.NoLiveNodesError, (errors.TransportError,)),
        (errors.MalformedResponseError, (errors.TransportError,)),
        (errors.ApiError, (errors.SturdySearchError,)),
        *[(cls, (errors.ApiError, errors.SturdySearchError)) for cls in API_CLASSES[1:]],
    ],
)
def test_inheritance(cls: type, bases: tuple[type, ...]) -> None:
    for base in bases:
        assert issubclass(cls, base), base
    assert issubclass(cls, errors.SturdySearchError)


@pytest.mark.parametrize(
    ("cls", "not_base"),
    [
        (errors.TLSError, builtins.TimeoutError),
        (errors.ReadTimeout, errors.ConnectionError),
        (errors.ReadTimeout, builtins.ConnectionError),
        (errors.DeadlineExceeded, errors.ConnectionError),
        (errors.ApiError, errors.TransportError),
        (errors.TransportError, errors.ApiError),
        (errors.ServerError, errors.TransportError),
        (errors.MalformedResponseError, builtins.TimeoutError),
    ],
)
def test_not_subclass(cls: type, not_base: type) -> None:
    assert not issubclass(cls, not_base)


def test_connection_error_shadows_builtin_but_is_one() -> None:
    assert errors.ConnectionError is not builtins.ConnectionError
    with pytest.raises(builtins.ConnectionError):
        raise errors.ConnectionError("refused", node=NODE)
    with pytest.raises(TimeoutError):
        raise errors.ConnectTimeout("slow", node=NODE)


# -- messages ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", TRANSPORT_CLASSES)
def test_transport_str_includes_node(cls: type[errors.TransportError]) -> None:
    exc = cls("something failed", node=NODE)
    assert str(exc) == f"something failed (node {NODE})"
    assert exc.message == "something failed"
    assert exc.node == NODE
    assert exc.errors == ()
    assert str(cls("no node")) == "no node"


@pytest.mark.parametrize("cls", API_CLASSES)
def test_api_error_str(cls: type[errors.ApiError]) -> None:
    exc = cls(418, error_type="teapot_exception", reason="short and stout", node=NODE)
    assert str(exc) == f"418 teapot_exception: short and stout (node {NODE})"
    assert str(cls(500)) == "500 error"
    assert str(cls(502, body="<html>Bad Gateway</html>")) == "502 error: '<html>Bad Gateway</html>'"
    long_body = "x" * 1000
    assert len(str(cls(502, body=long_body))) < 300


def test_serialization_error_attributes() -> None:
    exc = errors.SerializationError("bad", path="body['x']", type_name="set")
    assert (exc.path, exc.type_name, str(exc)) == ("body['x']", "set", "bad")


# -- pickling ----------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
@pytest.mark.parametrize("cls", API_CLASSES)
def test_api_errors_pickle(cls: type[errors.ApiError], protocol: int) -> None:
    exc = cls(
        409,
        error_type="version_conflict_engine_exception",
        reason="[1]: version conflict",
        root_cause=[{"type": "version_conflict_engine_exception", "reason": "[1]"}],
        body={"error": {"type": "version_conflict_engine_exception"}, "status": 409},
        node=NODE,
        headers={"retry-after": "4", "content-type": "application/json"},
    )
    copy_ = roundtrip(exc, protocol)
    assert type(copy_) is cls
    for attr in ("status", "error_type", "reason", "root_cause", "body", "node", "headers"):
        assert getattr(copy_, attr) == getattr(exc, attr), attr
    assert copy_.retry_after == 4.0
    assert str(copy_) == str(exc)
    assert copy_.args == exc.args


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
@pytest.mark.parametrize("cls", TRANSPORT_CLASSES)
def test_transport_errors_pickle(cls: type[errors.TransportError], protocol: int) -> None:
    earlier = [
        errors.ConnectionError("refused", node="http://10.0.0.2:9200"),
        errors.ServerError(503, node="http://10.0.0.3:9200"),
    ]
    exc = cls("it failed", node=NODE, errors=earlier)
    copy_ = roundtrip(exc, protocol)
    assert type(copy_) is cls
    assert copy_.message == "it failed"
    assert copy_.node == NODE
    assert str(copy_) == str(exc)
    assert [type(e) for e in copy_.errors] == [errors.ConnectionError, errors.ServerError]
    assert [str(e) for e in copy_.errors] == [str(e) for e in earlier]
    assert copy_.errors[1].status == 503


@pytest.mark.parametrize("cls", [errors.ConnectionError, errors.ConnectTimeout, errors.TLSError])
@pytest.mark.parametrize("sent", [True, False])
def test_connection_errors_pickle_request_sent(
    cls: type[errors.ConnectionError], sent: bool
) -> None:
    copy_ = roundtrip(cls("x", node=NODE, request_sent=sent))
    assert copy_.request_sent is sent


def test_malformed_pickles_status_and_prefix() -> None:
    exc = errors.MalformedResponseError("bad", node=NODE, status=200, body_prefix=b"<html>")
    copy_ = roundtrip(exc)
    assert (copy_.status, copy_.body_prefix) == (200, b"<html>")


def test_amended_message_survives_pickling() -> None:
    exc = errors.ReadTimeout("slow", node=NODE)
    exc.message = "slow; may or may not have been applied"
    exc.args = (exc.message,)
    assert roundtrip(exc).message == exc.message
    assert str(roundtrip(exc)) == str(exc)


@pytest.mark.parametrize("protocol", [0, pickle.HIGHEST_PROTOCOL])
def test_serialization_error_pickles(protocol: int) -> None:
    exc = errors.SerializationError("cannot serialize", path="body['x']", type_name="set")
    copy_ = roundtrip(exc, protocol)
    assert type(copy_) is errors.SerializationError
    assert (copy_.path, copy_.type_name, str(copy_)) == ("body['x']", "set", "cannot serialize")


@pytest.mark.parametrize("protocol", [0, pickle.HIGHEST_PROTOCOL])
def test_dead_letter_error_pickles(protocol: int) -> None:
    exc = errors.DeadLetterError("disk full", path="dlq.jsonl", records=[b'{"a":1}\n'])
    copy_ = roundtrip(exc, protocol)
    assert type(copy_) is errors.DeadLetterError
    assert (copy_.path, copy_.records, str(copy_)) == ("dlq.jsonl", (b'{"a":1}\n',), "disk full")


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_bulk_aborted_error_pickles_with_its_cause(protocol: int) -> None:
    cause = errors.AuthenticationError(401, reason="unable to authenticate", node=NODE)
    exc = errors.BulkAbortedError(
        "stopped", reason="fix the password", cause=cause, stats=None, dead_letter="d.jsonl"
    )
    assert exc.__cause__ is cause and isinstance(exc, errors.SturdySearchError)
    copy_ = roundtrip(exc, protocol)
    assert type(copy_) is errors.BulkAbortedError
    assert (str(copy_), copy_.reason, copy_.dead_letter) == (
        "stopped",
        "fix the password",
        "d.jsonl",
    )
    assert type(copy_.cause) is errors.AuthenticationError and copy_.__cause__ is copy_.cause
    assert str(copy_.cause) == str(cause)


@pytest.mark.parametrize("cls", [errors.SturdySearchError, errors.ConfigError])
def test_plain_errors_pickle(cls: type[Exception]) -> None:
    copy_ = roundtrip(cls("msg"))
    assert type(copy_) is cls
    assert str(copy_) == "msg"


def test_errors_deepcopy() -> None:
    exc = errors.ConflictError(409, reason="r", node=NODE, root_cause=[{"a": 1}])
    dup = copy.deepcopy(exc)
    assert str(dup) == str(exc)
    assert dup.root_cause == exc.root_cause and dup.root_cause is not exc.root_cause


def test_api_error_copies_inputs() -> None:
    causes = [{"reason": "x"}]
    headers = {"retry-after": "1"}
    exc = errors.ApiError(429, root_cause=causes, headers=headers)
    causes.append({"reason": "y"})
    headers["retry-after"] = "99"
    assert exc.root_cause == [{"reason": "x"}]
    assert exc.retry_after == 1.0


def test_api_error_defaults() -> None:
    exc = errors.ApiError(400)
    assert exc.error_type is None and exc.reason is None and exc.body is None
    assert exc.root_cause == [] and exc.headers == {} and exc.node is None
    assert exc.retry_after is None


def test_unsupported_api_error_is_not_an_api_error_and_pickles() -> None:
    exc = errors.UnsupportedApiError("OpenSearch has no open_point_in_time API")
    assert not isinstance(exc, errors.ApiError)  # nothing was sent: the cluster said nothing
    assert isinstance(exc, errors.SturdySearchError)
    assert str(roundtrip(exc)) == str(exc)


def test_a_search_phase_error_names_the_failed_shards_reason() -> None:
    body = {
        "error": {
            "type": "search_phase_execution_exception",
            "reason": "all shards failed",
            "root_cause": [{"type": "query_shard_exception", "reason": "Failed to parse query"}],
            "failed_shards": [
                {
                    "shard": 0,
                    "index": "i",
                    "reason": {
                        "type": "query_shard_exception",
                        "reason": "Failed to parse query [x]",
                    },
                }
            ],
        }
    }
    exc = errors.BadRequestError(
        400,
        error_type="search_phase_execution_exception",
        reason="all shards failed",
        root_cause=body["error"]["root_cause"],  # type: ignore[arg-type]
        body=body,
    )
    assert str(exc) == (
        "400 search_phase_execution_exception: all shards failed; "
        "caused by query_shard_exception: Failed to parse query [x]"
    )
    assert exc.failed_shards[0]["shard"] == 0
    assert str(roundtrip(exc)) == str(exc)


def test_a_root_cause_equal_to_the_error_adds_nothing() -> None:
    exc = errors.NotFoundError(
        404,
        error_type="index_not_found_exception",
        reason="no such index [x]",
        root_cause=[{"type": "index_not_found_exception", "reason": "no such index [x]"}],
    )
    assert str(exc) == "404 index_not_found_exception: no such index [x]"
    assert exc.cause is None and exc.failed_shards == []

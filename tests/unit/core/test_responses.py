"""From status and bytes to an answer or a typed error (``sturdysearch._core.responses``)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sturdysearch import errors
from sturdysearch._core.responses import (
    BODY_PREFIX,
    Response,
    ResponseMeta,
    decode_json_body,
    error_class,
    parse_error_body,
)

NODE = "https://es1:9200"


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.BadRequestError),
        (401, errors.AuthenticationError),
        (403, errors.AuthorizationError),
        (404, errors.NotFoundError),
        (409, errors.ConflictError),
        (413, errors.PayloadTooLargeError),
        (429, errors.TooManyRequestsError),
        (500, errors.ServerError),
        (502, errors.ServerError),
        (503, errors.ServerError),
        (504, errors.ServerError),
        (599, errors.ServerError),
        (300, errors.ApiError),
        (301, errors.ApiError),
        (302, errors.ApiError),
        (405, errors.ApiError),
        (408, errors.ApiError),
        (410, errors.ApiError),
        (418, errors.ApiError),
        (422, errors.ApiError),
        (451, errors.ApiError),
    ],
)
def test_status_to_error_class(status: int, cls: type[errors.ApiError]) -> None:
    assert error_class(status) is cls
    err = parse_error_body(status, {}, b"", NODE)
    assert type(err) is cls
    assert err.status == status
    assert isinstance(err, errors.ApiError)
    assert not isinstance(err, errors.TransportError)


def test_standard_error_body() -> None:
    body = {
        "error": {
            "root_cause": [
                {"type": "index_not_found_exception", "reason": "no such index [x]", "index": "x"}
            ],
            "type": "index_not_found_exception",
            "reason": "no such index [x]",
            "index": "x",
        },
        "status": 404,
    }
    err = parse_error_body(404, {"content-type": "application/json"}, orjson.dumps(body), NODE)
    assert isinstance(err, errors.NotFoundError)
    assert err.error_type == "index_not_found_exception"
    assert err.reason == "no such index [x]"
    assert err.root_cause == body["error"]["root_cause"]  # type: ignore[index]
    assert err.body == body
    assert err.node == NODE
    assert err.headers == {"content-type": "application/json"}
    assert str(err) == f"404 index_not_found_exception: no such index [x] (node {NODE})"


def test_reason_from_root_cause_when_missing() -> None:
    body = {"error": {"type": "x", "root_cause": [{"type": "y", "reason": "from cause"}]}}
    err = parse_error_body(400, {}, orjson.dumps(body), NODE)
    assert (err.error_type, err.reason) == ("x", "from cause")


def test_malformed_error_fields_tolerated() -> None:
    body = {"error": {"type": 5, "reason": ["x"], "root_cause": [{"reason": "ok"}, "junk", 3]}}
    err = parse_error_body(500, {}, orjson.dumps(body), NODE)
    assert err.error_type is None
    assert err.reason == "ok"
    assert err.root_cause == [{"reason": "ok"}]


def test_root_cause_not_a_list() -> None:
    err = parse_error_body(400, {}, b'{"error": {"type": "t", "root_cause": "nope"}}', NODE)
    assert err.root_cause == []
    assert err.reason is None


def test_string_error() -> None:
    err = parse_error_body(
        401, {}, b'{"error": "Unauthorized: no credentials", "status": 401}', NODE
    )
    assert isinstance(err, errors.AuthenticationError)
    assert err.reason == "Unauthorized: no credentials"
    assert err.error_type is None
    assert "Unauthorized: no credentials" in str(err)


@pytest.mark.parametrize(
    "body",
    [
        {"_index": "books", "_id": "42", "found": False},
        {"_index": "books", "_id": "42", "_version": 3, "result": "not_found", "_shards": {}},
    ],
)
def test_document_missing_404(body: dict[str, Any]) -> None:
    err = parse_error_body(404, {}, orjson.dumps(body), NODE)
    assert isinstance(err, errors.NotFoundError)
    assert err.error_type == "document_missing"
    assert err.reason == "document '42' not found in index 'books'"
    assert err.body == body


def test_found_false_with_other_status_not_document_missing() -> None:
    err = parse_error_body(400, {}, b'{"found": false}', NODE)
    assert err.error_type is None and err.reason is None


def test_html_body_from_a_proxy() -> None:
    html = (
        b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
        b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
        + b"<!-- padding -->" * 100
        + b"</body>\r\n</html>\r\n"
    )
    err = parse_error_body(502, {"content-type": "text/html"}, html, NODE)
    assert isinstance(err, errors.ServerError)
    assert err.status == 502
    assert isinstance(err.body, str)
    assert err.body == html[:BODY_PREFIX].decode()
    assert len(err.body) == BODY_PREFIX
    assert err.error_type is None and err.reason is None
    assert "502 Bad Gateway" in str(err)
    assert str(err).startswith("502 error: '<html>")


def test_non_utf8_body_prefix_decoded_with_replacement() -> None:
    err = parse_error_body(503, {}, b"\xff\xfeoops", NODE)
    assert err.body == "\ufffd\ufffdoops"


def test_empty_error_body() -> None:
    err = parse_error_body(503, {}, b"", NODE)
    assert err.body is None
    assert err.error_type is None and err.reason is None
    assert str(err) == f"503 error (node {NODE})"


@pytest.mark.parametrize("data", [b"[1, 2]", b"42", b'"text"', b"null", b"{}"])
def test_json_body_that_is_not_an_error_object(data: bytes) -> None:
    err = parse_error_body(400, {}, data, NODE)
    assert err.body == orjson.loads(data)
    assert err.error_type is None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("5", 5.0),
        ("0", 0.0),
        ("1.5", 1.5),
        (" 7 ", 7.0),
        ("-1", None),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        ("", None),
        ("nan", None),
        (None, None),
    ],
)
def test_retry_after(value: str | None, seconds: float | None) -> None:
    headers = {} if value is None else {"retry-after": value}
    err = parse_error_body(429, headers, b"", NODE)
    assert err.retry_after == seconds


# -- decode_json_body --------------------------------------------------------------------------


def test_decode_json_body() -> None:
    assert decode_json_body(200, b'{"a": 1}', NODE) == {"a": 1}
    assert decode_json_body(200, b"[1]", NODE) == [1]
    assert decode_json_body(200, b"", NODE) is None


@pytest.mark.parametrize(
    "data", [b"<html>ok</html>", b'{"truncated": ', b"OK", b"\x1f\x8b\x08\x00gzip"]
)
def test_2xx_non_json_raises_malformed(data: bytes) -> None:
    with pytest.raises(errors.MalformedResponseError) as info:
        decode_json_body(200, data, NODE)
    err = info.value
    assert err.status == 200
    assert err.node == NODE
    assert err.body_prefix == data[:BODY_PREFIX]
    assert "not JSON" in str(err)
    assert repr(data[:20])[2:-1] in str(err)
    assert str(err).endswith(f"(node {NODE})")


def test_malformed_keeps_only_a_prefix() -> None:
    data = b"x" * 10_000
    with pytest.raises(errors.MalformedResponseError) as info:
        decode_json_body(201, data, NODE)
    assert info.value.body_prefix == data[:BODY_PREFIX]
    assert len(str(info.value)) < 1000


# -- Response ----------------------------------------------------------------------------------


def meta(status: int = 200) -> ResponseMeta:
    return ResponseMeta(status, {"content-type": "application/json"}, NODE, 0.0123456)


def test_response_is_a_mapping() -> None:
    r = Response({"took": 3, "hits": {"total": 1}}, meta())
    assert r["took"] == 3
    assert "hits" in r and "nope" not in r
    assert list(r) == ["took", "hits"]
    assert len(r) == 2
    assert dict(r) == {"took": 3, "hits": {"total": 1}}
    assert r.get("missing", "d") == "d"
    assert r == {"took": 3, "hits": {"total": 1}}
    assert r == Response({"took": 3, "hits": {"total": 1}}, meta(201))
    assert r != {"took": 4}
    assert repr(r) == "Response({'took': 3, 'hits': {'total': 1}})"
    with pytest.raises(TypeError):
        hash(r)


@pytest.mark.parametrize("body", [[1, 2], "health status\n", True, None])
def test_response_non_object_body(body: Any) -> None:
    r = Response(body, meta())
    assert r.body == body
    assert "x" not in r
    assert r == body
    with pytest.raises(TypeError, match="not an object"):
        r["x"]
    with pytest.raises(TypeError):
        len(r)
    with pytest.raises(TypeError):
        iter(r)


def test_response_meta_repr() -> None:
    assert repr(meta()) == f"ResponseMeta(status=200, node={NODE!r}, duration=0.0123)"

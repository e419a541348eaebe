"""Classifying attempts, building answers and wording the final error
(``sturdysearch._core.outcome``)."""

from __future__ import annotations

import gzip
from typing import Any

import orjson
import pytest

from sturdysearch import errors
from sturdysearch._core.http1 import ResponseHead
from sturdysearch._core.outcome import build_response, decode_body, failure_of, final_error
from sturdysearch._core.retry import Failure

NODE = "https://es1:9200"
MAY_OR_MAY_NOT = "may or may not have been applied"


def head(status: int, headers: dict[str, str] | None = None) -> ResponseHead:
    if headers is None:
        headers = {"content-type": "application/json"}
    return ResponseHead(status, "X", "HTTP/1.1", headers)


def build(
    status: int,
    data: bytes,
    headers: dict[str, str] | None = None,
    *,
    ignore: frozenset[int] = frozenset(),
    head_request: bool = False,
) -> Any:
    return build_response(
        head(status, headers),
        data,
        node=NODE,
        duration=0.5,
        ignore=ignore,
        head_request=head_request,
    )


# -- build_response ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 299])
def test_2xx_json(status: int) -> None:
    r = build(status, b'{"acknowledged": true}')
    assert r.body == {"acknowledged": True}
    assert r.meta.status == status
    assert r.meta.node == NODE
    assert r.meta.duration == 0.5
    assert r.meta.headers["content-type"] == "application/json"


def test_2xx_without_content_type_is_parsed_as_json() -> None:
    assert build(200, b'{"a": 1}', {}).body == {"a": 1}
    with pytest.raises(errors.MalformedResponseError):
        build(200, b"plain", {})


@pytest.mark.parametrize(
    "ctype",
    [
        "application/json",
        "application/json; charset=UTF-8",
        "application/vnd.elasticsearch+json; compatible-with=8",
    ],
)
def test_json_content_types(ctype: str) -> None:
    assert build(200, b"[1]", {"content-type": ctype}).body == [1]


def test_2xx_text_body() -> None:
    r = build(200, b"green open idx \xe2\x9c\x93\n", {"content-type": "text/plain; charset=UTF-8"})
    assert r.body == "green open idx \u2713\n"


def test_2xx_text_empty_body() -> None:
    assert build(200, b"", {"content-type": "text/plain"}).body is None
    assert build(200, b"", {}).body is None


@pytest.mark.parametrize("data", [b"<html>", b'{"a": ', b"\x00\x01"])
def test_2xx_non_json_raises_malformed(data: bytes) -> None:
    with pytest.raises(errors.MalformedResponseError) as info:
        build(200, data)
    assert info.value.status == 200
    assert info.value.body_prefix == data


def test_a_callers_decoder_parses_2xx_json_only() -> None:
    seen: list[bytes] = []

    def decode(data: bytes) -> Any:
        seen.append(data)
        if data.startswith(b"<"):
            raise ValueError("not what was expected")
        return ("decoded", data)

    def built(status: int, data: bytes, **kw: Any) -> Any:
        return build_response(
            head(status), data, node=NODE, duration=0.5, head_request=False, decode=decode, **kw
        )

    assert built(200, b'{"a": 1}', ignore=frozenset()).body == ("decoded", b'{"a": 1}')
    assert built(200, b"", ignore=frozenset()).body is None  # nothing to decode
    with pytest.raises(errors.MalformedResponseError, match="not what was expected") as info:
        built(200, b"<html>", ignore=frozenset())
    assert info.value.body_prefix == b"<html>"
    # error answers are read as always, also when the status is ignored
    with pytest.raises(errors.BadRequestError):
        built(400, b'{"error": {"type": "x", "reason": "y"}}', ignore=frozenset())
    ignored = built(404, b'{"found": false}', ignore=frozenset({404}))
    assert ignored.body == {"found": False}
    assert seen == [b'{"a": 1}', b"<html>"]


def test_gzip_body_decoded() -> None:
    payload = orjson.dumps({"hits": {"hits": [{"_id": str(i)} for i in range(50)]}})
    r = build(
        200,
        gzip.compress(payload),
        {"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert r.body == orjson.loads(payload)


@pytest.mark.parametrize("encoding", ["gzip", "GZIP", "Gzip"])
def test_gzip_encoding_case_insensitive(encoding: str) -> None:
    h = head(200, {"content-encoding": encoding})
    assert decode_body(h, gzip.compress(b"{}"), NODE) == b"{}"


def test_gzip_error_body_decoded() -> None:
    data = gzip.compress(b'{"error": {"type": "t", "reason": "r"}, "status": 400}')
    with pytest.raises(errors.BadRequestError) as info:
        build(400, data, {"content-encoding": "gzip"})
    assert (info.value.error_type, info.value.reason) == ("t", "r")


@pytest.mark.parametrize("data", [b"not gzip at all", gzip.compress(b"{}")[:-4], b"\x1f\x8b"])
def test_bad_gzip_raises_malformed(data: bytes) -> None:
    with pytest.raises(errors.MalformedResponseError, match="could not be decompressed") as info:
        build(200, data, {"content-encoding": "gzip"})
    assert info.value.status == 200
    assert info.value.body_prefix == data[:512]


def test_identity_and_empty_gzip_untouched() -> None:
    assert decode_body(head(200, {}), b"raw", NODE) == b"raw"
    assert decode_body(head(200, {"content-encoding": "gzip"}), b"", NODE) == b""


@pytest.mark.parametrize(("status", "expected"), [(200, True), (204, True)])
def test_head_request_body_is_bool(status: int, expected: bool) -> None:
    assert build(status, b"", head_request=True).body is expected


def test_head_request_404_ignored_is_false() -> None:
    r = build(404, b"", head_request=True, ignore=frozenset({404}))
    assert r.body is False
    assert r.meta.status == 404


def test_head_request_404_not_ignored_raises() -> None:
    with pytest.raises(errors.NotFoundError):
        build(404, b"", head_request=True)


def test_ignore_returns_response_with_error_body() -> None:
    data = b'{"_index": "i", "_id": "1", "found": false}'
    r = build(404, data, ignore=frozenset({404}))
    assert r.meta.status == 404
    assert r.body == {"_index": "i", "_id": "1", "found": False}
    assert r["found"] is False


def test_ignore_with_html_body() -> None:
    r = build(503, b"<html>down</html>", {"content-type": "text/html"}, ignore=frozenset({503}))
    assert r.body == "<html>down</html>"


def test_ignore_only_listed_statuses() -> None:
    with pytest.raises(errors.ConflictError):
        build(409, b"{}", ignore=frozenset({404}))


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, errors.BadRequestError), (429, errors.TooManyRequestsError), (503, errors.ServerError)],
)
def test_error_statuses_raise_typed(status: int, cls: type[errors.ApiError]) -> None:
    with pytest.raises(cls) as info:
        build(status, b'{"error": {"type": "t", "reason": "why"}}', {"retry-after": "3"})
    assert info.value.node == NODE
    assert info.value.retry_after == 3.0


# -- failure_of --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "failure"),
    [
        (errors.TLSError("bad cert", node=NODE), Failure("tls", sent=False)),
        (errors.ConnectTimeout("slow", node=NODE), Failure("connect", sent=False)),
        (errors.ConnectionError("refused", node=NODE), Failure("connect", sent=False)),
        (
            errors.ConnectionError("reset", node=NODE, request_sent=True),
            Failure("io", sent=True),
        ),
        (errors.ReadTimeout("no data", node=NODE), Failure("io", sent=True)),
        (errors.MalformedResponseError("junk", node=NODE), Failure("io", sent=True)),
        (errors.ServerError(503), Failure("status", sent=True, status=503)),
        (
            errors.TooManyRequestsError(429, headers={"retry-after": "2"}),
            Failure("status", sent=True, status=429, retry_after=2.0),
        ),
        (errors.NotFoundError(404), Failure("status", sent=True, status=404)),
        (errors.DeadlineExceeded("late"), None),
        (errors.NoLiveNodesError("none"), None),
        (errors.TransportError("closed"), None),
        (errors.ConfigError("bad"), None),
        (errors.SerializationError("bad"), None),
    ],
)
def test_failure_of(exc: errors.SturdySearchError, failure: Failure | None) -> None:
    assert failure_of(exc) == failure


# -- final_error -------------------------------------------------------------------------------

SENT_FAILURES = [
    lambda: errors.ConnectionError("reset while reading", node=NODE, request_sent=True),
    lambda: errors.ReadTimeout("no data for 10 s", node=NODE),
    lambda: errors.MalformedResponseError("truncated", node=NODE, status=200),
]
UNSENT_FAILURES = [
    lambda: errors.ConnectionError("refused", node=NODE, request_sent=False),
    lambda: errors.ConnectTimeout("connect timed out", node=NODE),
    lambda: errors.TLSError("certificate expired", node=NODE),
    lambda: errors.DeadlineExceeded("deadline passed before connecting", node=NODE),
    lambda: errors.NoLiveNodesError("no live nodes"),
]


@pytest.mark.parametrize("make", SENT_FAILURES)
def test_final_error_warns_for_sent_non_idempotent(make: Any) -> None:
    exc = make()
    original = exc.message
    out = final_error(exc, idempotent=False, history=[])
    assert out is exc
    assert MAY_OR_MAY_NOT in str(out)
    assert str(out).startswith(original)
    assert str(out).endswith(f"(node {NODE})")
    assert out.args == (out.message,)
    assert "give the document an id" in str(out)


@pytest.mark.parametrize("make", SENT_FAILURES + UNSENT_FAILURES)
def test_final_error_no_warning_when_idempotent(make: Any) -> None:
    exc = make()
    text = str(exc)
    out = final_error(exc, idempotent=True, history=[])
    assert MAY_OR_MAY_NOT not in str(out)
    assert str(out) == text


@pytest.mark.parametrize("make", UNSENT_FAILURES)
def test_final_error_no_warning_when_not_sent(make: Any) -> None:
    exc = make()
    out = final_error(exc, idempotent=False, history=[])
    assert MAY_OR_MAY_NOT not in str(out)


@pytest.mark.parametrize("idempotent", [True, False])
def test_final_error_api_errors_untouched(idempotent: bool) -> None:
    exc = errors.ServerError(502, reason="bad gateway", node=NODE)
    text = str(exc)
    prior = errors.ConnectionError("refused", node=NODE)
    out = final_error(exc, idempotent=idempotent, history=[prior])
    assert out is exc
    assert str(out) == text


def test_final_error_attaches_history() -> None:
    first = errors.ConnectionError("refused", node="https://es2:9200")
    second = errors.ReadTimeout("slow", node="https://es3:9200")
    last = errors.ReadTimeout("slow again", node=NODE)
    out = final_error(last, idempotent=True, history=[first, second])
    assert out.errors == (first, second)  # type: ignore[attr-defined]


def test_final_error_keeps_existing_errors_without_history() -> None:
    exc = errors.ReadTimeout("slow", node=NODE, errors=[errors.ConnectionError("x")])
    out = final_error(exc, idempotent=True, history=[])
    assert len(out.errors) == 1  # type: ignore[attr-defined]

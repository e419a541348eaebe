"""The sans-IO HTTP/1.1 response parser and request encoder (``sturdysearch._core.http1``)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from sturdysearch._core.http1 import (
    MAX_HEAD_BYTES,
    ProtocolViolation,
    ResponseParser,
    encode_head_block,
    encode_request_head,
    parse_head,
)

# -- helpers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    status: int
    reason: str
    version: str
    headers: dict[str, str]
    body: bytes
    reusable: bool
    received: int


def run(chunks: list[bytes], *, head_request: bool = False, eof: bool = False) -> Result:
    """Feed ``chunks`` (then EOF if asked) and return what the parser made of them."""
    parser = ResponseParser(head_request=head_request)
    for chunk in chunks:
        parser.feed(chunk)
    if eof:
        parser.feed_eof()
    assert parser.done, "response not complete"
    assert parser.head is not None
    head = parser.head
    return Result(
        head.status,
        head.reason,
        head.http_version,
        dict(head.headers),
        parser.body(),
        parser.reusable,
        parser.received,
    )


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


# Every framing the parser supports, as (id, raw bytes, head_request, needs_eof, status, body,
# reusable).
CL = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"a": 123}\n'
CHUNKED = (
    b"HTTP/1.1 200 OK\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"\r\n"
    b'4;name=value;other="quoted"\r\nWiki\r\n'
    b"5\r\npedia\r\n"
    b"E ; ext\r\n in\r\n\r\nchunks.\r\n"
    b"0;last=1\r\n"
    b"X-Trailer: one\r\n"
    b"X-Other: two\r\n"
    b"\r\n"
)
CHUNKED_NO_TRAILER = (
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\na\r\n0123456789\r\n0\r\n\r\n"
)
CHUNKED_UPPER_HEX = (
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1A\r\n" + b"z" * 26 + b"\r\n0\r\n\r\n"
)
CLOSE_DELIMITED = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end"
CLOSE_DELIMITED_EMPTY = b"HTTP/1.1 200 OK\r\n\r\n"
INTERIM = (
    b"HTTP/1.1 100 Continue\r\n\r\n"
    b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
    b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}"
)
HEAD_RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\ncontent-type: application/json\r\n\r\n"
HEAD_CHUNKED = b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n"
NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"
NOT_MODIFIED = b"HTTP/1.1 304 Not Modified\r\ncontent-length: 99\r\n\r\n"
HTTP10_KEEPALIVE = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc"
HTTP10_PLAIN = b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc"
CL_CLOSE = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc"
ZERO_LENGTH = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
TE_AND_CL = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"

CASES = [
    pytest.param(CL, False, False, 200, b'{"a": 123}\n', True, id="content-length"),
    pytest.param(CHUNKED, False, False, 200, b"Wikipedia in\r\n\r\nchunks.", True, id="chunked"),
    pytest.param(CHUNKED_NO_TRAILER, False, False, 200, b"0123456789", True, id="chunked-plain"),
    pytest.param(CHUNKED_UPPER_HEX, False, False, 200, b"z" * 26, True, id="chunked-hex"),
    pytest.param(CLOSE_DELIMITED, False, True, 200, b"until the end", False, id="close-delimited"),
    pytest.param(CLOSE_DELIMITED_EMPTY, False, True, 200, b"", False, id="close-delimited-empty"),
    pytest.param(INTERIM, False, False, 201, b"{}", True, id="interim-1xx"),
    pytest.param(HEAD_RESPONSE, True, False, 200, b"", True, id="head"),
    pytest.param(HEAD_CHUNKED, True, False, 404, b"", True, id="head-chunked"),
    pytest.param(NO_CONTENT, False, False, 204, b"", True, id="204"),
    pytest.param(NOT_MODIFIED, False, False, 304, b"", True, id="304"),
    pytest.param(HTTP10_KEEPALIVE, False, False, 200, b"abc", True, id="http10-keepalive"),
    pytest.param(HTTP10_PLAIN, False, False, 200, b"abc", False, id="http10"),
    pytest.param(CL_CLOSE, False, False, 200, b"abc", False, id="connection-close"),
    pytest.param(ZERO_LENGTH, False, False, 200, b"", True, id="zero-length"),
    pytest.param(TE_AND_CL, False, False, 200, b"abc", True, id="te-overrides-cl"),
]


# -- framings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "head_request", "eof", "status", "body", "reusable"), CASES)
def test_framing_whole(
    raw: bytes, head_request: bool, eof: bool, status: int, body: bytes, reusable: bool
) -> None:
    result = run([raw], head_request=head_request, eof=eof)
    assert result.status == status
    assert result.body == body
    assert result.reusable is reusable
    assert result.received == len(raw)


@pytest.mark.parametrize(("raw", "head_request", "eof", "status", "body", "reusable"), CASES)
def test_byte_at_a_time_equals_whole(
    raw: bytes, head_request: bool, eof: bool, status: int, body: bytes, reusable: bool
) -> None:
    whole = run([raw], head_request=head_request, eof=eof)
    drip = run(bytewise(raw), head_request=head_request, eof=eof)
    assert drip == whole
    assert (drip.status, drip.body, drip.reusable) == (status, body, reusable)


@pytest.mark.parametrize(("raw", "head_request", "eof", "status", "body", "reusable"), CASES)
def test_every_two_way_split_equals_whole(
    raw: bytes, head_request: bool, eof: bool, status: int, body: bytes, reusable: bool
) -> None:
    whole = run([raw], head_request=head_request, eof=eof)
    for i in range(len(raw) + 1):
        assert run([raw[:i], raw[i:]], head_request=head_request, eof=eof) == whole, i


@pytest.mark.parametrize(("raw", "head_request", "eof", "status", "body", "reusable"), CASES)
def test_not_done_before_last_byte(
    raw: bytes, head_request: bool, eof: bool, status: int, body: bytes, reusable: bool
) -> None:
    parser = ResponseParser(head_request=head_request)
    parser.feed(raw[:-1])
    assert not parser.done
    parser.feed(raw[-1:])
    assert parser.done is (not eof)


@pytest.mark.parametrize(
    ("raw", "head_request"),
    [
        pytest.param(CL, False, id="content-length"),
        pytest.param(CHUNKED, False, id="chunked"),
        pytest.param(INTERIM, False, id="interim"),
        pytest.param(HEAD_RESPONSE, True, id="head"),
        pytest.param(NO_CONTENT, False, id="204"),
        pytest.param(NOT_MODIFIED, False, id="304"),
        pytest.param(HTTP10_KEEPALIVE, False, id="http10-keepalive"),
    ],
)
@pytest.mark.parametrize("extra", [b"H", b"HTTP/1.1 200 OK\r\n\r\n", b"\r\n"])
@pytest.mark.parametrize("mode", ["same-feed", "later-feed", "bytewise"])
def test_bytes_after_complete_response_make_it_not_reusable(
    raw: bytes, head_request: bool, extra: bytes, mode: str
) -> None:
    assert run([raw], head_request=head_request).reusable  # reusable without the extra bytes
    if mode == "same-feed":
        chunks = [raw + extra]
    elif mode == "later-feed":
        chunks = [raw, extra]
    else:
        chunks = bytewise(raw + extra)
    result = run(chunks, head_request=head_request)
    assert result.reusable is False
    # The response itself is not polluted by the extra bytes.
    clean = run([raw], head_request=head_request)
    assert (result.status, result.headers, result.body) == (clean.status, clean.headers, clean.body)


def test_empty_feed_after_done_keeps_reusable() -> None:
    parser = ResponseParser()
    parser.feed(CL)
    parser.feed(b"")
    assert parser.done and parser.reusable


def test_eof_after_done_is_ignored() -> None:
    parser = ResponseParser()
    parser.feed(CL)
    parser.feed_eof()
    assert parser.done and parser.reusable
    assert parser.body() == b'{"a": 123}\n'


def test_close_delimited_not_done_until_eof() -> None:
    parser = ResponseParser()
    parser.feed(CLOSE_DELIMITED)
    assert not parser.done
    assert parser.head is not None and parser.head.status == 200
    parser.feed(b" and more")
    assert not parser.done
    parser.feed_eof()
    assert parser.done and not parser.reusable
    assert parser.body() == b"until the end and more"


def test_chunked_trailers_not_in_body_or_headers() -> None:
    result = run([CHUNKED])
    assert "x-trailer" not in result.headers
    assert b"X-Trailer" not in result.body


def test_interim_heads_skipped_and_final_head_kept() -> None:
    result = run([INTERIM])
    assert result.status == 201
    assert result.reason == "Created"
    assert "link" not in result.headers


def test_interim_head_alone_is_not_a_response() -> None:
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert not parser.done
    assert parser.head is None


def test_interim_then_head_request() -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"
    result = run([raw], head_request=True)
    assert (result.status, result.body, result.reusable) == (200, b"", True)


def test_head_request_with_body_bytes_following_is_not_reusable() -> None:
    # A server that sends a body after a HEAD answer leaves bytes we would misread later.
    result = run([HEAD_RESPONSE + b"x" * 10], head_request=True)
    assert result.body == b""
    assert result.reusable is False


@pytest.mark.parametrize("status", [204, 304])
def test_bodiless_statuses_ignore_content_length_and_te(status: int) -> None:
    raw = (
        f"HTTP/1.1 {status} X\r\ncontent-length: 10\r\ntransfer-encoding: chunked\r\n\r\n".encode()
    )
    result = run([raw])
    assert (result.status, result.body, result.reusable) == (status, b"", True)


def test_large_content_length_body_in_many_pieces() -> None:
    body = bytes(range(256)) * 400
    raw = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body) + body
    pieces = [raw[i : i + 1000] for i in range(0, len(raw), 1000)]
    result = run(pieces)
    assert result.body == body
    assert result.reusable


def test_large_chunked_body() -> None:
    body = bytes(range(256)) * 100
    framed = b"".join(
        b"%x\r\n" % len(body[i : i + 777]) + body[i : i + 777] + b"\r\n"
        for i in range(0, len(body), 777)
    )
    raw = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + framed + b"0\r\n\r\n"
    assert run([raw]).body == body
    assert run([raw[i : i + 13] for i in range(0, len(raw), 13)]).body == body


# -- keep-alive --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "connection", "keep_alive"),
    [
        ("HTTP/1.1", None, True),
        ("HTTP/1.1", "keep-alive", True),
        ("HTTP/1.1", "close", False),
        ("HTTP/1.1", "Close", False),
        ("HTTP/1.1", "CLOSE", False),
        ("HTTP/1.1", "upgrade, close", False),
        ("HTTP/1.0", None, False),
        ("HTTP/1.0", "keep-alive", True),
        ("HTTP/1.0", "Keep-Alive", True),
        ("HTTP/1.0", "close", False),
    ],
)
def test_keep_alive_rules(version: str, connection: str | None, keep_alive: bool) -> None:
    conn = f"Connection: {connection}\r\n" if connection is not None else ""
    raw = f"{version} 200 OK\r\n{conn}Content-Length: 2\r\n\r\nok".encode()
    parser = ResponseParser()
    parser.feed(raw)
    assert parser.head is not None
    assert parser.head.keep_alive is keep_alive
    assert parser.reusable is keep_alive


def test_repeated_connection_headers_joined_and_close_wins() -> None:
    raw = b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    result = run([raw])
    assert result.headers["connection"] == "keep-alive, close"
    assert result.reusable is False


# -- parse_head --------------------------------------------------------------------------------


def test_parse_head_basics() -> None:
    head = parse_head(
        b"HTTP/1.1 404 Not Found Here\r\n"
        b"Content-Type: application/json; charset=UTF-8\r\n"
        b"X-Elastic-Product:   Elasticsearch  \r\n"
        b"Warning: 299 one\r\n"
        b"warning: 299 two\r\n"
        b"WARNING: 299 three\r\n"
        b"Empty:"
    )
    assert head.status == 404
    assert head.reason == "Not Found Here"
    assert head.http_version == "HTTP/1.1"
    assert head.headers == {
        "content-type": "application/json; charset=UTF-8",
        "x-elastic-product": "Elasticsearch",
        "warning": "299 one, 299 two, 299 three",
        "empty": "",
    }


def test_parse_head_without_reason() -> None:
    head = parse_head(b"HTTP/1.1 200")
    assert (head.status, head.reason) == (200, "")


def test_parse_head_value_with_colons_and_latin1() -> None:
    head = parse_head(b"HTTP/1.1 200 OK\r\nLocation: http://h:9200/x\r\nX-Name: caf\xe9")
    assert head.headers["location"] == "http://h:9200/x"
    assert head.headers["x-name"] == "café"


@pytest.mark.parametrize(
    "status_line",
    [
        b"",
        b"HTTP/1.1",
        b"HTTP/2 200 OK",
        b"HTTP/2.0 200 OK",
        b"ICY 200 OK",
        b"http/1.1 200 OK",
        b"<html><body>hello</body></html>",
        b"HTTP/1.1 abc OK",
        b"HTTP/1.1  200 OK",
        b"HTTP/1.1 99 Too Low",
        b"HTTP/1.1 1000 Too High",
        b"HTTP/1.1 -200 Negative",
        b"SSH-2.0-OpenSSH_9.6",
    ],
)
def test_bad_status_line(status_line: bytes) -> None:
    with pytest.raises(ProtocolViolation):
        parse_head(status_line)
    parser = ResponseParser()
    with pytest.raises(ProtocolViolation):
        parser.feed(status_line + b"\r\ncontent-length: 0\r\n\r\n")


@pytest.mark.parametrize(
    "line",
    [
        b"no colon here",
        b" folded: continuation",
        b"\tfolded: continuation",
        b"name : space before colon",
        b": no name",
        b"name\t: tab before colon",
    ],
)
def test_bad_header_line(line: bytes) -> None:
    with pytest.raises(ProtocolViolation, match="malformed header line"):
        parse_head(b"HTTP/1.1 200 OK\r\n" + line)
    with pytest.raises(ProtocolViolation, match="malformed header line"):
        ResponseParser().feed(b"HTTP/1.1 200 OK\r\n" + line + b"\r\ncontent-length: 0\r\n\r\n")


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("piece", [7, 4096, MAX_HEAD_BYTES + 1])
def test_oversized_head_in_pieces(piece: int) -> None:
    raw = b"HTTP/1.1 200 OK\r\n" + b"x-filler: " + b"a" * (MAX_HEAD_BYTES + 10)
    parser = ResponseParser()
    with pytest.raises(ProtocolViolation, match="larger than"):
        for i in range(0, len(raw), piece):
            parser.feed(raw[i : i + piece])


def test_head_just_under_limit_is_accepted() -> None:
    start = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nx-filler: "
    filler = b"a" * (MAX_HEAD_BYTES - len(start))
    raw = start + filler + b"\r\n\r\n"
    parser = ResponseParser()
    for i in range(0, len(raw), 8192):
        parser.feed(raw[i : i + 8192])
    assert parser.done
    assert parser.head is not None and len(parser.head.headers["x-filler"]) == len(filler)


def test_oversized_complete_head_in_one_feed_is_refused() -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nx-filler: "
        + b"a" * (MAX_HEAD_BYTES + 10)
        + b"\r\ncontent-length: 0\r\n\r\n"
    )
    with pytest.raises(ProtocolViolation):
        ResponseParser().feed(raw)


def _chunked(rest: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + rest


@pytest.mark.parametrize(
    "rest",
    [
        pytest.param(b"zz\r\n", id="not-hex"),
        pytest.param(b"\r\n", id="empty"),
        pytest.param(b"-5\r\nabcde\r\n", id="negative"),
        pytest.param(b";ext\r\n", id="only-extension"),
        pytest.param(b"3 4\r\nabc\r\n", id="space-inside"),
        pytest.param(b"g\r\n", id="g"),
    ],
)
@pytest.mark.parametrize("bytewise_feed", [False, True])
def test_bad_chunk_size(rest: bytes, bytewise_feed: bool) -> None:
    raw = _chunked(rest)
    parser = ResponseParser()
    with pytest.raises(ProtocolViolation, match="bad chunk size"):
        for chunk in bytewise(raw) if bytewise_feed else [raw]:
            parser.feed(chunk)


@pytest.mark.parametrize("size", [b"0x3", b"+3", b"0_3", b"-0"])
def test_non_hexdig_chunk_size_refused(size: bytes) -> None:
    with pytest.raises(ProtocolViolation):
        ResponseParser().feed(_chunked(size + b"\r\nabc\r\n0\r\n\r\n"))


@pytest.mark.parametrize("after", [b"XY", b"X\n", b"\n\r", b"abcd"])
def test_chunk_without_crlf(after: bytes) -> None:
    with pytest.raises(ProtocolViolation, match="not followed by CRLF"):
        ResponseParser().feed(_chunked(b"3\r\nabc" + after + b"0\r\n\r\n"))


def test_chunk_size_line_too_long() -> None:
    parser = ResponseParser()
    with pytest.raises(ProtocolViolation, match="chunk-size line too long"):
        parser.feed(_chunked(b"1" + b";" * 2000))


def test_trailer_section_too_large() -> None:
    parser = ResponseParser()
    with pytest.raises(ProtocolViolation, match="trailer section too large"):
        parser.feed(_chunked(b"0\r\nx-trailer: " + b"a" * (MAX_HEAD_BYTES + 10)))


def test_eof_before_any_byte() -> None:
    parser = ResponseParser()
    with pytest.raises(ProtocolViolation, match="before any response byte"):
        parser.feed_eof()
    assert parser.received == 0


@pytest.mark.parametrize(
    "partial", [b"H", b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 200 OK\r\nx: y\r\n\r"]
)
def test_eof_mid_head(partial: bytes) -> None:
    parser = ResponseParser()
    parser.feed(partial)
    with pytest.raises(ProtocolViolation, match="before a complete response head"):
        parser.feed_eof()
    assert parser.received == len(partial)


def test_eof_after_interim_head_only() -> None:
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 100 Continue\r\n\r\n")
    with pytest.raises(ProtocolViolation, match="before a complete response head"):
        parser.feed_eof()


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(CL[:-1], id="content-length"),
        pytest.param(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", id="content-length-none"),
        pytest.param(CHUNKED[:-2], id="chunked-trailer"),
        pytest.param(CHUNKED[:60], id="chunked-data"),
        pytest.param(_chunked(b"3\r\nabc"), id="chunked-crlf"),
        pytest.param(_chunked(b"3"), id="chunked-size"),
        pytest.param(_chunked(b""), id="chunked-nothing"),
    ],
)
def test_eof_mid_body(raw: bytes) -> None:
    parser = ResponseParser()
    parser.feed(raw)
    assert not parser.done
    with pytest.raises(ProtocolViolation, match="before the response body was complete"):
        parser.feed_eof()


@pytest.mark.parametrize(
    "encoding",
    ["gzip", "identity", "chunked, gzip", "deflate", "compress", "br", "chunkedx"],
)
def test_unsupported_transfer_encoding(encoding: str) -> None:
    raw = f"HTTP/1.1 200 OK\r\ntransfer-encoding: {encoding}\r\n\r\nabc".encode()
    with pytest.raises(ProtocolViolation, match="unsupported transfer-encoding"):
        ResponseParser().feed(raw)


@pytest.mark.parametrize("encoding", ["chunked", "Chunked", "CHUNKED", " chunked "])
def test_chunked_spelling(encoding: str) -> None:
    raw = f"HTTP/1.1 200 OK\r\ntransfer-encoding: {encoding}\r\n\r\n2\r\nok\r\n0\r\n\r\n".encode()
    assert run([raw]).body == b"ok"


def test_transfer_coding_before_chunked_refused() -> None:
    raw = b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    with pytest.raises(ProtocolViolation, match="unsupported transfer-encoding"):
        ResponseParser().feed(raw)


@pytest.mark.parametrize("length", ["-1", "abc", "3, 3", "", "1.5", "0x10", "3 3"])
def test_bad_content_length(length: str) -> None:
    raw = f"HTTP/1.1 200 OK\r\ncontent-length: {length}\r\n\r\nabc".encode()
    with pytest.raises(ProtocolViolation, match="bad content-length"):
        ResponseParser().feed(raw)


@pytest.mark.parametrize("length", ["+3", "0_3"])
def test_non_digit_content_length_refused(length: str) -> None:
    raw = f"HTTP/1.1 200 OK\r\ncontent-length: {length}\r\n\r\nabc".encode()
    with pytest.raises(ProtocolViolation):
        ResponseParser().feed(raw)


# -- received counter --------------------------------------------------------------------------


def test_received_counts_every_byte_until_done() -> None:
    parser = ResponseParser()
    assert parser.received == 0
    parser.feed(b"HTTP/1.1 200 OK\r\n")
    assert parser.received == 17
    parser.feed(b"")
    assert parser.received == 17
    parser.feed(b"content-length: 3\r\n\r\n")
    assert parser.received == 17 + 21
    parser.feed(b"ab")
    assert parser.received == 17 + 21 + 2
    parser.feed(b"c")
    assert parser.done
    assert parser.received == 41


def test_received_counts_interim_heads_and_whole_last_feed() -> None:
    parser = ResponseParser()
    parser.feed(INTERIM + b"trailing")
    assert parser.received == len(INTERIM) + len(b"trailing")


def test_received_counted_before_a_violation() -> None:
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\n")
    with pytest.raises(ProtocolViolation):
        parser.feed(b"broken\r\n\r\n")
    assert parser.received == len(b"HTTP/1.1 200 OK\r\nbroken\r\n\r\n")


# -- encode_request ----------------------------------------------------------------------------

FIXED = encode_head_block([("host", "es1:9200"), ("user-agent", "t")])


def encode_request(
    method: str, target: str, fixed: bytes, headers: dict[str, str] | None, body: bytes | None
) -> bytes:
    """The request as it goes on the wire: the head, then the body."""
    return encode_request_head(method, target, fixed, headers, body) + (body or b"")


def test_encode_head_block() -> None:
    assert FIXED == b"host: es1:9200\r\nuser-agent: t\r\n"
    assert encode_head_block([]) == b""


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE", "OPTIONS"])
def test_encode_without_body_has_no_content_length(method: str) -> None:
    data = encode_request(method, "/idx/_doc/1", FIXED, None, None)
    assert data == f"{method} /idx/_doc/1 HTTP/1.1\r\n".encode() + FIXED + b"\r\n"
    assert b"content-length" not in data.lower()


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_encode_write_without_body_sends_zero_length(method: str) -> None:
    data = encode_request(method, "/_refresh", FIXED, None, None)
    assert (
        data == f"{method} /_refresh HTTP/1.1\r\n".encode() + FIXED + b"content-length: 0\r\n\r\n"
    )


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
@pytest.mark.parametrize(
    "body", [b"", b"{}", b'{"query":{"match_all":{}}}', bytes(range(256)) * 10]
)
def test_encode_body_framed_by_content_length(method: str, body: bytes) -> None:
    data = encode_request(method, "/x", FIXED, {"content-type": "application/json"}, body)
    head, sep, rest = data.partition(b"\r\n\r\n")
    assert sep and rest == body
    lines = head.split(b"\r\n")
    assert lines[0] == f"{method} /x HTTP/1.1".encode()
    assert lines[-1] == b"content-length: %d" % len(body)
    assert b"content-type: application/json" in lines
    assert sum(1 for line in lines if line.lower().startswith(b"content-length:")) == 1


def test_encode_extra_headers_after_fixed_block() -> None:
    data = encode_request("GET", "/", FIXED, {"x-opaque-id": "abc", "accept": "text/plain"}, None)
    assert data == (
        b"GET / HTTP/1.1\r\nhost: es1:9200\r\nuser-agent: t\r\n"
        b"x-opaque-id: abc\r\naccept: text/plain\r\n\r\n"
    )


@pytest.mark.parametrize(
    "target",
    ["/x\r\nX-Injected: 1", "/x\nX-Injected: 1", "/x\rY", "/x\0y", "/_search?q=a\r\n\r\nGET /"],
)
def test_encode_refuses_line_breaks_in_target(target: str) -> None:
    with pytest.raises(ValueError, match="request target"):
        encode_request("GET", target, FIXED, None, None)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("x-opaque-id", "abc\r\nX-Injected: 1"),
        ("x-opaque-id", "abc\nX-Injected: 1"),
        ("x-opaque-id", "abc\rdef"),
        ("x-opaque-id", "abc\0def"),
        ("x-a\r\nx-b", "v"),
        ("x-a\n", "v"),
    ],
)
def test_encode_refuses_header_injection(name: str, value: str) -> None:
    with pytest.raises(ValueError, match="line break or NUL"):
        encode_request("GET", "/", FIXED, {name: value}, None)
    with pytest.raises(ValueError, match="line break or NUL"):
        encode_head_block([(name, value)])


@pytest.mark.parametrize("method", ["GET\r\nX-Injected: 1\r\n", "GET /evil HTTP/1.1\r\nX: y\r\n"])
def test_encode_refuses_line_breaks_in_method(method: str) -> None:
    with pytest.raises(ValueError):
        encode_request(method, "/", FIXED, None, None)


@pytest.mark.parametrize(
    "headers",
    [{"Content-Length": "0"}, {"content-length": "100"}, {"Transfer-Encoding": "chunked"}],
)
def test_encode_caller_framing_headers_do_not_duplicate_framing(headers: dict[str, str]) -> None:
    try:
        data = encode_request("POST", "/x", FIXED, headers, b'{"a":1}')
    except ValueError:
        return  # refusing the caller's framing header is an acceptable fix
    head = data.partition(b"\r\n\r\n")[0].lower().split(b"\r\n")
    framing = [h for h in head if h.startswith((b"content-length:", b"transfer-encoding:"))]
    assert framing == [b"content-length: 7"]


def test_encoded_request_round_trips_through_a_response_like_parse() -> None:
    # The head block parses as headers (the same grammar the parser enforces on responses).
    data = encode_request("PUT", "/i/_doc/1", FIXED, {"content-type": "application/json"}, b"{}")
    head = data.partition(b"\r\n\r\n")[0]
    status_like = b"HTTP/1.1 200 OK" + head[head.index(b"\r\n") :]
    parsed = parse_head(status_like)
    assert parsed.headers == {
        "host": "es1:9200",
        "user-agent": "t",
        "content-type": "application/json",
        "content-length": "2",
    }

"""Shared by the drivers: classify a finished attempt, build the answer, word the final error.

Keeping this here means the sync and async call loops differ only in how they wait.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

from sturdysearch._core.http1 import ProtocolViolation, ResponseHead, ResponseParser
from sturdysearch._core.responses import Response, ResponseMeta, decode_json_body, parse_error_body
from sturdysearch._core.retry import Failure
from sturdysearch.errors import (
    ApiError,
    ConnectionError,
    ConnectTimeout,
    DeadlineExceeded,
    MalformedResponseError,
    ProxyAuthenticationError,
    ReadTimeout,
    SturdySearchError,
    TLSError,
    TransportError,
)


def failure_of(exc: SturdySearchError) -> Failure | None:
    """Classify an attempt's exception for the retry policy; ``None`` means never retry."""
    if isinstance(exc, TLSError):
        return Failure("tls", sent=False)
    if isinstance(exc, ApiError):
        return Failure("status", sent=True, status=exc.status, retry_after=exc.retry_after)
    if isinstance(exc, (DeadlineExceeded, ProxyAuthenticationError)):
        return None  # a 407 comes back the same through the same proxy, whatever the node
    if isinstance(exc, ConnectionError):
        return Failure("io" if exc.request_sent else "connect", sent=exc.request_sent)
    if isinstance(exc, (ReadTimeout, MalformedResponseError)):
        return Failure("io", sent=True)
    return None


def connect_timeout_error(
    node: str, limit: float, *, by_deadline: bool, proxy: str | None = None
) -> SturdySearchError:
    """A connect that ran out of time: the call's deadline (not retried) or the connect
    timeout (retried elsewhere). ``proxy`` (its redacted URL) when it went through one: the
    connect then covers the proxy's answer to CONNECT too."""
    via = f" through the proxy {proxy}" if proxy is not None else ""
    if by_deadline:
        return DeadlineExceeded(f"the call's deadline passed while connecting{via}", node=node)
    what = "TCP + CONNECT + TLS handshake" if proxy is not None else "TCP + TLS handshake"
    return ConnectTimeout(f"connect ({what}){via} took longer than {limit:g} s", node=node)


def violation_error(
    exc: ProtocolViolation, parser: ResponseParser, node: str, *, cause: object = None
) -> SturdySearchError:
    """The answer broke HTTP/1.1 framing. Nothing received at all is a connection closed
    without answering (typically a stale keep-alive connection: an idempotent request may be
    resent); anything else is a malformed answer."""
    if parser.received == 0:
        reason = f": {cause}" if cause is not None else f": {exc}"
        return ConnectionError(
            f"the server closed the connection without answering{reason}",
            node=node,
            request_sent=True,
        )
    return MalformedResponseError(
        f"malformed or truncated response: {exc}",
        node=node,
        status=parser.head.status if parser.head else None,
        body_prefix=parser.body()[:512],
    )


def decode_body(head: ResponseHead, data: bytes, node: str) -> bytes:
    if data and head.headers.get("content-encoding", "").lower() == "gzip":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise MalformedResponseError(
                f"gzip-encoded response could not be decompressed: {exc}",
                node=node,
                status=head.status,
                body_prefix=data[:512],
            ) from None
    return data


def build_response(
    head: ResponseHead,
    data: bytes,
    *,
    node: str,
    duration: float,
    ignore: frozenset[int],
    head_request: bool,
    decode: Callable[[bytes], Any] | None = None,
) -> Response:
    """Turn a complete answer into a ``Response``, or raise its typed ``ApiError``.
    ``decode`` parses a 2xx JSON body instead of orjson (``RequestSpec.decode``)."""
    status = head.status
    data = decode_body(head, data, node)
    if 200 <= status < 300 or status in ignore:
        body: Any
        if head_request:
            body = 200 <= status < 300
        elif status >= 300:
            error = parse_error_body(status, head.headers, data, node)
            body = error.body
        elif _is_json(head):
            body = decode_json_body(status, data, node, decode)
        elif not data:
            body = None
        else:
            body = data.decode("utf-8", "replace")
        return Response(body, ResponseMeta(status, head.headers, node, duration))
    raise parse_error_body(status, head.headers, data, node)


def _is_json(head: ResponseHead) -> bool:
    ctype = head.headers.get("content-type")
    # No content type at all: the servers always send one, so try JSON (and fail loudly).
    return ctype is None or "json" in ctype


def final_error(
    exc: SturdySearchError, *, idempotent: bool, history: list[SturdySearchError]
) -> SturdySearchError:
    """The error the caller sees: the last attempt's, with earlier attempts attached and, for a
    non-idempotent request that may have arrived, a warning that the write may have happened."""
    if isinstance(exc, TransportError):
        if history:
            exc.errors = tuple(history)
        maybe_sent = isinstance(exc, (ReadTimeout, MalformedResponseError)) or (
            isinstance(exc, (ConnectionError, DeadlineExceeded)) and exc.request_sent
        )
        if not idempotent and maybe_sent:
            exc.message = (
                f"{exc.message}; the request may or may not have been applied by the server, and "
                "it was not resent because it is not idempotent (give the document an id to make "
                "a write safe to retry)"
            )
            exc.args = (exc.message,)
    return exc

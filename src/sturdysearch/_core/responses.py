"""From status and bytes to a parsed answer or a typed error.

Every non-2xx status raises (unless the caller listed it in ``ignore=``); the error carries the
server's ``error.type``, ``error.reason`` and ``root_cause`` where the body has them, and the first
bytes of the body when it is not JSON (an HTML page from a proxy or load balancer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson

from sturdysearch import errors

#: Status -> error class. Everything 5xx is ``ServerError``; any other unlisted non-2xx is the
#: plain ``ApiError``.
STATUS_ERRORS: Mapping[int, type[errors.ApiError]] = {
    400: errors.BadRequestError,
    401: errors.AuthenticationError,
    403: errors.AuthorizationError,
    404: errors.NotFoundError,
    409: errors.ConflictError,
    413: errors.PayloadTooLargeError,
    429: errors.TooManyRequestsError,
}

#: How much of a non-JSON body an error keeps.
BODY_PREFIX = 512


def error_class(status: int) -> type[errors.ApiError]:
    if status >= 500:
        return errors.ServerError
    return STATUS_ERRORS.get(status, errors.ApiError)


class ResponseMeta:
    """What came with the body: status, headers (lower-case names), node and duration."""

    __slots__ = ("duration", "headers", "node", "status")

    def __init__(self, status: int, headers: Mapping[str, str], node: str, duration: float) -> None:
        self.status = status
        self.headers = headers
        self.node = node
        self.duration = duration

    def __repr__(self) -> str:
        return (
            f"ResponseMeta(status={self.status}, node={self.node!r}, duration={self.duration:.4f})"
        )


class Response(Mapping[str, Any]):
    """A parsed JSON object answer: read it like a dict; ``.body`` is the dict itself and
    ``.meta`` the :class:`ResponseMeta`.

    For answers that are not JSON objects (``_cat`` text, a list) ``.body`` holds them as they are
    and mapping access raises ``TypeError``.
    """

    __slots__ = ("body", "meta")

    def __init__(self, body: Any, meta: ResponseMeta) -> None:
        self.body = body
        self.meta = meta

    def _mapping(self) -> dict[str, Any]:
        if not isinstance(self.body, dict):
            raise TypeError(f"this response's body is a {type(self.body).__name__}, not an object")
        return self.body

    def __getitem__(self, key: str) -> Any:
        return self._mapping()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())

    def __contains__(self, key: object) -> bool:
        return isinstance(self.body, dict) and key in self.body

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Response):
            return bool(self.body == other.body)
        return bool(self.body == other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Response({self.body!r})"


def parse_error_body(
    status: int,
    headers: Mapping[str, str],
    data: bytes,
    node: str,
) -> errors.ApiError:
    """Build the typed error for a non-2xx answer."""
    cls = error_class(status)
    body: Any = None
    error_type: str | None = None
    reason: str | None = None
    root_cause: list[Mapping[str, Any]] = []
    if data:
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            body = data[:BODY_PREFIX].decode("utf-8", "replace")
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            error_type = _str_or_none(error.get("type"))
            reason = _str_or_none(error.get("reason"))
            causes = error.get("root_cause")
            if isinstance(causes, list):
                root_cause = [c for c in causes if isinstance(c, dict)]
            if reason is None and root_cause:
                reason = _str_or_none(root_cause[0].get("reason"))
        elif isinstance(error, str):
            # Old-style and some proxy answers: {"error": "message", "status": 4xx}
            reason = error
        elif isinstance(body.get("message") or body.get("Message"), str):
            # AWS's own answers (a SigV4 signature refused, an IAM policy denying the call):
            # {"message": "The request signature we calculated does not match ..."}
            reason = body.get("message") or body.get("Message")
        elif status == 404 and (body.get("found") is False or body.get("result") == "not_found"):
            error_type = "document_missing"
            reason = f"document {body.get('_id')!r} not found in index {body.get('_index')!r}"
    return cls(
        status,
        error_type=error_type,
        reason=reason,
        root_cause=root_cause,
        body=body,
        node=node,
        headers=headers,
    )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def decode_json_body(
    status: int, data: bytes, node: str, decode: Callable[[bytes], Any] | None = None
) -> Any:
    """Parse a 2xx body (with ``decode`` instead of ``orjson.loads`` if given); a non-JSON one
    raises ``MalformedResponseError`` with its first bytes."""
    if not data:
        return None
    try:
        return orjson.loads(data) if decode is None else decode(data)
    except ValueError as exc:  # orjson.JSONDecodeError is one
        raise errors.MalformedResponseError(
            f"the server answered {status} with a body that is not JSON ({exc}); first bytes: "
            f"{data[:200]!r}",
            node=node,
            status=status,
            body_prefix=data[:BODY_PREFIX],
        ) from None

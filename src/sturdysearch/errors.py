"""Every error sturdysearch raises, in one tree.

::

    SturdySearchError
    ├── ConfigError              bad client configuration, raised at construction (also ValueError)
    ├── SerializationError       a body or document that cannot be turned into JSON (also TypeError)
    ├── DeadLetterError          the bulk indexer could not write its dead-letter file (also OSError)
    ├── BulkAbortedError         a bulk load stopped: a failure that every document would meet
    ├── UnsupportedApiError      the connected server's flavor or version has no such API; raised
    │                            before anything is sent
    ├── TransportError           could not get a usable answer from the cluster
    │   ├── ConnectionError          refused, reset, or closed; ``.request_sent`` says whether the
    │   │   │                        request may have reached the server
    │   │   ├── ConnectTimeout       TCP connect or TLS handshake did not finish in time
    │   │   ├── TLSError             certificate or handshake failure (never retried)
    │   │   └── ProxyError           the HTTP proxy could not be reached or refused the tunnel
    │   │       └── ProxyAuthenticationError  the proxy answered 407 (never retried)
    │   ├── ReadTimeout              the server stopped sending (response head, or between bytes)
    │   ├── DeadlineExceeded         the call's overall deadline passed (attempts, waits, backoff)
    │   ├── NoLiveNodesError         no node could be tried within the deadline
    │   └── MalformedResponseError   the answer could not be parsed (truncated, not HTTP, bad JSON)
    └── ApiError                 the cluster answered with a non-2xx status
        ├── BadRequestError          400
        ├── AuthenticationError      401
        ├── AuthorizationError       403
        ├── NotFoundError            404
        ├── ConflictError            409
        ├── PayloadTooLargeError     413
        ├── TooManyRequestsError     429
        ├── ServerError              5xx
        └── IncompleteResultsError   a 2xx search page from which shards are missing (failed or
                                     timed out): reading on would silently skip documents

"Could not reach the cluster" (``TransportError``) is kept apart from "the cluster said no"
(``ApiError``): the first is about the network and the nodes, the second about the request.

Messages never contain credentials: the node is shown as ``scheme://host:port`` only, and the
request's headers are not part of any error. Every exception is picklable, so it survives
``multiprocessing`` and ``concurrent.futures`` boundaries.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
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


class SturdySearchError(Exception):
    """Base of every error raised by sturdysearch."""


class ConfigError(SturdySearchError, ValueError):
    """The client was configured in a way that would fail or be unsafe later; the message says
    which option and how to fix it."""


class SerializationError(SturdySearchError, TypeError):
    """A body or document could not be serialized to JSON.

    ``path`` names the offending field (``body["query"]["terms"]["tags"]``) and ``type_name`` its
    Python type, so the caller can find it without bisecting the document.
    """

    def __init__(self, message: str, *, path: str = "", type_name: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.type_name = type_name

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, {"path": self.path, "type_name": self.type_name}))


class DeadLetterError(SturdySearchError, OSError):
    """The bulk indexer could not write its dead-letter file (disk full, permissions, file
    removed). The indexer stops taking documents rather than lose the failed ones: ``records``
    holds the dead-letter lines (bytes, JSON) that were not written, ``path`` the file, and
    ``__cause__`` the ``OSError``. Save ``records`` elsewhere, fix the cause, then replay them.
    """

    def __init__(self, message: str, *, path: str = "", records: Sequence[bytes] = ()) -> None:
        super().__init__(message)
        self.path = path
        self.records: tuple[bytes, ...] = tuple(records)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


class BulkAbortedError(SturdySearchError):
    """A bulk load stopped because of a failure that every document would meet: no node
    answered for ``abort_after`` seconds, the credentials were refused (401/403), or the target
    index is invalid, missing (with auto-create off), closed or blocked read-only. Dead-lettering
    the rest of the stream one document at a time would only fill the dead-letter file with the
    same reason, so the indexer takes nothing more and raises this instead, from the adding
    method that came next and from ``close()``.

    ``reason`` says what to fix; ``cause`` (also ``__cause__``) is the failure itself (the
    ``ApiError``, ``TransportError`` or, for a per-document answer, an ``ApiError`` built from
    it); ``dead_letter`` is the dead-letter file, which holds the documents that were buffered
    or in flight (each once: replay it when the cause is fixed); ``stats`` is the indexer's
    :class:`~sturdysearch.BulkStats`, final once ``close()`` returned (or the ``with`` block
    ended): ``added == succeeded + dead_lettered``.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str = "",
        cause: BaseException | None = None,
        stats: Any = None,
        dead_letter: str = "",
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.cause = cause
        self.stats = stats
        self.dead_letter = dead_letter
        self.__cause__ = cause

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, {}), dict(self.__dict__))

    def __setstate__(self, state: dict[str, Any] | None) -> None:
        self.__dict__.update(state or {})
        self.__cause__ = self.__dict__.get("cause")


class UnsupportedApiError(SturdySearchError):
    """The server this client talks to has no such API (another flavor's, or another version's),
    so the call was refused before sending. The message names the flavor, the version and the
    nearest equivalent where one exists."""


class TransportError(SturdySearchError):
    """No usable answer came back from the cluster.

    ``node`` is the node's redacted base URL (``http://10.0.0.1:9200``) or ``None`` when no node
    was involved; ``errors`` holds the earlier failures of a retried call, oldest first.
    """

    def __init__(
        self,
        message: str,
        *,
        node: str | None = None,
        errors: Sequence[BaseException] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.node = node
        self.errors: tuple[BaseException, ...] = tuple(errors)

    def __str__(self) -> str:
        if self.node:
            return f"{self.message} (node {self.node})"
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


class ConnectionError(TransportError, builtins.ConnectionError):
    """The connection failed.

    ``request_sent`` is ``False`` when the request certainly never reached the server (refused,
    or failed before a byte was written), so resending it anywhere is safe; ``True`` when some or
    all of it may have been delivered, so only an idempotent request may be resent.
    """

    def __init__(
        self,
        message: str,
        *,
        node: str | None = None,
        errors: Sequence[BaseException] = (),
        request_sent: bool = False,
    ) -> None:
        super().__init__(message, node=node, errors=errors)
        self.request_sent = request_sent


class ConnectTimeout(ConnectionError, builtins.TimeoutError):
    """The TCP connect or the TLS handshake took longer than ``connect_timeout``."""


class TLSError(ConnectionError):
    """TLS failed: certificate not trusted, expired, issued for another host, fingerprint
    mismatch, or the handshake itself. The message says which and how to fix it."""


class ProxyError(ConnectionError):
    """The HTTP proxy (``proxy=``, or ``proxy_from_env=True``) could not be reached, or it
    refused to open a tunnel to the node (``status`` is its answer: 403, 502...) or answered
    with something that is not HTTP. Nothing reached the node (``request_sent`` is false)."""

    def __init__(
        self,
        message: str,
        *,
        node: str | None = None,
        errors: Sequence[BaseException] = (),
        request_sent: bool = False,
        status: int | None = None,
    ) -> None:
        super().__init__(message, node=node, errors=errors, request_sent=request_sent)
        self.status = status


class ProxyAuthenticationError(ProxyError):
    """The proxy answered 407 Proxy Authentication Required: the user and password in the proxy
    URL are missing or wrong. Not retried, and the node is not blamed for it: every attempt
    would go through the same proxy with the same credentials."""


class ReadTimeout(TransportError, builtins.TimeoutError):
    """The server did not send the response head, or paused between bytes, for longer than
    ``read_timeout``. The request was sent, so it may have taken effect."""


class DeadlineExceeded(TransportError, builtins.TimeoutError):
    """The call's overall deadline passed. It covers waiting for a pooled connection, every
    attempt and every backoff; whatever was in flight was abandoned and its connection closed.
    ``request_sent`` says whether the abandoned attempt may have reached the server;
    ``unanswered`` that it had been sent and not a byte of its answer had arrived."""

    def __init__(
        self,
        message: str,
        *,
        node: str | None = None,
        errors: Sequence[BaseException] = (),
        request_sent: bool = False,
        unanswered: bool = False,
    ) -> None:
        super().__init__(message, node=node, errors=errors)
        self.request_sent = request_sent
        self.unanswered = unanswered


class NoLiveNodesError(TransportError):
    """No node could be tried: every node is marked dead and none answered a probe in time.

    ``next_probe_in`` is how many seconds remain until the next scheduled probe (``None`` when
    one is running now): a caller looping on failures can wait that long instead of asking
    again at once, since no call can succeed before that probe does.
    """

    def __init__(
        self,
        message: str,
        *,
        node: str | None = None,
        errors: Sequence[BaseException] = (),
        next_probe_in: float | None = None,
    ) -> None:
        super().__init__(message, node=node, errors=errors)
        self.next_probe_in = next_probe_in


class MalformedResponseError(TransportError):
    """The server's answer could not be used: truncated, not HTTP/1.1, or a 2xx whose body is not
    the JSON it should be. ``status`` and ``body_prefix`` show what arrived."""

    def __init__(
        self,
        message: str,
        *,
        node: str | None = None,
        errors: Sequence[BaseException] = (),
        status: int | None = None,
        body_prefix: bytes = b"",
    ) -> None:
        super().__init__(message, node=node, errors=errors)
        self.status = status
        self.body_prefix = body_prefix


class ApiError(SturdySearchError):
    """The cluster answered with a non-2xx status.

    Attributes: ``status`` (int), ``error_type`` (the server's ``error.type``, e.g.
    ``version_conflict_engine_exception``, or ``None``), ``reason`` (``error.reason``),
    ``root_cause`` (list of the server's root causes), ``body`` (the parsed body, or the raw text
    of a non-JSON body), ``node`` (redacted base URL) and ``headers`` (response headers).
    """

    def __init__(
        self,
        status: int,
        *,
        error_type: str | None = None,
        reason: str | None = None,
        root_cause: Sequence[Mapping[str, Any]] = (),
        body: Any = None,
        node: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.error_type = error_type
        self.reason = reason
        self.root_cause = list(root_cause)
        self.body = body
        self.node = node
        self.headers = {k.lower(): v for k, v in (headers or {}).items()}
        self.credentials: str | None = None
        """For a 401/403: which credentials the request carried, secret redacted (set by the
        transport: an expired API key is then named, not just "unable to authenticate")."""
        super().__init__(self._message())

    def sent_with(self, credentials: str) -> None:
        """Record which (redacted) credentials the refused request carried, in the message."""
        self.credentials = credentials
        self.args = (self._message(),)

    def _message(self) -> str:
        what = self.error_type or "error"
        text = f"{self.status} {what}"
        if self.reason:
            text += f": {self.reason}"
        elif isinstance(self.body, str) and self.body:
            text += f": {self.body[:200]!r}"
        cause = self.cause
        if cause is not None:
            text += f"; caused by {cause[0]}: {cause[1]}"
        if self.node:
            text += f" (node {self.node})"
        if self.credentials:
            text += f"; sent with {self.credentials}"
        return text

    @property
    def failed_shards(self) -> list[dict[str, Any]]:
        """The shard failures of a search phase error (``error.failed_shards``), each with its
        ``index``, ``shard`` and ``reason``; empty for other errors."""
        error = self.body.get("error") if isinstance(self.body, dict) else None
        shards = error.get("failed_shards") if isinstance(error, dict) else None
        return [s for s in shards if isinstance(s, dict)] if isinstance(shards, list) else []

    @property
    def cause(self) -> tuple[str, str] | None:
        """``(type, reason)`` of what actually went wrong, when the top-level error only says
        that something did: the first failed shard's reason of a search phase error ("all
        shards failed"), else the first root cause that differs from the error itself. The
        message carries it, as the peers' messages do."""
        candidates: list[Any] = [s.get("reason") for s in self.failed_shards]
        candidates += self.root_cause
        for item in candidates:
            if not isinstance(item, dict):
                continue
            kind, why = item.get("type"), item.get("reason")
            if isinstance(why, str) and why and (kind, why) != (self.error_type, self.reason):
                return (str(kind or "error"), why)
        return None

    @property
    def retry_after(self) -> float | None:
        """The server's ``Retry-After`` in seconds (delta-seconds form only), or ``None``."""
        value = self.headers.get("retry-after")
        if value is None:
            return None
        try:
            seconds = float(value)
        except ValueError:
            return None
        return seconds if seconds >= 0 else None

    def __reduce__(self) -> tuple[Any, ...]:
        kwargs = {
            "error_type": self.error_type,
            "reason": self.reason,
            "root_cause": self.root_cause,
            "body": self.body,
            "node": self.node,
            "headers": self.headers,
        }
        return (_rebuild_api, (type(self), self.status, kwargs))


class BadRequestError(ApiError):
    """400: the request is wrong (query syntax, mapping violation, bad parameter)."""


class AuthenticationError(ApiError):
    """401: credentials missing or wrong."""


class AuthorizationError(ApiError):
    """403: authenticated, but not allowed (also: index blocked read-only, e.g. disk full)."""


class NotFoundError(ApiError):
    """404: index, document or endpoint does not exist."""


class ConflictError(ApiError):
    """409: version conflict (``create`` on an existing id, stale ``if_seq_no``)."""


class PayloadTooLargeError(ApiError):
    """413: the body exceeds the server's ``http.max_content_length``."""


class TooManyRequestsError(ApiError):
    """429: the cluster is overloaded or a circuit breaker tripped; back off and retry."""


class ServerError(ApiError):
    """5xx: the server, or a proxy in front of it, failed."""


class IncompleteResultsError(ApiError):
    """The server answered 2xx, but some shards failed or timed out, so the page lacks their
    documents (``status`` is the 2xx; ``error_type`` and ``reason`` are the first shard
    failure's). ``scan`` raises it instead of carrying on with holes in the results."""


def _rebuild(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    obj = cls.__new__(cls)
    obj.args = args
    obj.__dict__.update(state)
    return obj


def _rebuild_api(cls: type[ApiError], status: int, kwargs: dict[str, Any]) -> ApiError:
    return cls(status, **kwargs)

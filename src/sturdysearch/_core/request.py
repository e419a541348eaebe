"""The request model: what to send, and whether it is safe to send twice."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

from sturdysearch._core.retry import RetryPolicy

if TYPE_CHECKING:
    from sturdysearch._core.auth import Auth
    from sturdysearch._core.observe import BatchScope

_PATH_SAFE_INDEX = ",*"

#: Methods whose effect does not depend on how many times they arrive (RFC 9110 section 9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class RequestSpec(NamedTuple):
    """One logical call, before a node is chosen. Immutable; ``spec._replace(...)`` makes a
    changed copy.

    ``idempotent`` decides whether the request may be sent again once its bytes may have reached
    a server. It is the method's default unless the API layer knows better: ``POST _search`` is a
    read (idempotent), ``POST index/_doc`` without an id creates a new document each time (not).

    A named tuple rather than a frozen dataclass because every call builds one: a frozen
    dataclass's ``__init__`` sets each of its 13 fields through ``object.__setattr__`` (1.5 us
    per spec measured here), a named tuple is made in one ``tuple.__new__`` (0.45 us).
    """

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    body: bytes | None = None
    headers: Mapping[str, str] | None = None
    idempotent: bool = False
    ignore: frozenset[int] = frozenset()
    timeout: float | None = None
    long_running: bool = False
    content_type: str = "application/json"
    retry: RetryPolicy | None = None
    """This call's retry policy instead of the client's; a caller that owns retries itself
    (the bulk indexer re-queues failed items) passes ``RetryPolicy(max_attempts=1)``."""
    on_send: Callable[[], None] | None = None
    """Called by the transport just before each attempt writes its request, once it has a
    connection. The threaded bulk indexer wakes its producer here rather than earlier: a
    producer woken earlier takes the GIL while this thread still has to get a connection and
    send, and this thread then waits for the interpreter's switch interval (5 ms) with the
    server idle. (The asyncio bulk indexer has no use for it: its producer and senders share
    one thread.)"""
    decode: Callable[[bytes], Any] | None = None
    """Parses a 2xx JSON answer instead of ``orjson.loads`` (it raises ``ValueError`` for
    what is not JSON, which the transport reports as ``MalformedResponseError``, as usual).
    The bulk indexers recognise an all-success answer from its bytes with it
    (``bulk.answer.decode_answer``) instead of building a dict per item."""
    parent: BatchScope | None = None
    """The bulk batch this request sends, for the instruments (a batch span is the parent of
    its request's span)."""
    auth: Auth | None = None
    """This call's credentials instead of the client's (``client.options(auth=...)``)."""

    @property
    def target(self) -> str:
        """Path plus encoded query string."""
        if not self.params:
            return self.path
        query = encode_params(self.params)
        return f"{self.path}?{query}" if query else self.path


def default_idempotent(method: str) -> bool:
    return method.upper() in IDEMPOTENT_METHODS


def param_value(value: Any) -> str:
    """Render a query parameter value as the servers expect: booleans lower-case, lists
    comma-joined."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(param_value(v) for v in value)
    return str(value)


def encode_params(params: Mapping[str, Any]) -> str:
    parts = []
    for key, value in params.items():
        if value is None:
            continue
        parts.append(f"{quote(key, safe='')}={quote(param_value(value), safe=',*')}")
    return "&".join(parts)


#: Index names that need no percent-encoding (the common case, answered without ``quote``).
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9._*,-]+")


def index_segment(index: str | Iterable[str]) -> str:
    """Encode an index name, pattern or list of them as one path segment."""
    if type(index) is str and _PLAIN_SEGMENT.fullmatch(index):
        return index
    names = [index] if isinstance(index, str) else list(index)
    if not names or any(not isinstance(n, str) or not n for n in names):
        raise ValueError(f"index must be a non-empty name or list of names, got {index!r}")
    return quote(",".join(names), safe=_PATH_SAFE_INDEX)


def id_segment(doc_id: Any) -> str:
    """Encode a document id as one path segment (``/`` and ``?`` included)."""
    if doc_id is None:
        raise ValueError("id must not be None (omit it where the API allows no id)")
    text = str(doc_id)
    if not text:
        raise ValueError("a document id cannot be empty")
    return quote(text, safe="")

"""What to write instead: the keywords of elasticsearch-py and opensearch-py that sturdysearch
spells differently, each with its replacement.

Code moved over from the peers calls ``Client(http_auth=...)`` or ``search(request_timeout=...)``;
Python's own answer, ``TypeError: got an unexpected keyword argument``, says what is wrong but not
what is right. :func:`hint_peer_keywords` makes the clients answer with the replacement. The
signatures stay exact (``inspect.signature``, ``help()`` and mypy see the real parameters): the
hint is looked up only after Python refused the call.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sturdysearch.errors import ConfigError

_TIMEOUT = "timeout= (this call's deadline in seconds, retries included)"
_RETRY = "retry=RetryPolicy(max_attempts=..., retry_statuses=...)"
_PROXY = (
    "proxy='http://[user:password@]host:port' (one proxy for every node; no_proxy=[...] to "
    "bypass it), or proxy_from_env=True"
)
_TYPES = "mapping types are gone since Elasticsearch 7 / OpenSearch 2: drop it (typeless paths)"

#: Constructor keywords of Elasticsearch(...), OpenSearch(...) and elastic-transport.
CONSTRUCTOR: Mapping[str, str] = {
    "http_auth": "basic_auth=(user, password)",
    "verify_certs": (
        "nothing: verification is always on; trust the cluster's CA with ca_certs=, pin it with "
        "ssl_assert_fingerprint=, or, if you must, dangerously_skip_tls_verify=True"
    ),
    "ssl_show_warn": "nothing: skipping verification always warns (dangerously_skip_tls_verify=)",
    "ssl_context": "ca_certs=, ssl_assert_fingerprint=, client_cert=/client_key=",
    "ssl_version": "nothing: TLS 1.2 or later is always required",
    "ssl_assert_hostname": "nothing: the host name is always checked",
    "ca_cert": "ca_certs=",
    "client_cert_file": "client_cert=",
    "use_ssl": "an https:// URL",
    "scheme": "the scheme in the node URL (https://host:9200)",
    "port": "the port in the node URL (https://host:9200)",
    "host": "the node URL as the first argument: Client('https://host:9200')",
    "request_timeout": "timeout= (the per-call deadline, retries included); read_timeout= bounds one socket read",
    "max_retries": _RETRY,
    "retry_on_timeout": _RETRY + " (timeouts are retried for idempotent calls by default)",
    "retry_on_status": _RETRY,
    "sniffer_timeout": "sniff_interval=",
    "sniff_timeout": "sniff_timeout= (seconds)",
    "sniff_before_requests": "sniff_on_start=True",
    "sniff_on_connection_fail": "sniff_on_node_failure=True",
    "min_delay_between_sniffing": "sniff_interval=",
    "maxsize": "connections_per_node=",
    "connections_per_node": "connections_per_node=",
    "pool_maxsize": "connections_per_node=",
    "dead_node_backoff_factor": "probe_backoff_base=",
    "max_dead_node_backoff": "probe_backoff_cap=",
    "node_class": "nothing: sturdysearch has one HTTP layer of its own",
    "connection_class": "nothing: sturdysearch has one HTTP layer of its own",
    "transport_class": "nothing: sturdysearch has one HTTP layer of its own",
    "serializer": "nothing: bodies are serialized with orjson, NaN and cycles refused",
    "serializers": "nothing: bodies are serialized with orjson, NaN and cycles refused",
    "meta_header": "nothing: no client metadata header is sent",
    "opaque_id": "headers={'X-Opaque-Id': ...}",
    "randomize_hosts": "nothing: calls go to the least busy live node",
    "randomize_nodes_in_pool": "nothing: calls go to the least busy live node",
    "http_compress": "http_compress=",
    "bearer_auth": "bearer_auth=",
    "proxies": _PROXY,
    "proxy_url": _PROXY,
    "http_proxy": _PROXY,
    "https_proxy": _PROXY,
    "proxy_headers": "proxy='http://user:password@host:port' (credentials go in the URL)",
    "trust_env": "proxy_from_env=True (reads HTTPS_PROXY, HTTP_PROXY and NO_PROXY)",
}

#: Keywords of the peers' API methods (any method).
METHOD: Mapping[str, str] = {
    "request_timeout": _TIMEOUT,
    "doc_type": _TYPES,
    "type": _TYPES,
    "filter_path": "params={'filter_path': ...}",
    "pretty": "params={'pretty': 'true'}",
    "human": "params={'human': 'true'}",
    "error_trace": "params={'error_trace': 'true'}",
    "master_timeout": "params={'master_timeout': ...} (or cluster_manager_timeout= on OpenSearch)",
}

#: Keywords that exist on some methods of the peers, by method name.
PER_METHOD: Mapping[str, Mapping[str, str]] = {
    "index": {"body": "document= (the document itself)"},
    "create": {"body": "document= (the document itself)"},
    "bulk": {"body": "operations=[action, source, ...]", "actions": "operations="},
    "msearch": {"body": "searches=[header, body, ...]"},
    "update": {"body": "doc=, script=, upsert= (the update's fields by name)"},
    "exists": {"body": "nothing: exists takes index= and id="},
}

#: Keywords of the peers' bulk helpers (helpers.bulk, streaming_bulk, parallel_bulk), for the
#: bulk indexers' constructors.
BULK: Mapping[str, str] = {
    "chunk_size": "max_actions=",
    "max_chunk_bytes": "max_bytes=",
    "thread_count": "workers=",
    "queue_size": "max_pending_bytes=",
    "max_retries": "max_attempts=",
    "initial_backoff": "backoff_base=",
    "max_backoff": "backoff_cap=",
    "raise_on_error": "nothing: failed documents go to the dead-letter file (dead_letter=); check stats",
    "raise_on_exception": "nothing: failed documents go to the dead-letter file; check stats",
    "stats_only": "nothing: .stats counts every outcome",
    "yield_ok": "on_success=",
    "request_timeout": "request_timeout= (seconds) for one _bulk request; delivery_timeout= per document",
}

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)


def hint_for(method: str, keyword: str, owner: str = "") -> str | None:
    """The replacement for ``keyword`` on ``method`` (``__init__`` for the constructor) of
    class ``owner``."""
    if method == "__init__":
        return (BULK if "Bulk" in owner else CONSTRUCTOR).get(keyword)
    return PER_METHOD.get(method, {}).get(keyword) or METHOD.get(keyword)


def _unexpected(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[str]:
    """The keywords ``fn`` does not take, or ``[]`` when the call binds (the TypeError came from
    inside ``fn``, not from its signature)."""
    signature = inspect.signature(fn)
    try:
        signature.bind(*args, **kwargs)
    except TypeError:
        return [k for k in kwargs if k not in signature.parameters]
    return []


def _phrase(replacement: str) -> str:
    if replacement.startswith("nothing: "):
        return replacement[len("nothing: ") :]
    return f"use {replacement}"


def _message(name: str, owner: str, unknown: list[str], original: TypeError) -> str:
    parts = []
    for keyword in unknown:
        replacement = hint_for(name, keyword, owner)
        if replacement is not None:
            parts.append(f"{keyword}= is not a sturdysearch keyword: {_phrase(replacement)}")
        elif name == "__init__":
            parts.append(f"unknown option {keyword}=")
    if not parts:
        return str(original)
    where = f"{owner}()" if name == "__init__" else f"{owner}.{name}()"
    return f"{where}: " + "; ".join(parts) + " (docs/migrating.md lists the peers' keywords)"


def _wrap(fn: F, owner: str) -> F:
    name = fn.__name__

    def hinted_error(
        exc: TypeError, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> TypeError | ConfigError:
        if type(exc) is not TypeError or not kwargs:
            return exc
        unknown = _unexpected(fn, args, kwargs)
        if not unknown:
            return exc
        if name == "__init__":  # a bad configuration is a ConfigError, as every other one
            return ConfigError(_message(name, owner, unknown, exc))
        return TypeError(_message(name, owner, unknown, exc))

    if inspect.iscoroutinefunction(fn):
        # an async wrapper, so that the method still is a coroutine function to inspect
        @functools.wraps(fn)
        async def hinted_async(*args: Any, **kwargs: Any) -> Any:
            try:
                coroutine = fn(*args, **kwargs)
            except TypeError as exc:
                error = hinted_error(exc, args, kwargs)
                if error is exc:
                    raise
                raise error from None
            return await coroutine

        return hinted_async  # type: ignore[return-value]

    @functools.wraps(fn)
    def hinted(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TypeError as exc:
            error = hinted_error(exc, args, kwargs)
            if error is exc:
                raise
            raise error from None

    return hinted  # type: ignore[return-value]


def hint_peer_keywords(cls: C) -> C:
    """Class decorator: every public method (and ``__init__``) of ``cls`` answers a peer's
    keyword with its replacement. A call that binds costs one extra Python frame."""
    owner = cls.__name__
    for name, value in list(vars(cls).items()):
        if not (name == "__init__" or not name.startswith("_")) or not inspect.isfunction(value):
            continue
        # generators bind their arguments when called too, but a wrapper would hide what
        # they are from inspect; their keywords are few and documented
        if not (inspect.isasyncgenfunction(value) or inspect.isgeneratorfunction(value)):
            setattr(cls, name, _wrap(value, owner))
    return cls


def hint_constructor_keywords(cls: C) -> C:
    """Like :func:`hint_peer_keywords`, for ``__init__`` only: for classes whose methods run per
    document (the bulk indexers), where a wrapper frame would be paid millions of times."""
    init = cls.__init__  # type: ignore[misc]  # its own or inherited (the indexers share one)
    cls.__init__ = _wrap(init, cls.__name__)  # type: ignore[misc]
    return cls

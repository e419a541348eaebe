"""Request specs of the everyday API methods, as pure functions shared by every client.

Each function takes the method's keyword arguments and returns a :class:`RequestSpec`: path,
query parameters, serialized body and, most importantly, whether the request is idempotent (the
retry layer resends only those). The clients' methods are one line each on top of these.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from sturdysearch._core.request import RequestSpec, default_idempotent, id_segment, index_segment
from sturdysearch._core.serialize import dumps, dumps_ndjson
from sturdysearch.errors import SerializationError

Body = Mapping[str, Any] | Any


def _ignore(ignore: int | Collection[int]) -> frozenset[int]:
    if isinstance(ignore, int):
        return frozenset({ignore})
    return frozenset(ignore)


def _params(params: Mapping[str, Any] | None, **named: Any) -> dict[str, Any] | None:
    """Named query parameters plus ``params=``; one given both ways is an error, never a
    silent override."""
    merged = {k: v for k, v in named.items() if v is not None}
    if params:
        clash = sorted(k for k, v in params.items() if v is not None and k in merged)
        if clash:
            raise ValueError(f"{', '.join(clash)} given both as keyword and inside params=")
        merged.update({k: v for k, v in params.items() if v is not None})
    return merged or None


def _merge_body(body: Mapping[str, Any] | None, **fields: Any) -> Mapping[str, Any] | None:
    """Combine ``body=`` with named body fields (``query=``, ``size=``...); a field given both
    ways is an error rather than a silent override."""
    named = {k: v for k, v in fields.items() if v is not None}
    if not named:
        return body
    if body is None:
        return named
    if not isinstance(body, Mapping):
        raise SerializationError(
            "body must be a mapping", path="body", type_name=type(body).__name__
        )
    clash = sorted(set(named) & set(body))
    if clash:
        raise ValueError(f"{', '.join(clash)} given both as keyword and inside body=")
    return {**body, **named}


def request(
    method: str,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
    body: Any = None,
    raw_body: bytes | None = None,
    content_type: str = "application/json",
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
    ignore: int | Collection[int] = (),
    idempotent: bool | None = None,
    long_running: bool = False,
) -> RequestSpec:
    """A free-form request. ``body`` is serialized (a list becomes NDJSON); ``raw_body`` is sent
    as given, for callers who built bytes on purpose."""
    method = method.upper()
    if not path.startswith("/"):
        raise ValueError(f"path must start with '/': {path!r}")
    if any(c in path for c in " \t\r\n"):
        raise ValueError(f"path contains white space; percent-encode it: {path!r}")
    if body is not None and raw_body is not None:
        raise ValueError("give body= or raw_body=, not both")
    data: bytes | None
    if raw_body is not None:
        if not isinstance(raw_body, (bytes, bytearray, memoryview)):
            raise SerializationError(
                "raw_body must be bytes", path="raw_body", type_name=type(raw_body).__name__
            )
        data = bytes(raw_body)
    elif body is None:
        data = None
    elif isinstance(body, list):
        data = dumps_ndjson(body)
        content_type = "application/x-ndjson"
    else:
        data = dumps(body)
    return RequestSpec(
        method=method,
        path=path,
        params=params,
        body=data,
        headers=headers,
        idempotent=default_idempotent(method) if idempotent is None else idempotent,
        ignore=_ignore(ignore),
        timeout=timeout,
        long_running=long_running,
        content_type=content_type,
    )


def info(*, timeout: float | None = None) -> RequestSpec:
    return RequestSpec("GET", "/", idempotent=True, timeout=timeout)


def ping(*, timeout: float | None = None) -> RequestSpec:
    return RequestSpec("HEAD", "/", idempotent=True, timeout=timeout, ignore=frozenset({404}))


def search(
    *,
    index: str | Sequence[str] | None = None,
    body: Mapping[str, Any] | None = None,
    query: Mapping[str, Any] | None = None,
    size: int | None = None,
    from_: int | None = None,
    sort: Any = None,
    aggs: Mapping[str, Any] | None = None,
    source: Any = None,
    search_after: Sequence[Any] | None = None,
    track_total_hits: bool | int | None = None,
    params: Mapping[str, Any] | None = None,
    timeout: float | None = None,
    ignore: int | Collection[int] = (),
) -> RequestSpec:
    merged = _merge_body(
        body,
        query=query,
        size=size,
        sort=sort,
        aggs=aggs,
        _source=source,
        search_after=search_after,
        track_total_hits=track_total_hits,
        **{"from": from_},
    )
    path = f"/{index_segment(index)}/_search" if index is not None else "/_search"
    return RequestSpec(
        "POST",
        path,
        params=_params(params),
        body=dumps(merged) if merged is not None else None,
        idempotent=True,  # a search reads; resending it is harmless
        ignore=_ignore(ignore),
        timeout=timeout,
    )


def count(
    *,
    index: str | Sequence[str] | None = None,
    body: Mapping[str, Any] | None = None,
    query: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> RequestSpec:
    merged = _merge_body(body, query=query)
    path = f"/{index_segment(index)}/_count" if index is not None else "/_count"
    return RequestSpec(
        "POST",
        path,
        params=_params(params),
        body=dumps(merged) if merged is not None else None,
        idempotent=True,
        timeout=timeout,
    )


def index(
    *,
    index: str,
    document: Any,
    id: Any = None,
    refresh: bool | str | None = None,
    op_type: str | None = None,
    if_seq_no: int | None = None,
    if_primary_term: int | None = None,
    routing: str | None = None,
    pipeline: str | None = None,
    params: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> RequestSpec:
    """Index a document. With an ``id`` the write is idempotent (the same id is overwritten, or
    with ``op_type=create`` refused); without, every send creates a new document, so it is never
    resent once it may have arrived."""
    if (if_seq_no is None) != (if_primary_term is None):
        raise ValueError("if_seq_no and if_primary_term go together")
    data = dumps(document, what="document")
    query = _params(
        params,
        refresh=refresh,
        op_type=op_type,
        if_seq_no=if_seq_no,
        if_primary_term=if_primary_term,
        routing=routing,
        pipeline=pipeline,
    )
    if id is None:
        if op_type == "create":
            raise ValueError("op_type='create' needs an id")
        return RequestSpec(
            "POST",
            f"/{index_segment(index)}/_doc",
            params=query,
            body=data,
            idempotent=False,
            timeout=timeout,
        )
    return RequestSpec(
        "PUT",
        f"/{index_segment(index)}/_doc/{id_segment(id)}",
        params=query,
        body=data,
        idempotent=True,
        timeout=timeout,
    )


def create(
    *,
    index: str,
    id: Any,
    document: Any,
    refresh: bool | str | None = None,
    routing: str | None = None,
    pipeline: str | None = None,
    params: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> RequestSpec:
    """Create-only write: ``ConflictError`` (409) if the id exists."""
    return RequestSpec(
        "PUT",
        f"/{index_segment(index)}/_create/{id_segment(id)}",
        params=_params(params, refresh=refresh, routing=routing, pipeline=pipeline),
        body=dumps(document, what="document"),
        idempotent=True,  # a resend after success gets 409, never a duplicate
        timeout=timeout,
    )


def get(
    *,
    index: str,
    id: Any,
    source: Any = None,
    routing: str | None = None,
    realtime: bool | None = None,
    params: Mapping[str, Any] | None = None,
    timeout: float | None = None,
    ignore: int | Collection[int] = (),
) -> RequestSpec:
    return RequestSpec(
        "GET",
        f"/{index_segment(index)}/_doc/{id_segment(id)}",
        params=_params(params, _source=source, routing=routing, realtime=realtime),
        idempotent=True,
        timeout=timeout,
        ignore=_ignore(ignore),
    )


def exists(
    *, index: str, id: Any, routing: str | None = None, timeout: float | None = None
) -> RequestSpec:
    return RequestSpec(
        "HEAD",
        f"/{index_segment(index)}/_doc/{id_segment(id)}",
        params=_params(None, routing=routing),
        idempotent=True,
        timeout=timeout,
        ignore=frozenset({404}),
    )


def delete(
    *,
    index: str,
    id: Any,
    refresh: bool | str | None = None,
    if_seq_no: int | None = None,
    if_primary_term: int | None = None,
    routing: str | None = None,
    params: Mapping[str, Any] | None = None,
    timeout: float | None = None,
    ignore: int | Collection[int] = (),
) -> RequestSpec:
    if (if_seq_no is None) != (if_primary_term is None):
        raise ValueError("if_seq_no and if_primary_term go together")
    return RequestSpec(
        "DELETE",
        f"/{index_segment(index)}/_doc/{id_segment(id)}",
        params=_params(
            params,
            refresh=refresh,
            if_seq_no=if_seq_no,
            if_primary_term=if_primary_term,
            routing=routing,
        ),
        idempotent=True,
        timeout=timeout,
        ignore=_ignore(ignore),
    )


def bulk(
    *,
    operations: Iterable[Mapping[str, Any]],
    index: str | None = None,
    refresh: bool | str | None = None,
    params: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> RequestSpec:
    """A raw ``_bulk`` call: action and source lines alternate in ``operations``. Idempotent only
    when every index/create action names an ``_id``. (The BulkIndexer adds item accounting.)"""
    lines = list(operations)
    return RequestSpec(
        "POST",
        f"/{index_segment(index)}/_bulk" if index else "/_bulk",
        params=_params(params, refresh=refresh),
        body=dumps_ndjson(lines, what="operations"),
        content_type="application/x-ndjson",
        idempotent=bulk_is_idempotent(lines),
        timeout=timeout,
    )


def bulk_is_idempotent(lines: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a bulk body may be sent twice: every index/create names an ``_id`` (a resend
    overwrites or conflicts instead of duplicating) and no update runs a script (``ctx._source.n
    += 1`` applied twice is wrong)."""
    expect_source = False
    current = ""
    for line in lines:
        if expect_source:
            expect_source = False
            if current == "update" and isinstance(line, Mapping) and "script" in line:
                return False
            continue
        if len(line) != 1:
            continue
        current, meta = next(iter(line.items()))
        if current in ("index", "create", "update"):
            expect_source = True
            if current != "update" and (not isinstance(meta, Mapping) or "_id" not in meta):
                return False
    return True


def refresh(
    *, index: str | Sequence[str] | None = None, timeout: float | None = None
) -> RequestSpec:
    path = f"/{index_segment(index)}/_refresh" if index is not None else "/_refresh"
    return RequestSpec("POST", path, idempotent=True, timeout=timeout)


def indices_create(
    *,
    index: str,
    mappings: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    aliases: Mapping[str, Any] | None = None,
    body: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    timeout: float | None = None,
    ignore: int | Collection[int] = (),
) -> RequestSpec:
    merged = _merge_body(body, mappings=mappings, settings=settings, aliases=aliases)
    return RequestSpec(
        "PUT",
        f"/{index_segment(index)}",
        params=_params(params),
        body=dumps(merged) if merged is not None else None,
        idempotent=True,  # a resend answers 400 resource_already_exists, never a second index
        timeout=timeout,
        ignore=_ignore(ignore),
    )


def indices_delete(
    *,
    index: str | Sequence[str],
    params: Mapping[str, Any] | None = None,
    timeout: float | None = None,
    ignore: int | Collection[int] = (),
) -> RequestSpec:
    return RequestSpec(
        "DELETE",
        f"/{index_segment(index)}",
        params=_params(params),
        idempotent=True,
        timeout=timeout,
        ignore=_ignore(ignore),
    )


def indices_exists(*, index: str | Sequence[str], timeout: float | None = None) -> RequestSpec:
    return RequestSpec(
        "HEAD",
        f"/{index_segment(index)}",
        idempotent=True,
        timeout=timeout,
        ignore=frozenset({404}),
    )

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


_NO_STATUS: frozenset[int] = frozenset()


def _index_path(index: str | Sequence[str] | None, suffix: str) -> str:
    """``/{index}{suffix}``, or just ``suffix`` for a cluster-wide call (``index=None``)."""
    return f"/{index_segment(index)}{suffix}" if index is not None else suffix


def _ignore(ignore: int | Collection[int]) -> frozenset[int]:
    if not ignore:
        return _NO_STATUS
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


#: Body fields that are JSON objects: a string there is JSON built by hand (the injection-prone
#: habit this client refuses), which the server would reject or, worse, read as something else.
OBJECT_FIELDS = frozenset(
    {
        "aggs",
        "aliases",
        "collapse",
        "doc",
        "filter",
        "highlight",
        "mappings",
        "post_filter",
        "properties",
        "query",
        "script",
        "settings",
        "suggest",
        "upsert",
    }
)


def _merge_body(body: Mapping[str, Any] | None, **fields: Any) -> Mapping[str, Any] | None:
    """Combine ``body=`` with named body fields (``query=``, ``size=``...); a field given both
    ways is an error rather than a silent override, and an object field given as a string
    (``query='{"match_all": {}}'``) is refused."""
    named = {k: v for k, v in fields.items() if v is not None}
    for name, value in named.items():
        if name in OBJECT_FIELDS and isinstance(value, (str, bytes, bytearray)):
            raise SerializationError(
                f"{name}= must be a mapping, not {type(value).__name__}: JSON built as a string "
                f"invites injection; pass a dict such as {name}={{...}}",
                path=name,
                type_name=type(value).__name__,
            )
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
    if not path.isascii():
        raise ValueError(
            f"path contains non-ASCII characters; percent-encode them "
            f"(urllib.parse.quote(name, safe='')): {path!r}"
        )
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
    if (
        query is None
        and size is None
        and from_ is None
        and sort is None
        and aggs is None
        and source is None
        and search_after is None
        and track_total_hits is None
    ):
        merged = body  # the common case, without building a dict of Nones first
    else:
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
    path = _index_path(index, "/_search")
    return RequestSpec(
        "POST",
        path,
        params=_params(params) if params else None,
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
    path = _index_path(index, "/_count")
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
        # op_type=create without an id: the server generates one, as for a plain POST; a
        # resend would create a second document, so it is never resent once it may have arrived
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
    path = _index_path(index, "/_refresh")
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


# -- documents: update, mget -------------------------------------------------------------------


def update(
    *,
    index: str,
    id: Any,
    doc: Mapping[str, Any] | None = None,
    script: Mapping[str, Any] | None = None,
    upsert: Mapping[str, Any] | None = None,
    doc_as_upsert: bool | None = None,
    scripted_upsert: bool | None = None,
    detect_noop: bool | None = None,
    retry_on_conflict: int | None = None,
    if_seq_no: int | None = None,
    if_primary_term: int | None = None,
    refresh: bool | str | None = None,
    routing: str | None = None,
    source: Any = None,
    body: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> RequestSpec:
    """Partial update (``doc``) or scripted update (``script``) of one document.

    Idempotency, which decides whether the request may be resent after it may have arrived:

    * ``doc`` alone, or ``doc`` with ``doc_as_upsert``: yes; merging the same fields twice
      leaves the same document.
    * ``script``: no; ``ctx._source.n += 1`` applied twice adds two.
    * ``doc`` with a separate ``upsert``: no; the first send creates the document from
      ``upsert``, a second one would then merge ``doc`` into it.
    * anything with ``if_seq_no``/``if_primary_term``: yes; a resend after success finds the
      sequence number moved and is refused with 409, never applied twice.

    A script is a mapping (``{"source": ..., "params": {...}}``): put values in ``params``,
    never into the source text, which the server compiles.
    """
    if (if_seq_no is None) != (if_primary_term is None):
        raise ValueError("if_seq_no and if_primary_term go together")
    if retry_on_conflict is not None and if_seq_no is not None:
        raise ValueError(
            "retry_on_conflict cannot be combined with if_seq_no/if_primary_term (the server "
            "refuses it): a conditional update must fail on conflict"
        )
    if script is not None and not isinstance(script, Mapping):
        raise SerializationError(
            "script must be a mapping such as {'source': 'ctx._source.n += params.k', "
            "'params': {'k': 1}}; keep values in params, never in the source text",
            path="script",
            type_name=type(script).__name__,
        )
    merged = _merge_body(
        body,
        doc=doc,
        script=script,
        upsert=upsert,
        doc_as_upsert=doc_as_upsert,
        scripted_upsert=scripted_upsert,
        detect_noop=detect_noop,
    )
    fields = merged or {}
    if ("doc" in fields) == ("script" in fields):
        raise ValueError("update needs exactly one of doc= or script=")
    if fields.get("doc_as_upsert") and "doc" not in fields:
        raise ValueError("doc_as_upsert needs doc=")
    idempotent = if_seq_no is not None or (
        "script" not in fields and ("upsert" not in fields or bool(fields.get("doc_as_upsert")))
    )
    return RequestSpec(
        "POST",
        f"/{index_segment(index)}/_update/{id_segment(id)}",
        params=_params(
            params,
            retry_on_conflict=retry_on_conflict,
            if_seq_no=if_seq_no,
            if_primary_term=if_primary_term,
            refresh=refresh,
            routing=routing,
            _source=source,
        ),
        body=dumps(fields),
        idempotent=idempotent,
        timeout=timeout,
    )


def mget(
    *,
    index: str | None = None,
    docs: Sequence[Mapping[str, Any]] | None = None,
    ids: Sequence[Any] | None = None,
    source: Any = None,
    routing: str | None = None,
    realtime: bool | None = None,
    refresh: bool | None = None,
    body: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> RequestSpec:
    """Several documents by id in one call: ``ids=`` (with ``index=``) or ``docs=``
    (``[{"_index": ..., "_id": ...}]``). A read: idempotent."""
    merged = _merge_body(
        body, docs=list(docs) if docs is not None else None, ids=_ids(ids) if ids else None
    )
    if not merged or not (merged.get("docs") or merged.get("ids")):
        raise ValueError("mget needs ids= (with index=) or docs=")
    if "ids" in merged and index is None:
        raise ValueError("mget with ids= needs index=")
    return RequestSpec(
        "POST",
        _index_path(index, "/_mget"),
        params=_params(params, _source=source, routing=routing, realtime=realtime, refresh=refresh),
        body=dumps(merged),
        idempotent=True,
        timeout=timeout,
    )


def _ids(ids: Sequence[Any]) -> list[str]:
    if isinstance(ids, (str, bytes)):
        raise ValueError("ids must be a list of ids, not one string")
    return [str(i) for i in ids]


def msearch(
    *,
    searches: Sequence[Mapping[str, Any]],
    index: str | Sequence[str] | None = None,
    params: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> RequestSpec:
    """Several searches in one call: ``searches`` alternates a header (``{"index": ...}`` or
    ``{}``) and a search body, as in elasticsearch-py. Reads: idempotent. Each answer item may
    be an error: see ``MultiSearchResult.responses``."""
    lines = list(searches)
    if not lines or len(lines) % 2:
        raise ValueError(
            "searches must alternate header and body: [{'index': 'a'}, {'query': ...}, ...]"
        )
    return RequestSpec(
        "POST",
        _index_path(index, "/_msearch"),
        params=_params(params),
        body=dumps_ndjson(lines, what="searches"),
        content_type="application/x-ndjson",
        idempotent=True,
        timeout=timeout,
    )


def search_template(
    *,
    index: str | Sequence[str] | None = None,
    id: str | None = None,
    source: Mapping[str, Any] | str | None = None,
    params: Mapping[str, Any] | None = None,
    explain: bool | None = None,
    profile: bool | None = None,
    routing: str | None = None,
    timeout: float | None = None,
) -> RequestSpec:
    """Search with a mustache template: a stored one (``id=``) or inline (``source=``), filled
    with ``params`` (as in elasticsearch-py, ``params`` here are the template's parameters).
    User input belongs in ``params`` only; the server renders it JSON-escaped. A read:
    idempotent."""
    body = _template_body(id, source, params, explain=explain, profile=profile)
    path = _index_path(index, "/_search/template")
    return RequestSpec(
        "POST",
        path,
        params=_params(None, routing=routing),
        body=dumps(body),
        idempotent=True,
        timeout=timeout,
    )


def render_search_template(
    *,
    id: str | None = None,
    source: Mapping[str, Any] | str | None = None,
    params: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> RequestSpec:
    """Render a template without searching (``template_output`` is the search body). A read:
    idempotent."""
    body = _template_body(None, source, params) if id is None else {"params": dict(params or {})}
    path = f"/_render/template/{id_segment(id)}" if id is not None else "/_render/template"
    return RequestSpec("POST", path, body=dumps(body), idempotent=True, timeout=timeout)


def _template_body(
    id: str | None,
    source: Mapping[str, Any] | str | None,
    params: Mapping[str, Any] | None,
    **flags: Any,
) -> dict[str, Any]:
    if (id is None) == (source is None):
        raise ValueError("give exactly one of id= (a stored template) or source= (inline)")
    body: dict[str, Any] = {"id": id} if id is not None else {"source": source}
    body["params"] = dict(params or {})
    body.update({k: v for k, v in flags.items() if v is not None})
    return body


# -- by query ----------------------------------------------------------------------------------


def delete_by_query(
    *,
    index: str | Sequence[str],
    query: Mapping[str, Any] | None = None,
    body: Mapping[str, Any] | None = None,
    conflicts: str | None = None,
    max_docs: int | None = None,
    refresh: bool | None = None,
    routing: str | None = None,
    slices: int | str | None = None,
    requests_per_second: float | None = None,
    scroll_size: int | None = None,
    params: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> RequestSpec:
    """Start ``_delete_by_query`` as a server task (``wait_for_completion=false``); the flow
    ``by_query`` polls it.

    ``query`` is required: pass ``{"match_all": {}}`` to delete every document on purpose.
    Idempotent only with ``conflicts="proceed"``: a second run deletes what still matches, but
    without ``proceed`` it races the first over the same documents and aborts on the first
    version conflict, half done.
    """
    merged = _merge_body(body, query=query, max_docs=max_docs)
    if not merged or "query" not in merged:
        raise ValueError(
            "delete_by_query needs query=; pass query={'match_all': {}} to delete every "
            "document on purpose"
        )
    return _by_query(
        "_delete_by_query",
        index,
        merged,
        conflicts=conflicts,
        idempotent=conflicts == "proceed",
        params=params,
        timeout=timeout,
        refresh=refresh,
        routing=routing,
        slices=slices,
        requests_per_second=requests_per_second,
        scroll_size=scroll_size,
    )


def update_by_query(
    *,
    index: str | Sequence[str],
    query: Mapping[str, Any] | None = None,
    script: Mapping[str, Any] | None = None,
    body: Mapping[str, Any] | None = None,
    conflicts: str | None = None,
    max_docs: int | None = None,
    refresh: bool | None = None,
    routing: str | None = None,
    slices: int | str | None = None,
    requests_per_second: float | None = None,
    scroll_size: int | None = None,
    pipeline: str | None = None,
    params: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> RequestSpec:
    """Start ``_update_by_query`` as a server task; the flow ``by_query`` polls it.

    Without ``query`` every document is rewritten (the usual way to pick up a mapping change).
    Idempotent only without a script and with ``conflicts="proceed"``: rewriting documents
    again changes nothing, but a script (``ctx._source.n += 1``) would apply twice, and without
    ``proceed`` two runs abort each other on version conflicts.
    """
    if script is not None and not isinstance(script, Mapping):
        raise SerializationError(
            "script must be a mapping such as {'source': ..., 'params': {...}}",
            path="script",
            type_name=type(script).__name__,
        )
    merged = _merge_body(body, query=query, script=script, max_docs=max_docs) or {}
    return _by_query(
        "_update_by_query",
        index,
        merged,
        conflicts=conflicts,
        idempotent="script" not in merged and conflicts == "proceed",
        params=params,
        timeout=timeout,
        refresh=refresh,
        routing=routing,
        slices=slices,
        requests_per_second=requests_per_second,
        scroll_size=scroll_size,
        pipeline=pipeline,
    )


def _by_query(
    endpoint: str,
    index: str | Sequence[str],
    body: Mapping[str, Any],
    *,
    conflicts: str | None,
    idempotent: bool,
    params: Mapping[str, Any] | None,
    timeout: float | None,
    **named: Any,
) -> RequestSpec:
    if conflicts not in (None, "abort", "proceed"):
        raise ValueError("conflicts must be 'abort' or 'proceed'")
    return RequestSpec(
        "POST",
        f"/{index_segment(index)}/{endpoint}",
        params=_params(params, conflicts=conflicts, wait_for_completion=False, **named),
        body=dumps(body),
        idempotent=idempotent,
        timeout=timeout,
    )


def tasks_get(*, task_id: str, timeout: float | None = None) -> RequestSpec:
    """The state of a server task (``completed``, ``response`` or ``error``). A read."""
    return RequestSpec("GET", f"/_tasks/{id_segment(task_id)}", idempotent=True, timeout=timeout)


def tasks_cancel(*, task_id: str, timeout: float | None = None) -> RequestSpec:
    """Ask a server task to stop. Idempotent: cancelling twice is cancelling."""
    return RequestSpec(
        "POST", f"/_tasks/{id_segment(task_id)}/_cancel", idempotent=True, timeout=timeout
    )


# -- scroll ------------------------------------------------------------------------------------


def clear_scroll(
    *,
    scroll_id: str | Sequence[str] | None = None,
    body: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> RequestSpec:
    """Release scroll contexts (``scroll_id=``, or ``body={"scroll_id": ...}`` as the peers take
    it); one already gone is not an error (404 ignored)."""
    if (scroll_id is None) == (body is None or "scroll_id" not in body):
        raise ValueError("give scroll_id= (or body={'scroll_id': ...}), once")
    if scroll_id is None:
        assert body is not None
        scroll_id = body["scroll_id"]
    ids = [scroll_id] if isinstance(scroll_id, str) else list(scroll_id or [])
    return RequestSpec(
        "DELETE",
        "/_search/scroll",
        body=dumps({"scroll_id": ids}),
        idempotent=True,
        ignore=frozenset({404}),
        timeout=timeout,
    )


# -- indices -----------------------------------------------------------------------------------


def indices_get_mapping(
    *, index: str | Sequence[str] | None = None, timeout: float | None = None
) -> RequestSpec:
    path = _index_path(index, "/_mapping")
    return RequestSpec("GET", path, idempotent=True, timeout=timeout)


def indices_put_mapping(
    *,
    index: str | Sequence[str],
    properties: Mapping[str, Any] | None = None,
    dynamic: bool | str | None = None,
    body: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> RequestSpec:
    """Add fields to a mapping. Idempotent: the same mapping again is accepted unchanged."""
    merged = _merge_body(body, properties=properties, dynamic=dynamic)
    if not merged:
        raise ValueError("put_mapping needs properties= (or body=)")
    return RequestSpec(
        "PUT",
        f"/{index_segment(index)}/_mapping",
        params=_params(params),
        body=dumps(merged),
        idempotent=True,
        timeout=timeout,
    )


def indices_get_settings(
    *,
    index: str | Sequence[str] | None = None,
    name: str | Sequence[str] | None = None,
    include_defaults: bool | None = None,
    flat_settings: bool | None = None,
    timeout: float | None = None,
) -> RequestSpec:
    target = f"/{index_segment(index)}" if index is not None else ""
    path = f"{target}/_settings" + (f"/{index_segment(name)}" if name is not None else "")
    return RequestSpec(
        "GET",
        path,
        params=_params(None, include_defaults=include_defaults, flat_settings=flat_settings),
        idempotent=True,
        timeout=timeout,
    )


def indices_put_settings(
    *,
    settings: Mapping[str, Any] | None = None,
    index: str | Sequence[str] | None = None,
    preserve_existing: bool | None = None,
    body: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> RequestSpec:
    """Change dynamic index settings (``settings=``, or the same as ``body=``, as the peers
    take it). Idempotent: setting a value twice is setting it."""
    if settings is not None and body is not None:
        raise ValueError("give settings= or body=, not both: they are the same document")
    settings = settings if settings is not None else body
    if not isinstance(settings, Mapping) or not settings:
        raise ValueError(
            "put_settings needs settings= (e.g. {'index': {'refresh_interval': '1s'}})"
        )
    path = _index_path(index, "/_settings")
    return RequestSpec(
        "PUT",
        path,
        params=_params(params, preserve_existing=preserve_existing),
        body=dumps(settings),
        idempotent=True,
        timeout=timeout,
    )


def indices_put_alias(
    *,
    index: str | Sequence[str],
    name: str,
    filter: Mapping[str, Any] | None = None,
    routing: str | None = None,
    is_write_index: bool | None = None,
    timeout: float | None = None,
) -> RequestSpec:
    """Point alias ``name`` at ``index``. Idempotent: adding it again updates it in place."""
    body = _merge_body(None, filter=filter, routing=routing, is_write_index=is_write_index)
    return RequestSpec(
        "PUT",
        f"/{index_segment(index)}/_alias/{id_segment(name)}",
        body=dumps(body) if body else None,
        idempotent=True,
        timeout=timeout,
    )


def indices_delete_alias(
    *,
    index: str | Sequence[str],
    name: str | Sequence[str],
    timeout: float | None = None,
    ignore: int | Collection[int] = (),
) -> RequestSpec:
    """Remove an alias. DELETE: a resend after success answers 404 (``ignore=404`` if that is
    fine)."""
    return RequestSpec(
        "DELETE",
        f"/{index_segment(index)}/_alias/{index_segment(name)}",
        idempotent=True,
        timeout=timeout,
        ignore=_ignore(ignore),
    )


def indices_get_alias(
    *,
    index: str | Sequence[str] | None = None,
    name: str | Sequence[str] | None = None,
    timeout: float | None = None,
    ignore: int | Collection[int] = (),
) -> RequestSpec:
    target = f"/{index_segment(index)}" if index is not None else ""
    path = f"{target}/_alias" + (f"/{index_segment(name)}" if name is not None else "")
    return RequestSpec("GET", path, idempotent=True, timeout=timeout, ignore=_ignore(ignore))


def indices_update_aliases(
    *,
    actions: Sequence[Mapping[str, Any]] | None = None,
    body: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> RequestSpec:
    """Several alias changes applied atomically (``actions=``, or ``body={"actions": [...]}`` as
    the peers take it). Idempotent only when every action is an ``add`` (adding again changes
    nothing); a resent ``remove``/``remove_index`` would answer 404 for a change that was in
    fact made."""
    if actions is not None and body is not None:
        raise ValueError("give actions= or body={'actions': [...]}, not both")
    if actions is None:
        actions = (body or {}).get("actions") or []
    items = list(actions)
    if not items or any(not isinstance(a, Mapping) or len(a) != 1 for a in items):
        raise ValueError("actions must be a non-empty list of {'add'|'remove'|...: {...}}")
    return RequestSpec(
        "POST",
        "/_aliases",
        body=dumps({"actions": items}),
        idempotent=all(next(iter(a)) == "add" for a in items),
        timeout=timeout,
    )


# -- cluster, cat, nodes -----------------------------------------------------------------------

HEALTH_WAITS = (
    "wait_for_status",
    "wait_for_nodes",
    "wait_for_active_shards",
    "wait_for_events",
    "wait_for_no_relocating_shards",
    "wait_for_no_initializing_shards",
)


def cluster_health(
    *,
    index: str | Sequence[str] | None = None,
    wait_for_status: str | None = None,
    wait_for_nodes: int | str | None = None,
    wait_for_active_shards: int | str | None = None,
    wait_for_events: str | None = None,
    wait_for_no_relocating_shards: bool | None = None,
    wait_for_no_initializing_shards: bool | None = None,
    level: str | None = None,
    local: bool | None = None,
    timeout: float | None = None,
    default_timeout: float = 30.0,
) -> RequestSpec:
    """Cluster health, optionally waiting server-side for a condition.

    With a ``wait_for_*`` condition the server waits up to its own ``timeout`` parameter, which
    is set from this call's deadline (``timeout=`` or the client's ``default_timeout``) minus a
    margin for the answer to come back, and the socket read is allowed to last as long
    (``long_running``). When the condition is not met the server answers 408 with the health
    report (``timed_out: true``); 408 is in ``ignore`` so the transport hands it over instead of
    waiting all over again.
    """
    waits = {
        "wait_for_status": wait_for_status,
        "wait_for_nodes": wait_for_nodes,
        "wait_for_active_shards": wait_for_active_shards,
        "wait_for_events": wait_for_events,
        "wait_for_no_relocating_shards": wait_for_no_relocating_shards,
        "wait_for_no_initializing_shards": wait_for_no_initializing_shards,
    }
    if wait_for_status not in (None, "green", "yellow", "red"):
        raise ValueError("wait_for_status must be 'green', 'yellow' or 'red'")
    path = f"/_cluster/health/{index_segment(index)}" if index is not None else "/_cluster/health"
    waiting = any(v is not None for v in waits.values())
    query = _params(None, level=level, local=local, **waits)
    if not waiting:
        return RequestSpec("GET", path, params=query, idempotent=True, timeout=timeout)
    budget = timeout if timeout is not None else default_timeout
    server_wait = budget - min(1.0, budget * 0.2)
    return RequestSpec(
        "GET",
        path,
        params={**(query or {}), "timeout": f"{max(1, int(server_wait * 1000))}ms"},
        idempotent=True,
        timeout=budget,
        long_running=True,  # the server stays silent while it waits: read timeout = deadline
        ignore=frozenset({408}),
    )


#: Query parameters that make ``_cat`` columns numeric where the endpoint supports them.
CAT_UNITS: Mapping[str, Mapping[str, str]] = {
    "allocation": {"bytes": "b"},
    "indices": {"bytes": "b"},
    "nodes": {"bytes": "b"},
    "shards": {"bytes": "b"},
}


def cat(
    what: str,
    *,
    target: str | Sequence[str] | None = None,
    params: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> RequestSpec:
    """A ``_cat`` API as JSON (``format=json``), sizes in bytes where the endpoint has them;
    ``results.cat_rows`` types the numbers. A read."""
    if not what.isidentifier():
        raise ValueError(f"not a _cat API name: {what!r}")
    path = f"/_cat/{what}" + (f"/{index_segment(target)}" if target is not None else "")
    query = {"format": "json", **CAT_UNITS.get(what, {})}
    if params:
        query.update({k: v for k, v in params.items() if v is not None})
    return RequestSpec("GET", path, params=query, idempotent=True, timeout=timeout)


def nodes_local_info(*, timeout: float | None = None) -> RequestSpec:
    """Name, version and build flavor of the node answering: the fallback for ``GET /``."""
    return RequestSpec(
        "GET",
        "/_nodes/_local",
        params={
            "filter_path": "cluster_name,nodes.*.name,nodes.*.version,nodes.*.build_flavor,"
            "nodes.*.build_type"
        },
        idempotent=True,
        timeout=timeout,
    )


def nodes_search_stats(*, timeout: float | None = None) -> RequestSpec:
    """Search statistics of every node, including the open search contexts (scrolls, PITs)."""
    return RequestSpec("GET", "/_nodes/stats/indices/search", idempotent=True, timeout=timeout)

"""Typed answers: the same mapping as :class:`Response`, plus properties for what callers read.

Each class is a :class:`Response` (``result["_seq_no"]``, ``.body``, ``.meta`` keep working);
the properties add the names and normalize what differs between servers, e.g.
:attr:`SearchResult.total` reads ``hits.total`` whether the server sent an object (7.x+) or a
number (6.x, or ``rest_total_hits_as_int=true``). The functions at the end are pure
post-processors of answers that are not objects (``_cat``) or need summing (node stats).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

from sturdysearch._core.responses import Response, error_class
from sturdysearch.errors import ApiError, MalformedResponseError

R = TypeVar("R", bound="TypedResponse")


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class TypedResponse(Response):
    """Base of the typed answers."""

    __slots__ = ()

    @classmethod
    def of(cls: type[R], response: Response) -> R:
        """The same answer (body and meta shared, not copied), typed."""
        return cls(response.body, response.meta)

    def _get(self, key: str) -> Any:
        return self.body.get(key) if isinstance(self.body, dict) else None


class WriteResult(TypedResponse):
    """The answer to ``index``, ``create``, ``update`` and ``delete``: what was written where,
    and the concurrency token (``seq_no``, ``primary_term``) to write it again safely."""

    __slots__ = ()

    @property
    def id(self) -> str | None:
        return _str(self._get("_id"))

    @property
    def index(self) -> str | None:
        return _str(self._get("_index"))

    @property
    def result(self) -> str | None:
        """``created``, ``updated``, ``deleted``, ``noop`` or ``not_found``."""
        return _str(self._get("result"))

    @property
    def version(self) -> int | None:
        return _int(self._get("_version"))

    @property
    def seq_no(self) -> int | None:
        return _int(self._get("_seq_no"))

    @property
    def primary_term(self) -> int | None:
        return _int(self._get("_primary_term"))


class GetResult(WriteResult):
    """The answer to ``get`` (or one ``mget`` item): ``found``, ``source`` and the concurrency
    token of the version read."""

    __slots__ = ()

    @property
    def found(self) -> bool:
        return self._get("found") is True

    @property
    def source(self) -> Any:
        """The document (``_source``), or ``None`` when not found or not returned."""
        return self._get("_source")


def total_hits(body: Any) -> tuple[int, str] | None:
    """``(value, relation)`` of ``hits.total`` in either form, or ``None`` when absent
    (``track_total_hits=false``)."""
    hits = body.get("hits") if isinstance(body, dict) else None
    total = hits.get("total") if isinstance(hits, dict) else None
    if isinstance(total, dict):
        value = _int(total.get("value"))
        relation = _str(total.get("relation")) or "eq"
        return (value, relation) if value is not None else None
    value = _int(total)
    return (value, "eq") if value is not None else None


class PointInTime(TypedResponse):
    """An opened point in time, whatever the flavor calls its id (``id`` on Elasticsearch,
    ``pit_id`` on OpenSearch)."""

    __slots__ = ()

    @property
    def id(self) -> str:
        """The PIT id to put in searches (``"pit": {"id": ...}``) and to close."""
        value = self._get("id") or self._get("pit_id")
        if not isinstance(value, str) or not value:
            raise MalformedResponseError(f"opening a point in time returned no id: {self.body!r}")
        return value


class SearchResult(TypedResponse):
    """The answer to ``search``, ``search_template`` and each ``msearch`` item."""

    __slots__ = ()

    @property
    def hits(self) -> list[dict[str, Any]]:
        """The hits of this page (``hits.hits``)."""
        hits = self._get("hits")
        found = hits.get("hits") if isinstance(hits, dict) else None
        return found if isinstance(found, list) else []

    @property
    def total(self) -> int | None:
        """``hits.total`` as a number whatever form the server used; a lower bound when
        :attr:`total_relation` is ``gte``; ``None`` when the server did not count."""
        pair = total_hits(self.body)
        return pair[0] if pair else None

    @property
    def total_relation(self) -> str | None:
        """``eq`` (exact) or ``gte`` (lower bound, see ``track_total_hits``)."""
        pair = total_hits(self.body)
        return pair[1] if pair else None

    @property
    def max_score(self) -> float | None:
        hits = self._get("hits")
        score = hits.get("max_score") if isinstance(hits, dict) else None
        return float(score) if isinstance(score, (int, float)) else None

    @property
    def aggregations(self) -> dict[str, Any]:
        aggs = self._get("aggregations")
        return aggs if isinstance(aggs, dict) else {}


class MultiGetResult(TypedResponse):
    """The answer to ``mget``; :attr:`docs` in the order asked."""

    __slots__ = ()

    @property
    def docs(self) -> list[GetResult]:
        """One :class:`GetResult` per requested document; an item the server could not read
        (e.g. its index does not exist) has an ``error`` key and ``found`` False."""
        docs = self._get("docs")
        return [GetResult(d, self.meta) for d in docs] if isinstance(docs, list) else []


class MultiSearchResult(TypedResponse):
    """The answer to ``msearch``; :attr:`responses` in the order of the searches."""

    __slots__ = ()

    @property
    def responses(self) -> list[SearchResult | ApiError]:
        """Each search's :class:`SearchResult`, or the typed :class:`ApiError` it failed with
        (``msearch`` answers 200 even when every search failed: check each item)."""
        items = self._get("responses")
        if not isinstance(items, list):
            return []
        return [self._item(item) for item in items]

    def _item(self, item: Any) -> SearchResult | ApiError:
        if isinstance(item, dict) and "error" in item:
            status = _int(item.get("status")) or 500
            error = item["error"]
            if isinstance(error, dict):
                causes = error.get("root_cause")
                return error_class(status)(
                    status,
                    error_type=_str(error.get("type")),
                    reason=_str(error.get("reason")),
                    root_cause=[c for c in causes if isinstance(c, dict)]
                    if isinstance(causes, list)
                    else [],
                    body=item,
                    node=self.meta.node,
                )
            return error_class(status)(status, reason=_str(error), body=item, node=self.meta.node)
        return SearchResult(item, self.meta)


class ClusterHealth(TypedResponse):
    """The answer to ``cluster.health``. ``timed_out`` is True when a ``wait_for_*`` condition
    was not met within the server-side wait (the server answers 408 then)."""

    __slots__ = ()

    @property
    def status(self) -> str | None:
        """``green``, ``yellow`` or ``red``."""
        return _str(self._get("status"))

    @property
    def timed_out(self) -> bool:
        return self._get("timed_out") is True

    @property
    def number_of_nodes(self) -> int | None:
        return _int(self._get("number_of_nodes"))

    @property
    def unassigned_shards(self) -> int | None:
        return _int(self._get("unassigned_shards"))


class ByQueryResult(TypedResponse):
    """The outcome of ``delete_by_query`` / ``update_by_query``: the counts, and ``task`` when
    the call only started the task (``wait_for_completion=False``)."""

    __slots__ = ()

    @property
    def task(self) -> str | None:
        """The server task id (``node:number``) when the work runs in the background."""
        return _str(self._get("task"))

    @property
    def total(self) -> int | None:
        return _int(self._get("total"))

    @property
    def deleted(self) -> int | None:
        return _int(self._get("deleted"))

    @property
    def updated(self) -> int | None:
        return _int(self._get("updated"))

    @property
    def version_conflicts(self) -> int | None:
        return _int(self._get("version_conflicts"))

    @property
    def failures(self) -> list[dict[str, Any]]:
        """Per-document failures; non-empty means the work was only partly done."""
        failures = self._get("failures")
        return [f for f in failures if isinstance(f, dict)] if isinstance(failures, list) else []


# -- post-processors ---------------------------------------------------------------------------


def found_or_none(response: Response) -> GetResult | None:
    """``get_or_none``: the document, ``None`` when it does not exist; a 404 that is not about
    the document (the index is missing) is raised as the ``NotFoundError`` it is."""
    if response.meta.status == 404:
        body = response.body if isinstance(response.body, dict) else {}
        if body.get("found") is False:
            return None
        error = body.get("error")
        error = error if isinstance(error, dict) else {}
        causes = error.get("root_cause")
        raise error_class(404)(
            404,
            error_type=_str(error.get("type")),
            reason=_str(error.get("reason")) or _str(body.get("error")),
            root_cause=[c for c in causes if isinstance(c, dict)]
            if isinstance(causes, list)
            else [],
            body=response.body,
            node=response.meta.node,
            headers=response.meta.headers,
        )
    return GetResult.of(response)


def cluster_health(response: Response, raise_on_timeout: bool) -> ClusterHealth:
    """The health report; when a ``wait_for_*`` condition timed out (408) either raise an
    ``ApiError`` that says what the health was, or return it with ``timed_out`` True."""
    health = ClusterHealth.of(response)
    if response.meta.status == 408 and raise_on_timeout:
        raise ApiError(
            408,
            error_type="cluster_health_timeout",
            reason=f"the cluster did not reach the wait_for_* condition before the server-side "
            f"timeout: status {health.status}, {health.number_of_nodes} node(s), "
            f"{health.unassigned_shards} unassigned shard(s); give the call a longer timeout=, "
            "or pass raise_on_timeout=False to get the report",
            body=response.body,
            node=response.meta.node,
            headers=response.meta.headers,
        )
    return health


#: ``_cat`` columns that hold names or ids, never converted to numbers (an index may be called
#: ``2024``).
CAT_TEXT_COLUMNS = frozenset(
    {
        "alias",
        "cluster",
        "component",
        "host",
        "id",
        "index",
        "ip",
        "name",
        "node",
        "node.role",
        "repository",
        "routing.index",
        "routing.search",
        "snapshot",
        "template",
        "uuid",
        "version",
    }
)
_INT = re.compile(r"-?\d+")
_FLOAT = re.compile(r"-?\d+\.\d+")


def cat_value(column: str, value: Any) -> Any:
    """A ``_cat`` cell with the obvious number typed: ``"5"`` -> 5, ``"0.5"`` -> 0.5; sizes and
    times stay as sent unless asked in bytes/ms (the builder asks); names never change."""
    if not isinstance(value, str) or column in CAT_TEXT_COLUMNS:
        return value
    if _INT.fullmatch(value):
        return int(value)
    if _FLOAT.fullmatch(value):
        return float(value)
    return value


def cat_rows(body: Any) -> list[dict[str, Any]]:
    """A ``_cat`` answer (``format=json``) as a list of dicts with typed numbers."""
    if not isinstance(body, list):
        raise TypeError(f"a _cat answer with format=json is a list, not {type(body).__name__}")
    return [
        {k: cat_value(k, v) for k, v in row.items()} if isinstance(row, Mapping) else row
        for row in body
    ]


def search_contexts(stats: Any) -> dict[str, int]:
    """Sum, over the nodes of a ``GET /_nodes/stats/indices/search`` answer, the search contexts
    held open: ``open_contexts`` (every flavor; includes Elasticsearch PITs), ``scroll_current``
    and ``point_in_time_current`` (OpenSearch only; 0 elsewhere)."""
    totals = {"open_contexts": 0, "scroll_current": 0, "point_in_time_current": 0}
    nodes = stats.get("nodes") if isinstance(stats, dict) else None
    for node in (nodes or {}).values():
        search = node.get("indices", {}).get("search", {}) if isinstance(node, dict) else {}
        for key in totals:
            totals[key] += _int(search.get(key)) or 0
    return totals

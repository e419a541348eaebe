"""What server is on the other end, and the ONE place where flavors and versions differ.

Detection. OpenSearch says ``version.distribution: "opensearch"`` in ``GET /``; Elasticsearch
says nothing of the kind but has ``tagline: "You Know, for Search"`` and, from 7.x on,
``version.build_flavor``. A server that answers like neither is reported as ``unknown`` and
treated as Elasticsearch-compatible (best effort, one warning), never a crash. Elasticsearch 8+
builds without the ``rest-root`` module (the integ-test distributions) answer ``GET /`` with 405;
then ``GET /_nodes/_local`` and the ``X-Elastic-Product`` header tell the same facts
(:func:`parse_nodes_info`).

The dialect table (:data:`FEATURES`) lists what differs, as data, with the first version that has
each feature. Measured against Elasticsearch 7.17.29, 8.19.21, 9.5.4 and OpenSearch 1.3.20,
2.19.6, 3.8.0 (docs/compatibility.md, "Client API matrix"):

* point in time: Elasticsearch 7.10+ ``POST /{index}/_pit?keep_alive=`` answers ``{"id"}``,
  closed by ``DELETE /_pit {"id"}`` (404 once gone); OpenSearch 2.4+
  ``POST /{index}/_search/point_in_time?keep_alive=`` answers ``{"pit_id"}``, closed by
  ``DELETE /_search/point_in_time {"pit_id": [...]}`` (200 even once gone). OpenSearch 1.x has
  none. Searching a PIT is the same body (``"pit": {"id", "keep_alive"}``, no index in the path).
* a unique sort tiebreaker within a PIT: ``_shard_doc``, Elasticsearch 7.12+ (added implicitly to
  every PIT search) and OpenSearch 3.3+ (opensearch-project/OpenSearch#18924). Without it,
  ``search_after`` over ``_doc`` is not unique across shards (OpenSearch 2.19 returns the sort
  value ``[0]`` for the first document of every shard), so pages could skip or repeat documents:
  :func:`sturdysearch._core.flows.scan` uses scroll there instead.
* plugin REST prefix: OpenSearch ``_plugins`` (1.0+); Open Distro ``_opendistro``.

Not in the table, because no supported server differs (checked on all six):

* media types: plain ``application/json`` (and ``application/x-ndjson``) is accepted by every
  one. The compatibility type ``application/vnd.elasticsearch+json; compatible-with=N`` is only
  accepted for N = major or major - 1 by Elasticsearch (9 refuses 7, 8 refuses 9, with 400
  ``media_type_header_exception``), and ignored by OpenSearch; so we never send it.
  :attr:`Dialect.headers` is where a server that needs one would get it.
* document paths: typeless ``/{index}/_doc/{id}``, ``/_create/``, ``/_update/`` everywhere
  (Elasticsearch 7 still echoes ``"_type": "_doc"``; 6.x would need the index's type: warned).
* ``hits.total``: an object ``{"value", "relation"}`` everywhere unless
  ``rest_total_hits_as_int=true`` is passed (or on 6.x); results normalize both forms
  (:attr:`sturdysearch._core.results.SearchResult.total`).
* error bodies: a missing REST handler is 400 ``{"error": "no handler found for uri [...]"}``
  (a string, not an object) on OpenSearch and Elasticsearch 8+, 405 when the path exists for
  another method, and on Elasticsearch 7 / OpenSearch 1 a path like ``/{index}/_update_by_query``
  without the module is read as a typed document path (``Invalid type: expecting [_doc]``).
  :func:`missing_module_hint` names the module that is missing.
* ``_nodes/stats/indices/search``: ``open_contexts`` and ``scroll_current`` everywhere;
  ``point_in_time_current`` only on OpenSearch (Elasticsearch counts PITs in ``open_contexts``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sturdysearch._core.request import RequestSpec, index_segment, param_value
from sturdysearch._core.serialize import dumps
from sturdysearch.errors import ApiError, ConfigError, MalformedResponseError, UnsupportedApiError

logger = logging.getLogger("sturdysearch")

_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """The answer to ``GET /``, typed."""

    flavor: str
    """``elasticsearch``, ``opensearch`` or ``unknown``."""
    version: str
    """As the server reports it, e.g. ``2.19.6`` or ``9.5.4``."""
    version_tuple: tuple[int, int, int]
    build_flavor: str | None
    cluster_name: str | None
    cluster_uuid: str | None
    node_name: str | None
    lucene_version: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def major(self) -> int:
        return self.version_tuple[0]

    def __str__(self) -> str:
        return f"{self.flavor} {self.version}"


def parse_server_info(body: Any, node: str) -> ServerInfo:
    """Build :class:`ServerInfo`; a body without a usable version raises
    ``MalformedResponseError`` (this is not an Elasticsearch/OpenSearch root endpoint)."""
    if not isinstance(body, dict) or not isinstance(body.get("version"), dict):
        raise MalformedResponseError(
            "GET / did not return an Elasticsearch/OpenSearch root document (no 'version' "
            "object); is this URL a search cluster?",
            node=node,
            body_prefix=repr(body)[:200].encode(),
        )
    version = body["version"]
    number = version.get("number")
    match = _VERSION.match(number) if isinstance(number, str) else None
    if match is None:
        raise MalformedResponseError(
            f"GET / returned version.number={number!r}, not a version", node=node
        )
    distribution = version.get("distribution")
    if distribution == "opensearch":
        flavor = "opensearch"
    elif distribution is None and body.get("tagline") == "You Know, for Search":
        flavor = "elasticsearch"
    else:
        flavor = "unknown"

    def text(mapping: dict[str, Any], key: str) -> str | None:
        value = mapping.get(key)
        return value if isinstance(value, str) else None

    return ServerInfo(
        flavor=flavor,
        version=number,
        version_tuple=(int(match[1]), int(match[2]), int(match[3])),
        build_flavor=text(version, "build_flavor"),
        cluster_name=text(body, "cluster_name"),
        cluster_uuid=text(body, "cluster_uuid"),
        node_name=text(body, "name"),
        lucene_version=text(version, "lucene_version"),
        raw=body,
    )


def parse_nodes_info(body: Any, headers: Mapping[str, str], node: str) -> ServerInfo:
    """Build :class:`ServerInfo` from ``GET /_nodes/_local`` when ``GET /`` is not served.

    The node info has the version and, on Elasticsearch, ``build_flavor``; the flavor comes from
    the ``X-Elastic-Product: Elasticsearch`` header (Elasticsearch 7.14+) or from
    ``build_flavor`` (only Elasticsearch has it). Raises ``MalformedResponseError`` when the body
    has no node with a version.
    """
    nodes = body.get("nodes") if isinstance(body, dict) else None
    info = next(iter(nodes.values()), None) if isinstance(nodes, dict) and nodes else None
    if not isinstance(info, dict) or not isinstance(info.get("version"), str):
        raise MalformedResponseError(
            "GET /_nodes/_local did not describe a node with a version; is this URL a search "
            "cluster?",
            node=node,
            body_prefix=repr(body)[:200].encode(),
        )
    product = headers.get("x-elastic-product")
    flavor = (
        "elasticsearch"
        if product == "Elasticsearch" or isinstance(info.get("build_flavor"), str)
        else "unknown"
    )
    version: dict[str, Any] = {"number": info["version"]}
    if isinstance(info.get("build_flavor"), str):
        version["build_flavor"] = info["build_flavor"]
    root: dict[str, Any] = {"name": info.get("name"), "version": version}
    if isinstance(body.get("cluster_name"), str):
        root["cluster_name"] = body["cluster_name"]
    parsed = parse_server_info(root, node)
    return ServerInfo(
        flavor=flavor,
        version=parsed.version,
        version_tuple=parsed.version_tuple,
        build_flavor=parsed.build_flavor,
        cluster_name=parsed.cluster_name,
        cluster_uuid=None,
        node_name=parsed.node_name,
        lucene_version=None,
        raw=body,
    )


# -- the dialect table -----------------------------------------------------------------------

#: What differs, as data: ``(flavor, first version that has it, feature, value)``. A later row
#: for the same feature overrides an earlier one once the server's version reaches it.
FEATURES: tuple[tuple[str, tuple[int, int, int], str, str], ...] = (
    ("elasticsearch", (7, 10, 0), "pit", "elasticsearch"),
    ("elasticsearch", (7, 12, 0), "pit_tiebreaker", "_shard_doc"),
    ("opensearch", (1, 0, 0), "plugins_prefix", "_plugins"),
    ("opensearch", (2, 4, 0), "pit", "opensearch"),
    ("opensearch", (3, 3, 0), "pit_tiebreaker", "_shard_doc"),
)

#: Majors this client was tested against, per flavor (``[low, high)``); others work best effort
#: and are warned about once per client.
TESTED_MAJORS: Mapping[str, tuple[int, int]] = {
    "elasticsearch": (7, 10),
    "opensearch": (1, 4),
}


@dataclass(frozen=True, slots=True)
class Dialect:
    """How to talk to one server: a value computed from :class:`ServerInfo` by
    :func:`dialect_for`. Every flavor- or version-dependent request goes through here."""

    server: ServerInfo | None
    """What was detected; ``None`` when detection was not possible (e.g. no permission)."""
    pit: str | None = None
    """Point-in-time API style: ``"elasticsearch"``, ``"opensearch"`` or ``None`` (none)."""
    pit_tiebreaker: str | None = None
    """A sort field unique per document within a PIT (``_shard_doc``), or ``None``."""
    plugins_prefix: str | None = None
    """``_plugins`` (OpenSearch), ``_opendistro`` (Open Distro) or ``None``."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Extra request headers the server needs; empty for every server tested (see above)."""
    warning: str | None = None
    """Why this server is handled on a best-effort basis, or ``None`` when it was tested."""
    serverless: bool = False
    """Amazon OpenSearch Serverless: fixed, not detected (see :func:`serverless_dialect`)."""

    @property
    def scan_uses_pit(self) -> bool:
        """Whether ``scan`` can page with PIT + ``search_after`` (needs a unique tiebreaker)."""
        return self.pit is not None and self.pit_tiebreaker is not None

    def open_pit(
        self, index: str | list[str] | tuple[str, ...], keep_alive: str, *, timeout: float | None
    ) -> RequestSpec:
        """Open a PIT. Idempotent: a resend after the first one arrived opens a second PIT that
        nobody closes, which the server drops after ``keep_alive``; losing the whole scan to one
        reset connection would be worse."""
        if self.pit is None:
            raise UnsupportedApiError(
                f"{self.describe()} has no point-in-time API (Elasticsearch 7.10+, OpenSearch "
                "2.4+); use scroll"
            )
        suffix = "_pit" if self.pit == "elasticsearch" else "_search/point_in_time"
        return RequestSpec(
            "POST",
            f"/{index_segment(index)}/{suffix}",
            params={"keep_alive": keep_alive},
            idempotent=True,
            timeout=timeout,
        )

    def pit_id(self, body: Any) -> str:
        """The id in an open-PIT answer (``id`` on Elasticsearch, ``pit_id`` on OpenSearch)."""
        key = "id" if self.pit == "elasticsearch" else "pit_id"
        value = body.get(key) if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            raise MalformedResponseError(f"opening a point in time returned no {key!r}: {body!r}")
        return value

    def close_pit(self, pit_id: str, *, timeout: float | None) -> RequestSpec:
        """Close a PIT; a PIT already gone is not an error (404 ignored)."""
        if self.pit is None:
            raise UnsupportedApiError(f"{self.describe()} has no point-in-time API")
        body: dict[str, Any]
        if self.pit == "elasticsearch":
            path, body = "/_pit", {"id": pit_id}
        else:
            path, body = "/_search/point_in_time", {"pit_id": [pit_id]}
        return RequestSpec(
            "DELETE",
            path,
            body=dumps(body),
            idempotent=True,
            ignore=frozenset({404}),
            timeout=timeout,
        )

    def describe(self) -> str:
        return str(self.server) if self.server is not None else "this server (not detected)"


def dialect_for(server: ServerInfo | None) -> Dialect:
    """The dialect of ``server``: the table applied to its flavor and version, with a warning
    for servers outside the tested range. ``None`` (not detectable) gives the most conservative
    dialect: no PIT (scan uses scroll), no extra headers."""
    if server is SERVERLESS:
        return serverless_dialect()
    if server is None:
        return Dialect(
            None,
            warning="the server's flavor and version could not be detected (GET / and "
            "GET /_nodes/_local were refused); using conservative defaults: scan uses scroll",
        )
    features: dict[str, str] = {}
    flavor = server.flavor
    for row_flavor, since, name, value in FEATURES:
        if row_flavor == flavor and server.version_tuple >= since:
            features[name] = value
    if flavor == "unknown":
        distribution = server.raw.get("version", {}).get("distribution") if server.raw else None
        if distribution == "opendistro":
            features["plugins_prefix"] = "_opendistro"
    warning = None
    tested = TESTED_MAJORS.get(flavor)
    if tested is None:
        warning = (
            f"the server at {server.node_name or 'this node'} reports version {server.version} "
            "but is neither Elasticsearch nor OpenSearch as far as its GET / answer shows; "
            "treating it as Elasticsearch-compatible without point in time (scan uses scroll)"
        )
    elif not tested[0] <= server.major < tested[1]:
        warning = (
            f"{server} is outside the versions sturdysearch was tested with "
            f"({flavor} {tested[0]}.x to {tested[1] - 1}.x); continuing best effort"
        )
    return Dialect(
        server,
        pit=features.get("pit"),
        pit_tiebreaker=features.get("pit_tiebreaker"),
        plugins_prefix=features.get("plugins_prefix"),
        warning=warning,
    )


# -- Amazon OpenSearch Serverless -----------------------------------------------------------

#: What a client signing for ``aoss`` talks to. Serverless has no root endpoint (``GET /`` is
#: 404) and reports no version, so nothing is detected: its REST API is OpenSearch's 2.x one,
#: with OpenSearch's point in time (``POST /{index}/_search/point_in_time``) and without
#: scroll. No unique PIT tiebreaker is known there, so ``scan`` is not available: page with
#: ``open_point_in_time`` and ``search_after`` over a sort that is unique per document.
SERVERLESS = ServerInfo(
    flavor="opensearch",
    version="serverless",
    version_tuple=(2, 19, 0),
    build_flavor=None,
    cluster_name=None,
    cluster_uuid=None,
    node_name=None,
    lucene_version=None,
    raw={},
)

#: First path segments (after an index name, for index operations) that Serverless does not
#: serve, with the reason given to the caller. From AWS's "Supported operations and plugins in
#: Amazon OpenSearch Serverless"; only families that are absent by design are listed (AWS
#: runs the cluster, its nodes and shards), so that nothing Serverless may serve is refused.
SERVERLESS_MISSING_ROOTS: Mapping[str, str] = {
    "_cluster": "cluster APIs: AWS runs the cluster, there is no health, state or settings",
    "_nodes": "node APIs: Serverless has no nodes to list, sniff or read stats from",
}
SERVERLESS_MISSING_CAT: Mapping[str, str] = {
    name: "this _cat API describes nodes, shards or cluster internals, which AWS manages; "
    "_cat/indices is served"
    for name in (
        "allocation",
        "cluster_manager",
        "fielddata",
        "health",
        "master",
        "nodeattrs",
        "nodes",
        "pending_tasks",
        "plugins",
        "recovery",
        "repositories",
        "segment_replication",
        "segments",
        "shards",
        "snapshots",
        "tasks",
        "thread_pool",
    )
}
SERVERLESS_MISSING_INDEX_OPS: Mapping[str, str] = {
    "_refresh": "Serverless refreshes on its own schedule; search again until the documents "
    "show up",
    "_flush": "AWS manages flushing",
    "_forcemerge": "AWS manages segment merging",
    "_cache": "AWS manages the caches",
    "_shrink": "AWS manages shards",
    "_split": "AWS manages shards",
    "_clone": "AWS manages shards",
}
_NO_SCROLL = (
    "Serverless has no scroll; page with open_point_in_time and search_after over a sort that "
    "is unique per document"
)


def serverless_dialect() -> Dialect:
    """The fixed dialect of OpenSearch Serverless: OpenSearch's point in time, and no unique
    tiebreaker known (``scan`` would fall back to scroll, which Serverless refuses with the
    reason, before sending)."""
    return Dialect(SERVERLESS, pit="opensearch", plugins_prefix="_plugins", serverless=True)


def refuse_for_serverless(spec: RequestSpec) -> None:
    """Raise ``UnsupportedApiError`` when OpenSearch Serverless cannot serve ``spec``."""
    why = serverless_refusal(spec)
    if why is not None:
        raise UnsupportedApiError(why)


def check_serverless_options(*, sniffing: bool) -> None:
    """Refuse client options that cannot work against Serverless, at construction."""
    if sniffing:
        raise ConfigError(
            "OpenSearch Serverless has no nodes to sniff (no _nodes API): drop sniff_on_start, "
            "sniff_interval and sniff_on_node_failure; the collection endpoint is the only URL"
        )


def serverless_refusal(spec: RequestSpec) -> str | None:
    """Why OpenSearch Serverless cannot serve ``spec``, or ``None`` when it may. Checked
    before sending, by a client signing for ``aoss``: what Serverless lacks by design is
    refused with a reason here instead of a 404 or 400 from AWS after the round trip."""
    segments = spec.path.strip("/").split("/")
    first = segments[0]
    second = segments[1] if len(segments) > 1 else ""
    why: str | None = None
    if first.startswith("_"):
        why = SERVERLESS_MISSING_ROOTS.get(first) or SERVERLESS_MISSING_INDEX_OPS.get(first)
        if first == "_cat":
            why = SERVERLESS_MISSING_CAT.get(second)
        elif first == "_search" and second == "scroll":
            why = _NO_SCROLL
    else:
        why = SERVERLESS_MISSING_INDEX_OPS.get(second)
    if why is not None:
        return f"OpenSearch Serverless does not serve {spec.method} {spec.path}: {why}"
    params = spec.params or {}
    refresh = params.get("refresh")
    if refresh is not None and param_value(refresh) in ("true", "wait_for", ""):
        return (
            f"OpenSearch Serverless does not support refresh={param_value(refresh) or 'true'} "
            f"({spec.method} {spec.path}): writes become searchable on its own schedule; drop "
            "refresh= (or pass refresh=False) and search again until the documents show up"
        )
    if params.get("scroll") is not None:
        return f"OpenSearch Serverless does not support scroll= ({spec.method} {spec.path}): " + (
            _NO_SCROLL
        )
    return None


# -- errors that mean "this build lacks a module" ---------------------------------------------

#: Path piece -> the server module that serves it. Minimal builds (the integ-test distributions
#: of Elasticsearch 7-9 and OpenSearch 1-2) ship without these modules.
MODULE_PATHS: tuple[tuple[str, str], ...] = (
    ("/_delete_by_query", "reindex"),
    ("/_update_by_query", "reindex"),
    ("/_reindex", "reindex"),
    ("/_search/template", "lang-mustache"),
    ("/_render/template", "lang-mustache"),
    ("/_msearch/template", "lang-mustache"),
)

#: Error texts that show the path was not routed to its API.
_UNROUTED = ("no handler found", "Incorrect HTTP method", "Invalid type: expecting [_doc]")
_UNROUTED_TYPES = ("invalid_type_name_exception", "invalid_index_name_exception")
_UNRECOGNIZED = "contains unrecognized parameter"
_SCRIPT_LANG = re.compile(r"script_lang not supported \[(\w+)\]|unsupported lang \[(\w+)\]")


def missing_module_hint(error: ApiError, path: str) -> str | None:
    """If ``error`` (the answer to a request for ``path``) shows that the server lacks the
    module serving that API, say which module; else ``None``."""
    text = repr(error.body) + " " + (error.reason or "")
    match = _SCRIPT_LANG.search(text)
    if match:
        lang = match[1] or match[2]
        module = "lang-painless" if lang == "painless" else f"lang-{lang}"
        return f"this server has no '{lang}' script language: its build lacks the {module} module"
    for piece, module in MODULE_PATHS:
        if piece not in path:
            continue
        routed_elsewhere = (
            any(marker in text for marker in _UNROUTED)
            or error.error_type in _UNROUTED_TYPES
            or (_UNRECOGNIZED in text and error.status == 400)
        )
        if routed_elsewhere:
            return (
                f"this server does not serve {piece}: its build lacks the {module} module "
                "(minimal and integ-test distributions ship without it); install the module "
                "or use a full distribution"
            )
    return None


def with_hint(error: ApiError, path: str) -> ApiError:
    """``error`` itself, or a copy of the same class whose reason names the missing module."""
    hint = missing_module_hint(error, path)
    if hint is None:
        return error
    amended = type(error)(
        error.status,
        error_type=error.error_type,
        reason=f"{error.reason or 'request refused'} ({hint})",
        root_cause=error.root_cause,
        body=error.body,
        node=error.node,
        headers=error.headers,
    )
    amended.__cause__ = error
    return amended

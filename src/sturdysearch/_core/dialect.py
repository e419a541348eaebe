"""What server is on the other end: flavor and version, from the answer to ``GET /``.

OpenSearch says ``version.distribution: "opensearch"``; Elasticsearch says nothing of the kind
but has ``tagline: "You Know, for Search"`` and, from 7.x on, ``version.build_flavor``. A server
that answers like neither is reported as ``unknown`` and treated as Elasticsearch-compatible
(best effort), never a crash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sturdysearch.errors import MalformedResponseError

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

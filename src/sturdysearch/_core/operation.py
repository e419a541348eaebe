"""Which API endpoint a request is, from its method and path: ``POST /logs/_search`` is
``search`` with ``index=logs``.

Traces, metrics and logs name every call by the endpoint id the specifications use (the
OpenTelemetry conventions for Elasticsearch ask for it as ``db.operation.name``), also for calls
the generated methods did not build: ``client.request(...)``, the hand-written helpers, scans.
The answer comes from the generated table of every URL form (``_core/apis/_routes.py``), matched
segment by segment, literal segments before placeholders (``/_search`` is not an index called
``_search``). Only instrumented calls ask, and answers are cached by method and path shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import unquote

#: Path parts whose values are index names: they become ``db.collection.name``.
INDEX_PARTS = frozenset({"index", "target", "new_index"})


@dataclass(frozen=True, slots=True)
class Operation:
    """An identified request: the endpoint id, and the path parts with their decoded values."""

    name: str
    parts: tuple[tuple[str, str], ...] = ()

    @property
    def index(self) -> str | None:
        """The index (or indices, comma-joined) the request is about, if its path names one."""
        for key, value in self.parts:
            if key in INDEX_PARTS:
                return value
        return None


@dataclass(slots=True)
class _Node:
    literal: dict[str, _Node] = field(default_factory=dict)
    placeholder: _Node | None = None
    slot: str = ""
    #: method -> flavor ("elasticsearch" / "opensearch") -> endpoint id
    names: dict[str, dict[str, str]] = field(default_factory=dict)


@lru_cache(maxsize=1)
def _tree() -> _Node:
    from sturdysearch._core.apis._routes import ROUTES

    root = _Node()
    for name, flavor, methods, template in ROUTES:
        node = root
        for segment in template.split("/"):
            if not segment:
                continue
            if segment.startswith("{") and segment.endswith("}"):
                if node.placeholder is None:
                    node.placeholder = _Node(slot=segment[1:-1])
                node = node.placeholder
            else:
                node = node.literal.setdefault(segment, _Node())
        for method in methods.split(","):
            node.names.setdefault(method, {}).setdefault(flavor, name)
    return root


def _walk(
    node: _Node, segments: list[str], at: int, parts: list[tuple[str, str]]
) -> tuple[_Node, list[tuple[str, str]]] | None:
    if at == len(segments):
        return (node, parts) if node.names else None
    segment = segments[at]
    child = node.literal.get(segment)
    if child is not None:
        found = _walk(child, segments, at + 1, parts)
        if found is not None:
            return found
    if node.placeholder is not None:
        slot = node.placeholder.slot
        return _walk(node.placeholder, segments, at + 1, [*parts, (slot, unquote(segment))])
    return None


def identify(method: str, path: str, flavor: str | None = None) -> Operation | None:
    """The endpoint ``method path`` calls, or ``None`` for a path no specification lists."""
    return _identify(method, path.split("?", 1)[0], flavor)


@lru_cache(maxsize=2048)
def _identify(method: str, path: str, flavor: str | None) -> Operation | None:
    segments = [s for s in path.split("/") if s]
    found = _walk(_tree(), segments, 0, [])
    if found is None:
        return None
    leaf, parts = found
    by_flavor = leaf.names.get(method.upper())
    if by_flavor is None:
        # The specifications list the methods servers accept most of the time; a GET sent to a
        # POST-only form (or the other way round) is still that endpoint.
        by_flavor = next(iter(leaf.names.values()))
    name = (
        by_flavor.get(flavor or "")
        or by_flavor.get("elasticsearch")
        or next(iter(by_flavor.values()))
    )
    return Operation(name, tuple(parts))

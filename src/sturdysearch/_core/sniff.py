"""Node discovery: turn a ``GET _nodes/http`` answer into node addresses.

Both servers answer with ``nodes.<id>.http.publish_address`` in one of these forms:
``10.0.0.5:9200``, ``hostname/10.0.0.5:9200`` (when the node was configured by name),
``[::1]:9200`` or ``hostname/[::1]:9200``. When a name is published before the slash, the client
connects to that name (TLS certificates name hosts, and the name survives IP changes), as the
official clients do; otherwise to the address.

Nodes whose only roles are master / cluster_manager (dedicated masters) are skipped: sending
them search traffic defeats the point of dedicating them. Elasticsearch and OpenSearch both list
``roles``; OpenSearch 2+ says ``cluster_manager`` where older versions say ``master``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sturdysearch._core.nodes import NodeConfig

_MASTER_ROLES = frozenset({"master", "cluster_manager"})
#: Roles that do not serve requests on their own; a node with only these plus a master role
#: is still a dedicated master.
_PASSIVE_ROLES = frozenset({"voting_only", "remote_cluster_client", "ml", "transform"})


class SniffError(ValueError):
    """The answer is not a usable ``_nodes/http`` document."""


def parse_publish_address(address: str, *, scheme: str, path_prefix: str = "") -> NodeConfig:
    """Parse one ``publish_address``; raises ``SniffError`` on garbage."""
    text = address.strip()
    name = ""
    if "/" in text:
        name, _, text = text.partition("/")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise SniffError(f"bad publish_address {address!r}")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise SniffError(f"publish_address {address!r} has no port")
    try:
        port = int(port_text)
    except ValueError:
        raise SniffError(f"bad port in publish_address {address!r}") from None
    if not host or not 0 < port < 65536:
        raise SniffError(f"bad publish_address {address!r}")
    # Connect to the name when the node published one (TLS certificates name hosts); the IP
    # otherwise.
    return NodeConfig(scheme, name or host, port, path_prefix)


def is_dedicated_master(info: Mapping[str, Any]) -> bool:
    roles = info.get("roles")
    if isinstance(roles, list):
        role_set = {r for r in roles if isinstance(r, str)}
        return bool(role_set & _MASTER_ROLES) and not (role_set - _MASTER_ROLES - _PASSIVE_ROLES)
    # Pre-7 layout: attributes.master / attributes.data as strings.
    attributes = info.get("attributes")
    if isinstance(attributes, Mapping):
        return attributes.get("master") == "true" and attributes.get("data") == "false"
    return False


def parse_nodes_http(
    body: Any, *, scheme: str, path_prefix: str = ""
) -> tuple[list[NodeConfig], list[str]]:
    """Return ``(nodes, skipped)``: the HTTP-serving nodes, and a note for each node left out."""
    if not isinstance(body, Mapping) or not isinstance(body.get("nodes"), Mapping):
        raise SniffError("the _nodes/http answer has no 'nodes' object")
    nodes: list[NodeConfig] = []
    skipped: list[str] = []
    for node_id, info in body["nodes"].items():
        if not isinstance(info, Mapping):
            skipped.append(f"{node_id}: not an object")
            continue
        name = info.get("name", node_id)
        if is_dedicated_master(info):
            skipped.append(f"{name}: dedicated master")
            continue
        http = info.get("http")
        address = http.get("publish_address") if isinstance(http, Mapping) else None
        if not isinstance(address, str):
            skipped.append(f"{name}: no HTTP publish address (http disabled?)")
            continue
        try:
            node = parse_publish_address(address, scheme=scheme, path_prefix=path_prefix)
        except SniffError as exc:
            skipped.append(f"{name}: {exc}")
            continue
        if node not in nodes:
            nodes.append(node)
    return nodes, skipped


def adopt(
    found: list[NodeConfig], reachable: list[NodeConfig], current: tuple[NodeConfig, ...]
) -> tuple[list[NodeConfig] | None, str | None]:
    """Decide what a sniff changes: ``(new node list or None to keep the current one, warning)``.

    None of the discovered addresses answering from here is the publish_address trap (nodes
    behind Docker or Kubernetes NAT publish addresses only reachable inside): the current nodes
    stay, with a warning that says so.
    """
    if not found:
        return None, "sniffing found no HTTP node; keeping the current nodes"
    if not reachable:
        return None, (
            f"sniffing found {', '.join(n.url for n in found)}, but none answers from here "
            "(publish_address not reachable from this client, e.g. behind Docker or Kubernetes "
            f"NAT); keeping {', '.join(n.url for n in current)}. Turn sniffing off for this setup."
        )
    unreachable = [n for n in found if n not in reachable]
    warning = None
    if unreachable:
        warning = (
            f"sniffing: {', '.join(n.url for n in unreachable)} do not answer from here and are "
            "left out"
        )
    return reachable, warning

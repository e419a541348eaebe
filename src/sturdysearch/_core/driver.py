"""What the sync and async transports share besides the call plan: their state, the fixed
request headers of a node, and the operator view. No I/O here either."""

from __future__ import annotations

import logging
from typing import Any

from sturdysearch._core.budget import RetryBudget
from sturdysearch._core.config import USER_AGENT, ClientConfig
from sturdysearch._core.events import Tracer
from sturdysearch._core.health import NodeHealth
from sturdysearch._core.nodes import NodeConfig
from sturdysearch._core.retry import RetryPolicy

logger = logging.getLogger("sturdysearch")

#: Bodies smaller than this are not worth compressing.
COMPRESS_MIN = 1024


class TransportBase:
    """Node health, retry policy and budget, tracer, and the per-node fixed headers."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        retry: RetryPolicy | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.config = config
        self.retry = retry or RetryPolicy()
        self.tracer = tracer or Tracer()
        self.health = NodeHealth(config.nodes, config.health)
        self.budget = RetryBudget(config.budget)
        self._closed = False
        tls_nodes = [n.url for n in config.nodes if n.is_tls]
        if tls_nodes and config.tls.dangerously_skip_tls_verify:
            logger.warning(
                "TLS certificate verification is OFF (dangerously_skip_tls_verify=True): anyone "
                "on the network path between this process and %s can read and alter the traffic, "
                "credentials included",
                ", ".join(tls_nodes),
            )

    def header_pairs(self, node: NodeConfig) -> list[tuple[str, str]]:
        """Headers sent with every request to ``node`` (credentials included: handle with
        care, never log)."""
        headers = [
            ("host", node.host_header),
            ("user-agent", USER_AGENT),
            ("accept", "application/json"),
        ]
        if self.config.http_compress:
            headers.append(("accept-encoding", "gzip"))
        if self.config.authorization is not None:
            headers.append(("authorization", self.config.authorization.reveal()))
        headers.extend(self.config.headers)
        return headers

    def status_rows(
        self, now: float, pools: dict[NodeConfig, dict[str, int]]
    ) -> list[dict[str, Any]]:
        rows = self.health.snapshot(now)
        for row, node in zip(rows, self.health.nodes, strict=True):
            if node in pools:
                row["pool"] = {**pools[node], "max": self.config.pool.connections_per_node}
        return rows

    def emit_attempt(
        self,
        method: str,
        path: str,
        node: NodeConfig,
        attempt: int,
        outcome: str,
        status: int | None,
        duration: float,
    ) -> None:
        if self.tracer.active:
            self.tracer.emit(
                "request.attempt",
                node=node.url,
                method=method,
                path=path,
                attempt=attempt,
                outcome=outcome,
                status=status,
                duration=duration,
            )

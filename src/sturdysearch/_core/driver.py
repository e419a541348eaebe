"""What the sync and async transports share besides the call plan: their state, the fixed
request headers of a node, and the operator view. No I/O here either."""

from __future__ import annotations

import gzip
import logging
import random
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sturdysearch._core.budget import RetryBudget
from sturdysearch._core.config import USER_AGENT, ClientConfig
from sturdysearch._core.events import Tracer
from sturdysearch._core.health import NodeHealth
from sturdysearch._core.nodes import NodeConfig
from sturdysearch._core.plan import CallPlan, ejects
from sturdysearch._core.request import RequestSpec
from sturdysearch._core.responses import Response
from sturdysearch._core.retry import RetryPolicy
from sturdysearch._core.timeouts import Deadline, call_budget
from sturdysearch.errors import SturdySearchError, TransportError

logger = logging.getLogger("sturdysearch")

#: Bodies smaller than this are not worth compressing.
COMPRESS_MIN = 1024


#: The health probe: ``GET /``, every status returned (the driver judges it with
#: ``probe_answer_ok``), never retried.
PROBE_SPEC = RequestSpec("GET", "/", idempotent=True, ignore=frozenset(range(300, 600)))


@dataclass(slots=True)
class Exchange:
    """What one attempt sends, and how long it may take."""

    spec: RequestSpec
    deadline: Deadline
    read_timeout: float
    body: bytes | None
    headers: dict[str, str]
    """Per-call headers (content type and encoding included), on top of the node's fixed ones."""


@dataclass(slots=True)
class Call(Exchange):
    """One call as the drivers run it: the exchange, and the plan deciding its attempts."""

    plan: CallPlan
    hedge_after: float | None


def probe_exchange(now: float, budget: float) -> Exchange:
    """The exchange of one health probe with ``budget`` seconds."""
    return Exchange(PROBE_SPEC, Deadline(now, budget), budget, None, {})


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

    def _on_node_failure(self) -> None:
        """A node was ejected: drivers start their background prober (and sniffing)."""

    def start_call(self, spec: RequestSpec, guard: AbstractContextManager[object]) -> Call:
        """Everything a driver needs before the first attempt; no time is spent here.

        The clock (``time.monotonic``) and the random source are read here and in
        :meth:`attempt_failed` / :meth:`attempt_succeeded`, never in ``CallPlan``.
        """
        if self._closed:
            raise TransportError("the client is closed")
        deadline = Deadline(
            time.monotonic(),
            call_budget(self.config.timeouts, spec.timeout, long_running=spec.long_running),
        )
        body = spec.body
        headers = dict(spec.headers) if spec.headers else {}
        if body is not None:
            headers.setdefault("content-type", spec.content_type)
            if self.config.http_compress and len(body) >= COMPRESS_MIN:
                body = gzip.compress(body, compresslevel=1)
                headers["content-encoding"] = "gzip"
        plan = CallPlan(
            spec,
            deadline,
            retry=self.retry,
            budget=self.budget,
            health=self.health,
            guard=guard,
            tracer=self.tracer,
        )
        hedging = spec.idempotent and len(self.health.nodes) > 1
        return Call(
            spec=spec,
            plan=plan,
            deadline=deadline,
            read_timeout=deadline.budget if spec.long_running else self.config.timeouts.read,
            body=body,
            headers=headers,
            hedge_after=self.config.hedge_after if hedging else None,
        )

    def attempt_failed(
        self, call: Call, node: NodeConfig, exc: SturdySearchError, started: float
    ) -> float:
        """Record a failed attempt; return the delay before the next one, or raise the error
        the caller should see."""
        now = time.monotonic()
        self.emit_attempt(
            call.spec.method,
            call.spec.path,
            node,
            call.plan.attempt,
            type(exc).__name__,
            getattr(exc, "status", None),
            now - started,
        )
        if ejects(exc):
            self._on_node_failure()
        return call.plan.failed(node, exc, now, random.random())

    def attempt_succeeded(
        self, call: Call, node: NodeConfig, response: Response, *, overtaken: bool = False
    ) -> None:
        if overtaken:
            call.plan.overtaken(node, time.monotonic(), random.random())
        else:
            call.plan.succeeded(node)
        self.emit_attempt(
            call.spec.method,
            call.spec.path,
            node,
            call.plan.attempt,
            "ok",
            response.meta.status,
            response.meta.duration,
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

"""The blocking call loop: pick a node, borrow a connection, exchange, decide, maybe retry.

Everything that decides lives in ``sturdysearch._core``; this module only waits (sockets,
``time.sleep``) and keeps the pools.
"""

from __future__ import annotations

import gzip
import logging
import random
import time

from sturdysearch._core.config import USER_AGENT, ClientConfig
from sturdysearch._core.events import Tracer
from sturdysearch._core.http1 import encode_head_block, encode_request
from sturdysearch._core.nodes import NodeConfig
from sturdysearch._core.outcome import build_response, failure_of, final_error
from sturdysearch._core.request import RequestSpec
from sturdysearch._core.responses import Response
from sturdysearch._core.retry import RetryPolicy
from sturdysearch._core.selector import RoundRobin
from sturdysearch._core.timeouts import Deadline, call_budget
from sturdysearch._sync.pool import NodePool
from sturdysearch.errors import DeadlineExceeded, SturdySearchError, TransportError
from sturdysearch.tls import build_ssl_context

logger = logging.getLogger("sturdysearch")
_monotonic = time.monotonic

#: Bodies smaller than this are not worth compressing.
_COMPRESS_MIN = 1024


class Transport:
    """Owns the pools and runs calls. Safe to share across threads."""

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
        needs_tls = any(node.is_tls for node in config.nodes)
        ssl_context = build_ssl_context(config.tls) if needs_tls else None
        if needs_tls and config.tls.dangerously_skip_tls_verify:
            logger.warning(
                "TLS certificate verification is OFF (dangerously_skip_tls_verify=True): anyone "
                "on the network path between this process and %s can read and alter the traffic, "
                "credentials included",
                ", ".join(n.url for n in config.nodes if n.is_tls),
            )
        self.pools: dict[NodeConfig, NodePool] = {
            node: NodePool(node, config.pool, config.tls, ssl_context, config.timeouts.connect)
            for node in config.nodes
        }
        self._selector = RoundRobin(config.nodes)
        self._fixed_heads = {node: self._fixed_head(node) for node in config.nodes}
        self._closed = False

    def _fixed_head(self, node: NodeConfig) -> bytes:
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
        return encode_head_block(headers)

    def close(self) -> None:
        self._closed = True
        for pool in self.pools.values():
            pool.close()

    def perform(self, spec: RequestSpec) -> Response:
        """Run one call to completion within its deadline; return the answer or raise."""
        if self._closed:
            raise TransportError("the client is closed")
        start = _monotonic()
        deadline = Deadline(
            start, call_budget(self.config.timeouts, spec.timeout, long_running=spec.long_running)
        )
        read_timeout = deadline.budget if spec.long_running else self.config.timeouts.read
        body = spec.body
        extra = dict(spec.headers) if spec.headers else {}
        if body is not None:
            extra.setdefault("content-type", spec.content_type)
            if self.config.http_compress and len(body) >= _COMPRESS_MIN:
                body = gzip.compress(body, compresslevel=1)
                extra["content-encoding"] = "gzip"
        method = spec.method
        head_request = method == "HEAD"
        tracer = self.tracer
        history: list[SturdySearchError] = []
        tried: list[NodeConfig] = []
        attempt = 0
        while True:
            attempt += 1
            node = self._selector.pick(tried)
            pool = self.pools[node]
            target = node.path_prefix + spec.target if node.path_prefix else spec.target
            t0 = _monotonic()
            try:
                conn = pool.acquire(deadline)
                try:
                    head, data, reusable = conn.exchange(
                        encode_request(method, target, self._fixed_heads[node], extra, body),
                        head_request=head_request,
                        deadline=deadline,
                        read_timeout=read_timeout,
                    )
                except BaseException:
                    pool.release(conn, reusable=False)
                    raise
                pool.release(conn, reusable=reusable)
                response = build_response(
                    head,
                    data,
                    node=node.url,
                    duration=_monotonic() - t0,
                    ignore=spec.ignore,
                    head_request=head_request,
                )
            except SturdySearchError as exc:
                now = _monotonic()
                failure = failure_of(exc)
                if tracer.active:
                    tracer.emit(
                        "request.attempt",
                        node=node.url,
                        method=method,
                        path=spec.path,
                        attempt=attempt,
                        outcome=type(exc).__name__,
                        status=getattr(exc, "status", None),
                        duration=now - t0,
                    )
                if failure is None:
                    raise final_error(exc, idempotent=spec.idempotent, history=history) from None
                decision = self.retry.decide(
                    failure,
                    attempt=attempt,
                    idempotent=spec.idempotent,
                    remaining=deadline.at - now,
                    rand=random.random(),
                )
                if not decision.retry:
                    if deadline.at - now <= 0 and not isinstance(exc, DeadlineExceeded):
                        history.append(exc)
                        raise final_error(
                            DeadlineExceeded(
                                f"the call's deadline of {deadline.budget:g} s passed after "
                                f"{attempt} attempt(s); last error: {exc}"
                            ),
                            idempotent=spec.idempotent,
                            history=history,
                        ) from exc
                    raise final_error(exc, idempotent=spec.idempotent, history=history) from None
                history.append(exc)
                tried.append(node)
                if tracer.active:
                    tracer.emit(
                        "request.retry",
                        node=node.url,
                        method=method,
                        path=spec.path,
                        attempt=attempt,
                        delay=decision.delay,
                        error=type(exc).__name__,
                    )
                if decision.delay > 0:
                    time.sleep(decision.delay)
                continue
            if tracer.active:
                tracer.emit(
                    "request.attempt",
                    node=node.url,
                    method=method,
                    path=spec.path,
                    attempt=attempt,
                    outcome="ok",
                    status=response.meta.status,
                    duration=response.meta.duration,
                )
            return response

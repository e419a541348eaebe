"""What the sync and async transports share besides the call plan: their state, the fixed
request headers of a node, and the operator view. No I/O here either."""

from __future__ import annotations

import gzip
import logging
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sturdysearch._core.auth import Auth
from sturdysearch._core.budget import RetryBudget
from sturdysearch._core.config import USER_AGENT, ClientConfig
from sturdysearch._core.counts import CallCounts
from sturdysearch._core.dialect import check_serverless_options, refuse_for_serverless
from sturdysearch._core.events import Tracer
from sturdysearch._core.health import NodeHealth, probe_answer_ok
from sturdysearch._core.http1 import ResponseHead, encode_head_block, encode_request_head
from sturdysearch._core.nodes import NodeConfig
from sturdysearch._core.observe import CallScope
from sturdysearch._core.outcome import build_response
from sturdysearch._core.plan import CallPlan, ejects
from sturdysearch._core.proxy import ProxyRoute, proxy_auth_error
from sturdysearch._core.request import RequestSpec
from sturdysearch._core.responses import Response
from sturdysearch._core.retry import RetryPolicy
from sturdysearch._core.sniff import SniffError, adopt, parse_nodes_http
from sturdysearch._core.timeouts import Deadline, call_budget
from sturdysearch.errors import (
    ApiError,
    AuthenticationError,
    AuthorizationError,
    SturdySearchError,
    TransportError,
)

logger = logging.getLogger("sturdysearch")

#: Bodies smaller than this are not worth compressing.
COMPRESS_MIN = 1024


#: Fixed headers a call may replace with its own (the framing ones it may not: see http1).
_FIXED_NAMES = frozenset({"accept", "user-agent", "accept-encoding", "authorization"})

_AUTHORIZATION = frozenset({"authorization"})

#: The health probe: ``GET /``, every status returned (the driver judges it with
#: ``probe_answer_ok``), never retried.
PROBE_SPEC = RequestSpec("GET", "/", idempotent=True, ignore=frozenset(range(300, 600)))


class EjectedMeanwhile(Exception):
    """Raised by a driver's attempt when its node was ejected while the call waited for a
    connection: nothing was sent, and the call chooses again (``CallPlan.requeue``)."""


@dataclass(slots=True)
class Exchange:
    """What one attempt sends, and how long it may take."""

    spec: RequestSpec
    deadline: Deadline
    read_timeout: float
    body: bytes | None
    headers: dict[str, str]
    """Per-call headers (content type and encoding included), on top of the node's fixed ones."""
    replaces: frozenset[str]
    """Names of fixed headers (``accept``, ``user-agent``...) that ``headers`` replaces."""
    scope: CallScope | None
    """What the instruments (traces, metrics, logs) see of the call; ``None``: nobody."""
    signer: Auth | None
    """A signing scheme (SigV4) that adds headers computed from each attempt's bytes."""


@dataclass(slots=True)
class Call(Exchange):
    """One call as the drivers run it: the exchange, and the plan deciding its attempts."""

    plan: CallPlan
    hedge_after: float | None


@dataclass(frozen=True, slots=True)
class BackgroundStep:
    """What the background prober does next: probe ``due`` nodes, sniff, or sleep ``wait``
    seconds (``None``: until woken, nothing is scheduled)."""

    due: list[NodeConfig]
    sniff: bool
    wait: float | None


#: The sniffing request: node addresses, bounded by the sniff timeout (set per call).
SNIFF_PATH = "/_nodes/http"


def probe_exchange(now: float, budget: float, signer: Auth | None = None) -> Exchange:
    """The exchange of one health probe with ``budget`` seconds (signed like any request when
    the client signs: a SigV4 endpoint refuses unsigned probes)."""
    return Exchange(PROBE_SPEC, Deadline(now, budget), budget, None, {}, frozenset(), None, signer)


class CallerTransport:
    """A client's transport as a view made by ``client.options(auth=...)`` sees it: every call
    carries the view's credentials; everything else (connections, node health, budget) is
    the client's own. ``perform`` hands back what the transport's does (a coroutine, for the
    asyncio driver), so one class serves both drivers."""

    __slots__ = ("auth", "transport")

    def __init__(self, transport: Any, auth: Auth) -> None:
        self.transport = transport
        self.auth = auth

    def perform(self, spec: RequestSpec) -> Any:
        return self.transport.perform(spec._replace(auth=self.auth))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class TransportBase:
    """Node health, retry policy and budget, tracer, and the per-node fixed headers."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        clock: Callable[[], float],
        rand: Callable[[], float],
        retry: RetryPolicy | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.clock = clock
        """The monotonic clock, handed in by the driver: the core reads no clock of its own."""
        self.rand = rand
        """Uniform random numbers in [0, 1) for jitter, handed in by the driver."""
        self.config = config
        self.retry = retry or RetryPolicy()
        self.tracer = tracer or Tracer()
        self.health = NodeHealth(config.nodes, config.health)
        self.budget = RetryBudget(config.budget)
        self.counts = CallCounts()
        self._closed = False
        self._fixed_heads: dict[NodeConfig, bytes] = {}
        proxy = config.proxy
        self._absolute: dict[NodeConfig, str] | None = (
            {} if proxy is not None and proxy.http is not None else None
        )
        """Per node reached through a plain-http proxy, the origin (``http://host:port``) its
        request targets start with (absolute-form); ``None`` when no node can be, so that a
        client without a proxy pays one attribute check per request."""
        self._fixed_names = _FIXED_NAMES | {name for name, _ in config.headers}
        self.signer: Auth | None = (
            config.auth if config.auth is not None and config.auth.signs else None
        )
        """The client's signing scheme, applied to every attempt and probe (``None``: none)."""
        self.serverless = config.auth is not None and config.auth.serverless
        """OpenSearch Serverless (SigV4 for ``aoss``): any answer to a probe shows a live node
        (there is no ``GET /``), and :meth:`start_call` refuses what Serverless lacks."""
        if self.serverless:
            sniff = config.sniff
            check_serverless_options(
                sniffing=sniff.on_start or sniff.on_node_failure or sniff.interval is not None
            )
        self._last_sniff = 0.0
        self._sniff_requested = config.sniff.on_start
        tls_nodes = [n.url for n in config.nodes if n.is_tls]
        if tls_nodes and config.tls.dangerously_skip_tls_verify:
            logger.warning(
                "TLS certificate verification is OFF (dangerously_skip_tls_verify=True): anyone "
                "on the network path between this process and %s can read and alter the traffic, "
                "credentials included",
                ", ".join(tls_nodes),
            )

    # -- the bytes of an attempt, and its answer: the same for both drivers -------------------

    def remember_headers(self, node: NodeConfig) -> None:
        """Encode ``node``'s fixed header lines once; each request then only joins them."""
        self._fixed_heads[node] = encode_head_block(self.header_pairs(node))
        if self._absolute is not None:
            route = self.proxy_route(node)
            if route is not None and not route.tunnel:
                self._absolute[node] = route.origin

    def _fixed_without(self, node: NodeConfig, names: Collection[str]) -> bytes:
        """``node``'s fixed header lines less those a call replaces (its own ``accept``, say):
        the slow path, only for calls that override a fixed header."""
        return encode_head_block((k, v) for k, v in self.header_pairs(node) if k not in names)

    def forget_headers(self, node: NodeConfig) -> None:
        self._fixed_heads.pop(node, None)
        if self._absolute is not None:
            self._absolute.pop(node, None)

    def proxy_route(self, node: NodeConfig) -> ProxyRoute | None:
        """How the pool of ``node`` connects through a proxy (``None``: directly), decided per
        node URL, so sniffed nodes follow the same rules as the seeds."""
        proxy = self.config.proxy
        return None if proxy is None else proxy.route(node, user_agent=USER_AGENT)

    def encode_for(self, call: Exchange, node: NodeConfig) -> tuple[bytes, bytes | None]:
        """The request's head and body for ``node``; then ``spec.on_send``, as they are about
        to be written. They are not joined: a bulk body is a megabyte, and a second fresh
        megabyte per request made glibc fault its pages in every time (0.35 us of CPU per bulk
        document; the blocking driver writes both with one ``sendmsg``). Drivers call it once
        they hold a connection and pass the result straight to the exchange, not through a
        local: keeping the request alive while the answer is parsed changed the heap's layout
        enough to cost a page fault per 4 KiB on every request."""
        spec = call.spec
        target = node.path_prefix + spec.target if node.path_prefix else spec.target
        fixed = self._fixed_heads[node]
        if call.replaces:
            fixed = self._fixed_without(node, call.replaces)
        headers = call.headers
        if call.scope is not None:
            number = call.plan.attempt if isinstance(call, Call) else 0
            added = call.scope.attempt_sent(node, number, self.clock())
            if added:
                # the caller's own (a traceparent or X-Opaque-Id given per call) win
                headers = {**added, **headers}
        if call.signer is not None:
            signed = call.signer.sign(spec.method, node.host_header, target, call.body)
            headers = {**headers, **dict(signed)}
        if self._absolute is not None:  # through a plain-http proxy: the absolute-form target
            target = self._absolute.get(node, "") + target
        head = encode_request_head(spec.method, target, fixed, headers, call.body)
        if spec.on_send is not None:
            spec.on_send()
        return head, call.body

    def answer(
        self, spec: RequestSpec, node: NodeConfig, head: ResponseHead, body: bytes, started: float
    ) -> Response:
        """The attempt's answer, classified (``build_response`` raises for non-2xx)."""
        try:
            return build_response(
                head,
                body,
                node=node.url,
                duration=self.clock() - started,
                ignore=spec.ignore,
                head_request=spec.method == "HEAD",
                decode=spec.decode,
            )
        except ApiError as exc:
            # A 407 to an absolute-form request is the proxy's, not the node's: say which
            # credentials to fix (and neither retry it nor blame the node).
            absolute = self._absolute
            if exc.status == 407 and absolute is not None and node in absolute:
                proxy = self.config.proxy
                assert proxy is not None and proxy.http is not None
                raise proxy_auth_error(proxy.http, node.url) from None
            raise

    def probe_ok(self, status: int) -> bool:
        """Whether a probe answered with ``status`` shows a serving node: see
        :func:`probe_answer_ok`; against OpenSearch Serverless any answer does, since it has no
        root endpoint (``GET /`` is 404 there) and a node that answers at all is up."""
        return self.serverless or probe_answer_ok(status)

    def _on_node_failure(self) -> None:
        """A node was ejected: drivers start their background prober (and sniffing)."""

    # -- background work: decisions shared by the prober thread and the prober task ---------

    def request_sniff_on_failure(self) -> None:
        if self.config.sniff.on_node_failure:
            self._sniff_requested = True

    def next_background_step(self, now: float) -> BackgroundStep:
        """Claim the probes that are due and decide whether to sniff; else how long to sleep.
        Drivers call it under their guard."""
        sniff = self.config.sniff
        due = self.health.due_probes(now)
        sniff_now = self._sniff_requested or (
            sniff.interval is not None and now - self._last_sniff >= sniff.interval
        )
        if sniff_now:
            self._sniff_requested = False
            self._last_sniff = now
        if due or sniff_now:
            return BackgroundStep(due, sniff_now, 0.0)
        waits = []
        next_probe = self.health.next_probe_at()
        if next_probe is not None:
            waits.append(next_probe - now)
        if sniff.interval is not None:
            waits.append(self._last_sniff + sniff.interval - now)
        return BackgroundStep([], False, max(0.01, min(waits)) if waits else None)

    def background_probe_done(self, node: NodeConfig, error: str | None) -> None:
        """Record a background probe's outcome (drivers call it under their guard)."""
        readmitted = self.health.probe_finished(
            node, ok=error is None, now=self.clock(), rand=self.rand(), error=error
        )
        if self.tracer.active:
            state = self.health.states.get(node)
            self.tracer.emit(
                "node.probe",
                node=node.url,
                ok=error is None,
                by="background",
                error=error,
                probes=state.probes if state is not None else None,
            )
        if readmitted:
            self.counts.readmissions += 1
            self.tracer.emit("node.readmitted", node=node.url)

    def probe_budget(self, deadline: Deadline | None, now: float) -> float:
        """Seconds one probe may take: the probe timeout, within the caller's deadline."""
        budget = self.config.health.probe_timeout
        return budget if deadline is None else min(budget, deadline.at - now)

    # -- sniffing ----------------------------------------------------------------------------

    def sniff_spec(self) -> RequestSpec:
        return RequestSpec("GET", SNIFF_PATH, idempotent=True, timeout=self.config.sniff.timeout)

    def sniffed_nodes(self, response: Response) -> list[NodeConfig] | None:
        """The HTTP nodes a ``_nodes/http`` answer lists, or ``None`` if it is unusable."""
        seed = self.health.nodes[0]
        try:
            found, skipped = parse_nodes_http(
                response.body, scheme=seed.scheme, path_prefix=seed.path_prefix
            )
        except SniffError as exc:
            logger.warning("sniffing: %s; keeping the current nodes", exc)
            return None
        for note in skipped:
            logger.debug("sniffing skipped %s", note)
        return found

    def adopt_sniffed(
        self, found: list[NodeConfig], reachable: list[NodeConfig]
    ) -> list[NodeConfig] | None:
        """Replace the node set with the reachable discoveries, or keep it (with a warning)
        when none answers from here. Returns the nodes removed, or ``None`` if nothing
        changed. Drivers call it under their guard."""
        adopted, warning = adopt(found, reachable, self.health.nodes)
        if warning:
            logger.warning("%s", warning)
        if adopted is None:
            return None
        added, removed = self.health.replace_nodes(adopted)
        if added or removed:
            self.tracer.emit(
                "nodes.sniffed", added=[n.url for n in added], removed=[n.url for n in removed]
            )
        return removed

    def start_call(self, spec: RequestSpec, guard: AbstractContextManager[object]) -> Call:
        """Everything a driver needs before the first attempt; no time is spent here.

        The clock and the random source the driver handed in are read here and in
        :meth:`attempt_failed` / :meth:`attempt_succeeded`, never in ``CallPlan``.
        """
        if self._closed:
            raise TransportError("the client is closed")
        if self.serverless:
            refuse_for_serverless(spec)  # before anything is sent, with the reason
        now = self.clock()
        deadline = Deadline(
            now, call_budget(self.config.timeouts, spec.timeout, long_running=spec.long_running)
        )
        body = spec.body
        # Caller headers replace the client's of the same name, whatever their case: sent
        # beside them, a second Content-Type or Accept is refused by the servers (400).
        headers = {k.lower(): v for k, v in spec.headers.items()} if spec.headers else {}
        signer = self.signer
        replaces = frozenset(headers) & self._fixed_names if headers else frozenset()
        if spec.auth is not None:
            # this call's credentials replace the client's (which may sign, or not)
            signer = spec.auth if spec.auth.signs else None
            fixed_auth = spec.auth.authorization()
            if fixed_auth is not None:
                headers["authorization"] = fixed_auth.reveal()
            replaces = replaces | _AUTHORIZATION  # the client's own is left out of the head
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
            counts=self.counts,
        )
        # A long-running call (a bulk request, a wait for a task) is slow by nature: a hedge
        # after ``hedge_after`` would send it twice nearly every time.
        hedging = spec.idempotent and not spec.long_running and len(self.health.nodes) > 1
        return Call(
            spec=spec,
            plan=plan,
            deadline=deadline,
            read_timeout=deadline.budget if spec.long_running else self.config.timeouts.read,
            body=body,
            headers=headers,
            replaces=replaces,
            scope=self.tracer.call_scope(spec, now, spec.parent)
            if self.tracer.instruments
            else None,
            hedge_after=self.config.hedge_after if hedging else None,
            signer=signer,
        )

    def attempt_failed(
        self, call: Call, node: NodeConfig, exc: SturdySearchError, started: float
    ) -> float:
        """Record a failed attempt; return the delay before the next one, or raise the error
        the caller should see."""
        now = self.clock()
        self.emit_attempt(
            call.spec.method,
            call.spec.path,
            node,
            call.plan.attempt,
            type(exc).__name__,
            getattr(exc, "status", None),
            now - started,
        )
        scope = call.scope
        if scope is not None:
            scope.attempt_done(
                node,
                call.plan.attempt,
                started=started,
                now=now,
                status=getattr(exc, "status", None),
                error=exc,
            )
        try:
            delay = call.plan.failed(node, exc, now, self.rand())
            if scope is not None:
                scope.retried()
            return delay
        finally:
            # After the plan has ejected the node, never before: the hook wakes the background
            # prober, which must find the node ejected. Woken first, it found nothing to probe
            # and slept until the next wake-up (up to 60 s), about one run in three.
            if ejects(exc) or call.plan.ejected_last:
                self._on_node_failure()

    def attempt_succeeded(
        self, call: Call, node: NodeConfig, response: Response, *, overtaken: bool = False
    ) -> None:
        if overtaken:
            call.plan.overtaken(node, self.clock(), self.rand())
        else:
            call.plan.succeeded(node)
        scope = call.scope
        if scope is not None:
            now = self.clock()
            status = response.meta.status
            if overtaken:  # the hedge answered; the primary was cancelled
                winner = next((n for n in self.health.nodes if n.url == response.meta.node), None)
                if winner is not None:
                    scope.attempt_done(
                        winner, call.plan.attempt, started=now, now=now, status=status, error=None
                    )
                scope.attempt_done(
                    node,
                    call.plan.attempt,
                    started=now,
                    now=now,
                    status=None,
                    error=None,
                    outcome="cancelled",
                )
            else:
                scope.attempt_done(
                    node, call.plan.attempt, started=now, now=now, status=status, error=None
                )
        self.emit_attempt(
            call.spec.method,
            call.spec.path,
            node,
            call.plan.attempt,
            "ok",
            response.meta.status,
            response.meta.duration,
        )

    def hedge_failed(
        self,
        call: Call,
        node: NodeConfig,
        exc: SturdySearchError,
        *,
        eject: bool,
        guard: AbstractContextManager[object],
    ) -> None:
        """A hedged second attempt on ``node`` failed: the node is ejected if the failure
        says so (and ``eject``: not once the race is won), the call goes on with the primary."""
        if eject and ejects(exc):
            with guard:
                ejected = self.health.eject(
                    node, now=self.clock(), rand=self.rand(), reason=str(exc)
                )
                live = len(self.health.live_nodes())
            if ejected:
                self.counts.ejections += 1
                self.tracer.emit(
                    "node.ejected", node=node.url, reason=type(exc).__name__, live=live
                )
        if call.scope is not None:
            now = self.clock()
            call.scope.attempt_done(
                node,
                call.plan.attempt,
                started=now,
                now=now,
                status=getattr(exc, "status", None),
                error=exc,
            )

    def call_done(self, call: Call, response: Response) -> None:
        """The call returned ``response``: counted, and the instruments told."""
        self.counts.calls += 1
        if call.scope is not None:
            call.scope.ended(self.clock(), response.meta.status, None)

    def call_failed(self, call: Call, exc: BaseException) -> None:
        """The call raised ``exc`` (cancellation included) to its caller."""
        self.counts.calls += 1
        self.counts.calls_failed += 1
        if isinstance(exc, (AuthenticationError, AuthorizationError)) and exc.credentials is None:
            auth = call.spec.auth if call.spec.auth is not None else self.config.auth
            exc.sent_with(
                repr(auth)
                if auth is not None
                else "no credentials (pass auth=, see sturdysearch.auth)"
            )
        if call.scope is not None:
            call.scope.ended(self.clock(), getattr(exc, "status", None), exc)

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
        # the client's own ``headers=`` replace the built-in ones of the same name
        own = {name for name, _ in self.config.headers}
        headers = [(k, v) for k, v in headers if k not in own]
        headers.extend(self.config.headers)
        route = self.proxy_route(node)
        if route is not None and not route.tunnel and route.proxy.authorization is not None:
            # absolute-form: every request authenticates to the proxy (a tunnel does so once,
            # in its CONNECT request)
            headers.append(("proxy-authorization", route.proxy.authorization.reveal()))
        return headers

    def stats(self) -> dict[str, Any]:
        """The counters of ``Client.stats``. Drivers call it under their guard."""
        budget = self.budget
        return {
            **self.counts.snapshot(),
            "probes_sent": self.health.probes_sent,
            "probes_by_node": {n.url: s.probes for n, s in self.health.states.items()},
            "retries_granted": budget.granted,
            "retries_denied": budget.denied,
            "retry_budget_balance": budget.balance,
            "live_nodes": len(self.health.live_nodes()),
            "nodes": len(self.health.nodes),
        }

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

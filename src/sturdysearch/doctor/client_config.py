"""The client's configuration: finite timeouts and deadline, retries with jitter inside a
budget, a pool sized for the application's concurrency, and proxy variables the client
ignores.

Pure: reads a :class:`~sturdysearch._core.config.ClientConfig` (``client.config``), the
client's retry policy and the environment; no server is needed, so these findings appear even
when no node answers.
"""

from __future__ import annotations

from collections.abc import Mapping

from sturdysearch._core.budget import BudgetConfig
from sturdysearch._core.config import ClientConfig, PoolConfig
from sturdysearch._core.retry import RetryPolicy
from sturdysearch._core.timeouts import Timeouts
from sturdysearch.doctor.findings import Finding, ok

LONG_DEADLINE = 120.0
"""Seconds: an interactive caller or a load balancer gives up long before this."""
PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def judge_timeouts(timeouts: Timeouts) -> Finding:
    shown = (
        f"connect {timeouts.connect:g} s, read {timeouts.read:g} s, deadline {timeouts.total:g} s"
    )
    if timeouts.total > LONG_DEADLINE:
        return Finding(
            "config.timeouts",
            "warn",
            f"per-call deadline of {timeouts.total:g} s ({shown})",
            "A call may hang this long before failing: threads and requests of the application "
            "pile up behind a sick node instead of failing over or reporting the error.",
            f"Keep timeout= at or below {LONG_DEADLINE:g} s for everyday calls; pass "
            "long_running=True on the few admin calls that need longer.",
        )
    if timeouts.read > timeouts.total:
        return Finding(
            "config.timeouts",
            "warn",
            f"read timeout above the deadline ({shown})",
            "The deadline always ends the call first, so the read timeout never applies and a "
            "slow node is not recognized as such before the whole call fails.",
            "Set read_timeout= below timeout=, e.g. a third of it, so one slow node costs a "
            "retry and not the call.",
        )
    return ok("config.timeouts", shown)


def judge_retries(policy: RetryPolicy, budget: BudgetConfig) -> Finding:
    shown = (
        f"{policy.max_attempts} attempts, full-jitter backoff {policy.backoff_base:g}-"
        f"{policy.backoff_cap:g} s, budget {budget.ratio:.0%} of calls"
    )
    if policy.max_attempts == 1:
        return Finding(
            "config.retries",
            "warn",
            f"retries are off ({shown})",
            "A single node restart, a reset connection or a 429 from a busy node fails the "
            "call, although another attempt would have succeeded.",
            "Allow at least 2-3 attempts: RetryPolicy(max_attempts=3) (the default).",
        )
    if budget.ratio > 0.5:
        return Finding(
            "config.retries",
            "warn",
            f"retry budget lets retries add {budget.ratio:.0%} load ({shown})",
            "When the cluster is overloaded, retries multiply its load exactly when it can "
            "least take it (a retry storm).",
            "Keep retry_budget_ratio= at 0.1-0.2.",
        )
    return ok("config.retries", shown)


def judge_pool(pool: PoolConfig, nodes: int, concurrency: int | None) -> Finding:
    capacity = pool.connections_per_node * nodes
    shown = f"{pool.connections_per_node} connections per node x {nodes} node(s) = {capacity}"
    if concurrency is None:
        return ok("config.pool", f"{shown} (pass --concurrency N to judge it)", capacity=capacity)
    if concurrency > capacity:
        return Finding(
            "config.pool",
            "warn",
            f"{concurrency} concurrent requests, {shown}",
            "Requests beyond the pool wait for a free connection, inside their deadline: "
            "latency grows with load and calls time out though the cluster is idle.",
            f"Set connections_per_node={-(-concurrency // nodes)} or more, or lower the "
            "application's concurrency.",
            details={"capacity": capacity, "concurrency": concurrency},
        )
    return ok("config.pool", f"{concurrency} concurrent requests fit: {shown}", capacity=capacity)


def judge_proxy_env(config: ClientConfig, environ: Mapping[str, str]) -> Finding:
    """Proxy variables set but not used: either the cluster is reached directly on purpose, or
    the application will fail where only the proxy gets out (a corporate network)."""
    proxy = getattr(config, "proxy", None)
    set_vars = sorted({name.upper() for name in PROXY_VARS if environ.get(name)})
    if proxy is not None:
        endpoints = {
            endpoint.url
            for endpoint in (getattr(proxy, "http", None), getattr(proxy, "https", None))
            if endpoint is not None
        }
        shown = ", ".join(sorted(endpoints)) or "configured"
        return ok("config.proxy", f"through proxy {shown}")
    if set_vars:
        return Finding(
            "config.proxy",
            "warn",
            f"{', '.join(set_vars)} set, but the client connects directly",
            "The environment names a proxy and this client ignores it (proxy_from_env is off "
            "and no proxy= is given). Fine if the cluster is reachable directly; where the "
            "proxy is the only way out, every connection times out.",
            "Pass proxy_from_env=True (with NO_PROXY for the exceptions) or proxy=..., or unset "
            "the variables if direct connections are meant.",
        )
    return ok("config.proxy", "no proxy configured or set in the environment")


def judge_config(
    config: ClientConfig,
    policy: RetryPolicy,
    concurrency: int | None,
    environ: Mapping[str, str],
) -> list[Finding]:
    return [
        judge_timeouts(config.timeouts),
        judge_retries(policy, config.budget),
        judge_pool(config.pool, len(config.nodes), concurrency),
        judge_proxy_env(config, environ),
    ]

"""A request's own retry policy replaces the client's for that call only."""

from __future__ import annotations

import threading

import pytest

from sturdysearch._core.budget import RetryBudget
from sturdysearch._core.events import Tracer
from sturdysearch._core.health import HealthConfig, NodeHealth
from sturdysearch._core.nodes import NodeConfig
from sturdysearch._core.plan import CallPlan
from sturdysearch._core.request import RequestSpec
from sturdysearch._core.retry import RetryPolicy
from sturdysearch._core.timeouts import Deadline
from sturdysearch.errors import ConnectionError

NODES = (NodeConfig("http", "127.0.0.1", 9200), NodeConfig("http", "127.0.0.1", 9201))


def _plan(spec: RequestSpec) -> CallPlan:
    return CallPlan(
        spec,
        Deadline(0.0, 30.0),
        retry=RetryPolicy(max_attempts=3),
        budget=RetryBudget(),
        health=NodeHealth(NODES, HealthConfig()),
        guard=threading.Lock(),
        tracer=Tracer(),
    )


def test_client_policy_retries_a_refused_connection() -> None:
    plan = _plan(RequestSpec("POST", "/_bulk", body=b"{}\n", idempotent=False))
    node = plan.choose(0.0).node
    delay = plan.failed(node, ConnectionError("refused", request_sent=False), 0.0, 0.5)
    assert delay >= 0.0


def test_spec_policy_of_one_attempt_turns_transport_retries_off() -> None:
    spec = RequestSpec(
        "POST", "/_bulk", body=b"{}\n", idempotent=True, retry=RetryPolicy(max_attempts=1)
    )
    plan = _plan(spec)
    node = plan.choose(0.0).node
    with pytest.raises(ConnectionError):
        plan.failed(node, ConnectionError("refused", request_sent=False), 0.0, 0.5)

"""The background prober is woken after the failed node is ejected, never before.

Woken before, it computed its next step while the node still counted as alive, found nothing to
probe and slept until the next wake-up (up to 60 s): the intermittent stall of the readmission
test in tests/integration/test_resilience.py. Real sockets: a loopback port nobody listens on
refuses the connection, which ejects the node.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from sturdysearch import AsyncClient, Client
from sturdysearch._async.transport import AsyncTransport
from sturdysearch._sync.transport import Transport
from sturdysearch.errors import SturdySearchError


def refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # closed again: connecting is refused


def test_blocking_prober_is_woken_after_the_ejection(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []
    original = Transport._on_node_failure

    def spy(self: Transport) -> None:
        seen.extend(state.alive for state in self.health.states.values())
        original(self)

    monkeypatch.setattr(Transport, "_on_node_failure", spy)
    with Client(refused_url(), timeout=2.0) as client:
        with pytest.raises(SturdySearchError):
            client.info()
    assert seen, "a refused connection must reach the node-failure hook"
    assert seen[0] is False, "the hook ran while the node still counted as alive"


def test_async_prober_is_woken_after_the_ejection(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []
    original = AsyncTransport._on_node_failure

    def spy(self: AsyncTransport) -> None:
        seen.extend(state.alive for state in self.health.states.values())
        original(self)

    monkeypatch.setattr(AsyncTransport, "_on_node_failure", spy)

    async def scenario() -> None:
        async with AsyncClient(refused_url(), timeout=2.0) as client:
            with pytest.raises(SturdySearchError):
                await client.info()

    asyncio.run(scenario())
    assert seen and seen[0] is False

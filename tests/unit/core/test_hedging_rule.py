"""Which calls may be hedged: idempotent ones, on a cluster of more than one node, and never a
long-running one (a bulk request or a wait for a task is slow by nature, so a hedge after
``hedge_after`` would send it twice nearly every time). Decided in ``start_call``, no I/O."""

from __future__ import annotations

import contextlib

import pytest

from sturdysearch import Client
from sturdysearch._core.request import RequestSpec

TWO_NODES = ["http://127.0.0.1:1", "http://127.0.0.1:2"]


@pytest.mark.parametrize(
    ("spec", "urls", "hedged"),
    [
        (RequestSpec("POST", "/_search", idempotent=True), TWO_NODES, True),
        (RequestSpec("GET", "/i/_doc/1", idempotent=True), TWO_NODES, True),
        (RequestSpec("POST", "/i/_doc", body=b"{}"), TWO_NODES, False),
        (
            RequestSpec("POST", "/_bulk", body=b"{}\n", idempotent=True, long_running=True),
            TWO_NODES,
            False,
        ),
        (RequestSpec("GET", "/_tasks/t", idempotent=True, long_running=True), TWO_NODES, False),
        (RequestSpec("POST", "/_search", idempotent=True), TWO_NODES[:1], False),
    ],
)
def test_what_is_hedged(spec: RequestSpec, urls: list[str], hedged: bool) -> None:
    with Client(urls, hedge_after=0.05) as client:
        call = client._transport.start_call(spec, contextlib.nullcontext())
    assert call.hedge_after == (0.05 if hedged else None)

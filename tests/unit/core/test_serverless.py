"""The OpenSearch Serverless dialect: a client signing for ``aoss`` knows the server without
asking, and refuses before sending what Serverless lacks (``sturdysearch._core.dialect``).

The clients here point at a port nothing listens on: a refusal that happened after sending
would surface as a ``ConnectionError``, not as ``UnsupportedApiError``. How probes and ``ping``
behave against a server without ``/`` is in ``tests/unit/testing/test_sigv4_proxy.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sturdysearch import AsyncClient, Client
from sturdysearch._core import api
from sturdysearch._core.dialect import (
    SERVERLESS,
    dialect_for,
    serverless_dialect,
    serverless_refusal,
)
from sturdysearch._core.request import RequestSpec
from sturdysearch.auth import AwsSigV4, BasicAuth
from sturdysearch.errors import ConfigError, UnsupportedApiError

NOWHERE = "http://127.0.0.1:9"  # discard port: nothing answers


def aoss(**options: Any) -> AwsSigV4:
    return AwsSigV4("us-east-1", "aoss", access_key="AKIDEXAMPLE", secret_key="secret", **options)


@pytest.fixture
def client() -> Iterator[Client]:
    with Client([NOWHERE], auth=aoss(), timeout=2) as c:
        yield c


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        (RequestSpec("GET", "/_cluster/health"), "GET /_cluster/health: cluster APIs"),
        (RequestSpec("PUT", "/_cluster/settings"), "cluster APIs"),
        (RequestSpec("GET", "/_nodes/stats"), "node APIs"),
        (RequestSpec("GET", "/_nodes/_local"), "node APIs"),
        (RequestSpec("GET", "/_cat/nodes"), "GET /_cat/nodes: this _cat API"),
        (RequestSpec("GET", "/_cat/shards/idx"), "_cat/indices is served"),
        (RequestSpec("POST", "/_refresh"), "refreshes on its own schedule"),
        (RequestSpec("POST", "/idx/_refresh"), "POST /idx/_refresh"),
        (RequestSpec("POST", "/idx,other/_forcemerge"), "merging"),
        (RequestSpec("POST", "/idx/_cache/clear"), "caches"),
        (RequestSpec("POST", "/_search/scroll"), "no scroll"),
        (RequestSpec("POST", "/idx/_search", params={"scroll": "1m"}), "scroll="),
        (RequestSpec("PUT", "/idx/_doc/1", params={"refresh": True}), "refresh=true"),
        (RequestSpec("PUT", "/idx/_doc/1", params={"refresh": "true"}), "refresh=true"),
        (RequestSpec("PUT", "/idx/_doc/1", params={"refresh": ""}), "refresh=true"),
        (RequestSpec("POST", "/_bulk", params={"refresh": "wait_for"}), "refresh=wait_for"),
        (RequestSpec("DELETE", "/idx/_doc/1", params={"refresh": True}), "DELETE /idx/_doc/1"),
    ],
)
def test_what_serverless_lacks(spec: RequestSpec, named: str) -> None:
    why = serverless_refusal(spec)
    assert why is not None and why.startswith("OpenSearch Serverless does not")
    assert named in why


@pytest.mark.parametrize(
    "spec",
    [
        RequestSpec("GET", "/"),
        RequestSpec("HEAD", "/"),
        RequestSpec("GET", "/_cat/indices", params={"format": "json"}),
        RequestSpec("GET", "/_cat/aliases"),
        RequestSpec("PUT", "/idx"),
        RequestSpec("PUT", "/idx/_doc/1", params={"refresh": False}),
        RequestSpec("PUT", "/idx/_doc/_refresh"),  # a document whose id is "_refresh"
        RequestSpec("POST", "/idx/_search"),
        RequestSpec("POST", "/_bulk"),
        RequestSpec("POST", "/idx/_search/point_in_time", params={"keep_alive": "1m"}),
        RequestSpec("DELETE", "/_search/point_in_time"),
        RequestSpec("GET", "/_snapshot/aoss-automated/_all"),
    ],
)
def test_what_serverless_serves(spec: RequestSpec) -> None:
    assert serverless_refusal(spec) is None


def test_the_dialect_is_fixed() -> None:
    dialect = serverless_dialect()
    assert dialect.serverless and dialect.server is SERVERLESS
    assert dialect.pit == "opensearch" and not dialect.scan_uses_pit
    assert dialect.warning is None
    assert dialect_for(SERVERLESS) == dialect
    assert dialect.describe() == "opensearch serverless"


def test_the_client_knows_the_dialect_without_a_request(client: Client) -> None:
    assert client.dialect().serverless
    assert client.info() is SERVERLESS


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda c: c.cluster.health(), "GET /_cluster/health"),
        (lambda c: c.nodes.stats(), "/_nodes"),
        (lambda c: c.cat.nodes(), "GET /_cat/nodes"),
        (lambda c: c.indices.refresh(index="idx"), "/idx/_refresh"),
        (lambda c: c.index(index="idx", id="1", document={}, refresh=True), "refresh=true"),
        (lambda c: c.index(index="idx", id="1", document={}, refresh="wait_for"), "wait_for"),
        (lambda c: c.delete(index="idx", id="1", refresh=True), "refresh=true"),
        (lambda c: c.search(index="idx", scroll="1m"), "scroll"),
        (lambda c: list(c.scan(index="idx")), "scroll"),
        (lambda c: c.request("GET", "/_cluster/state"), "GET /_cluster/state"),
        (lambda c: c.sniff(), "/_nodes/http"),
    ],
)
def test_missing_calls_fail_before_sending(
    client: Client, call: Callable[[Client], Any], named: str
) -> None:
    with pytest.raises(UnsupportedApiError, match="OpenSearch Serverless does not") as info:
        call(client)
    assert named in str(info.value)
    assert client.stats()["attempts"] == 0


def test_the_async_client_refuses_the_same() -> None:
    async def run() -> None:
        async with AsyncClient([NOWHERE], auth=aoss()) as client:
            assert (await client.dialect()).serverless
            with pytest.raises(UnsupportedApiError, match="_cluster/health"):
                await client.cluster.health()
            with pytest.raises(UnsupportedApiError, match="refresh=true"):
                await client.index(index="idx", id="1", document={}, refresh=True)

    asyncio.run(run())


@pytest.mark.parametrize(
    "options", [{"sniff_on_start": True}, {"sniff_interval": 60.0}, {"sniff_on_node_failure": True}]
)
def test_sniffing_is_refused_at_construction(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="no nodes to sniff"):
        Client([NOWHERE], auth=aoss(), **options)


def test_only_aoss_signing_makes_a_client_serverless() -> None:
    es = AwsSigV4("us-east-1", "es", access_key="AKIDEXAMPLE", secret_key="secret")
    for auth in (es, BasicAuth("u", "p"), None):
        with Client([NOWHERE], auth=auth) as client:  # noqa: SSP105 (one client per auth kind)
            assert not client._transport.serverless
            assert not client._transport.probe_ok(404)
    with Client([NOWHERE], auth=aoss()) as client:
        assert client._transport.probe_ok(404) and client._transport.probe_ok(500)


def test_the_request_specs_the_client_builds_are_judged() -> None:
    # The builders the client uses, not hand-made specs: the parameter spelling must match.
    assert serverless_refusal(api.index(index="i", id="1", document={}, refresh=True))
    assert serverless_refusal(api.index(index="i", id="1", document={})) is None
    assert serverless_refusal(api.search(index="i", query={"match_all": {}})) is None

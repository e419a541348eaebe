"""Broken answers and broken connections surface as typed errors; safe retries go elsewhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sturdysearch import Client
from sturdysearch.errors import (
    ApiError,
    ConnectionError,
    MalformedResponseError,
    ServerError,
    TooManyRequestsError,
)
from sturdysearch.testing.faults import Fault
from sturdysearch.testing.proxy import FaultProxy

MakeClient = Callable[..., Any]


MATCH_ALL = {"match_all": {}}


def test_html_error_page_from_a_proxy_keeps_status_and_first_bytes(
    make_client: MakeClient, proxy: FaultProxy
) -> None:
    page = b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"
    proxy.set_fault(Fault.status(502, headers={"Content-Type": "text/html"}, body=page))
    with make_client([proxy.url]) as client, pytest.raises(ServerError) as caught:
        client.request("DELETE", "/some-index")
    err = caught.value
    assert err.status == 502
    assert err.error_type is None
    assert isinstance(err.body, str) and "Bad Gateway" in err.body
    assert "Bad Gateway" in str(err)


def test_redirects_are_never_followed(make_client: MakeClient, proxy: FaultProxy) -> None:
    proxy.set_fault(Fault.status(301, headers={"Location": "http://evil.example/"}, body=b""))
    with (
        make_client([proxy.url], basic_auth=("u", "p")) as client,
        pytest.raises(ApiError) as caught,
    ):
        client.search(query=MATCH_ALL)
    assert caught.value.status == 301
    assert proxy.stats.requests_seen == 1


def test_non_2xx_always_raises_even_when_json(make_client: MakeClient, proxy: FaultProxy) -> None:
    body = (
        b'{"error":{"type":"es_rejected_execution_exception","reason":"queue full"},"status":429}'
    )
    proxy.set_fault(
        Fault.status(429, headers={"Content-Type": "application/json"}, body=body).times(5)
    )
    with make_client([proxy.url]) as client, pytest.raises(TooManyRequestsError) as caught:
        client.request("POST", "/_bulk", raw_body=b"\n", idempotent=False)
    assert caught.value.error_type == "es_rejected_execution_exception"
    assert caught.value.reason == "queue full"


def test_truncated_body_is_a_malformed_response(make_client: MakeClient, proxy: FaultProxy) -> None:
    proxy.set_fault(Fault.truncate(after_bytes=60))
    with make_client([proxy.url]) as client, pytest.raises(MalformedResponseError) as caught:
        client.request("POST", "/_doc_without_retry", raw_body=b"{}", idempotent=False)
    assert "truncated" in str(caught.value) or "closed" in str(caught.value)


def test_reset_mid_response_on_idempotent_call_is_retried(
    make_client: MakeClient, proxy: FaultProxy
) -> None:
    proxy.set_fault(
        Fault.reset_mid_response(after_bytes=30).matching(path_prefix="/_search").times(1)
    )
    with make_client([proxy.url]) as client:
        answer = client.search(query=MATCH_ALL)
    assert "hits" in answer
    # The search, the probe that re-admitted the only node, the search again.
    assert proxy.stats.requests_seen == 3


def test_reset_mid_response_on_non_idempotent_call_is_not_retried(
    make_client: MakeClient, proxy: FaultProxy, client: Client, index_name: str
) -> None:
    client.indices.create(index=index_name)
    proxy.set_fault(Fault.reset_mid_response(after_bytes=30).times(1))
    with make_client([proxy.url]) as through_proxy, pytest.raises(ConnectionError) as caught:
        through_proxy.index(index=index_name, document={"n": 1})
    assert caught.value.request_sent is True
    assert "may or may not have been applied" in str(caught.value)
    # The proxy forwarded the request whole before cutting the answer: it was applied once, and
    # a resend would have made a second document.
    client.indices.refresh(index=index_name)
    assert client.count(index=index_name)["count"] == 1


def test_create_without_id_reset_after_sending_is_not_duplicated(
    make_client: MakeClient, proxy: FaultProxy, client: Client, index_name: str
) -> None:
    client.indices.create(index=index_name)
    proxy.set_fault(Fault.reset_after_request().times(1))
    with make_client([proxy.url]) as through_proxy, pytest.raises(ConnectionError) as caught:
        through_proxy.index(index=index_name, document={"n": 1}, refresh=True)
    assert "may or may not have been applied" in str(caught.value)
    # The server did apply it (the proxy forwarded it), exactly once.
    client.indices.refresh(index=index_name)
    assert client.count(index=index_name)["count"] == 1


def test_reset_before_request_is_retried_even_for_writes(
    make_client: MakeClient, proxy: FaultProxy, client: Client, index_name: str
) -> None:
    only_docs = Fault.reset_before_request().matching(path_prefix=f"/{index_name}").times(1)
    proxy.set_fault(only_docs)
    with make_client([proxy.url]) as through_proxy:
        # The reset arrives before the server saw anything, but the client cannot know that:
        # from its side the bytes were written. A write without id is therefore not resent.
        with pytest.raises(ConnectionError):
            through_proxy.index(index=index_name, document={"n": 1})
        # With an id the same write is idempotent and goes through on the retry.
        proxy.set_fault(only_docs)
        through_proxy.index(index=index_name, id="x", document={"n": 1}, refresh=True)
    assert client.count(index=index_name)["count"] == 1


def test_refused_node_fails_over_to_a_live_one(make_client: MakeClient, node_url: str) -> None:
    with FaultProxy(node_url) as dead, FaultProxy(node_url) as alive:
        dead.set_fault(Fault.refuse())
        with make_client([dead.url, alive.url]) as client:
            for _ in range(6):
                client.index(index="failover-probe", document={"n": 1})  # even non-idempotent
        assert alive.stats.requests_seen == 6
    with make_client([node_url]) as c:
        c.indices.delete(index="failover-probe", ignore=404)


def test_all_nodes_refusing_raises_connection_error_quickly(
    make_client: MakeClient, proxy: FaultProxy
) -> None:
    import time

    proxy.set_fault(Fault.refuse())
    with make_client([proxy.url], probe_backoff_cap=1.0) as client:
        start = time.monotonic()
        with pytest.raises(ConnectionError) as caught:
            client.search(query=MATCH_ALL)
        assert time.monotonic() - start < 0.5
        assert caught.value.request_sent is False
        assert "no other node is live" in str(caught.value)
        assert client.nodes_status()[0]["state"] == "ejected"
        # Once it answers again, the background prober brings it back (the probe schedule is
        # capped at 1 s here), with no caller's request used as the probe.
        proxy.set_fault(None)
        deadline = time.monotonic() + 1.0 + 1.0
        while client.nodes_status()[0]["state"] != "alive":
            assert time.monotonic() < deadline, client.nodes_status()
            time.sleep(0.02)
        assert "hits" in client.search(query=MATCH_ALL)

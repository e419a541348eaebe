"""No password, API key or auth header in logs, exceptions or reprs."""

from __future__ import annotations

import logging
import pickle
import traceback
from collections.abc import Callable
from typing import Any

import pytest

from sturdysearch.errors import SturdySearchError
from sturdysearch.testing.faults import Fault
from sturdysearch.testing.proxy import FaultProxy

MakeClient = Callable[..., Any]


PASSWORD = "hunter2-Pa55"
API_KEY = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="


@pytest.mark.parametrize(
    "credentials",
    [
        {"basic_auth": ("elastic", PASSWORD)},
        {"api_key": API_KEY},
        {"bearer_auth": PASSWORD},
    ],
)
def test_credentials_do_not_leak(
    make_client: MakeClient,
    proxy: FaultProxy,
    credentials: dict[str, object],
    caplog: pytest.LogCaptureFixture,
) -> None:
    secrets = [PASSWORD, API_KEY, "Basic ", "ApiKey ", "Bearer "]
    texts: list[str] = []
    with caplog.at_level(logging.DEBUG, logger="sturdysearch"):
        with make_client([proxy.url], **credentials) as client:  # type: ignore[arg-type]
            texts += [repr(client), str(client), repr(client.config), str(client.config)]
            assert client.ping()
            for fault in (
                Fault.status(401, body=b'{"error":"unauthorized"}'),
                Fault.reset_mid_response(after_bytes=10),
                Fault.blackhole(),
            ):
                proxy.set_fault(fault)
                try:
                    client.search(query={"match_all": {}}, timeout=0.5)
                except SturdySearchError as exc:
                    texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
                    texts.append(repr(pickle.loads(pickle.dumps(exc)).__dict__))
    texts += [r.getMessage() for r in caplog.records]
    texts += [repr(r.__dict__) for r in caplog.records]
    joined = "\n".join(texts)
    assert "request.attempt" in joined  # the debug events were really captured
    for secret in secrets:
        assert secret not in joined


def test_credentials_in_the_node_url_are_moved_out(
    make_client: MakeClient, proxy: FaultProxy
) -> None:
    url = proxy.url.replace("http://", f"http://elastic:{PASSWORD}@")
    with make_client([url]) as client:
        assert PASSWORD not in repr(client)
        assert all(PASSWORD not in n.url for n in client.config.nodes)
        assert client.ping()

"""Fixtures for the client's integration tests: a real node (from the harness), a fault proxy
in front of it, a fresh index per test, and ``make_client`` / ``any_client``, which give the
same behavioural test the blocking ``Client`` and the ``AsyncClient`` in turn.

The async client runs on an event loop in a background thread, driven through a thin blocking
facade; the loop's exception handler records what asyncio reports about leaks ("Unclosed
connection", "Unclosed client session", "Task was destroyed but it is pending"), and every async
test fails if anything was recorded.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import ssl
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from sturdysearch import AsyncClient, Client
from sturdysearch.testing.proxy import FaultProxy


class LoopThread:
    """An event loop running in a daemon thread, for driving async code from sync tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.problems: list[str] = []
        self.loop.set_exception_handler(self._record)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def _record(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.problems.append(str(context.get("message")))

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


class Blocking:
    """Calls an async object's coroutine methods and waits for them: ``Blocking(c).search()``
    runs ``await c.search()`` on the loop thread."""

    def __init__(self, target: Any, runner: LoopThread) -> None:
        self._target = target
        self._runner = runner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if inspect.iscoroutinefunction(attr):

            def call(*args: Any, **kwargs: Any) -> Any:
                return self._runner.run(attr(*args, **kwargs))

            return call
        if hasattr(attr, "_client") and not callable(attr):  # a namespace such as .indices
            return Blocking(attr, self._runner)
        if name == "options":  # a view of the client: as blocking as the client

            def view(*args: Any, **kwargs: Any) -> Blocking:
                return Blocking(attr(*args, **kwargs), self._runner)

            return view
        return attr

    def __repr__(self) -> str:
        return repr(self._target)

    def __enter__(self) -> Blocking:
        return self

    def __exit__(self, *exc: object) -> None:
        self._runner.run(self._target.close())


MakeClient = Callable[..., Any]


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    runner = LoopThread()
    yield runner
    runner.close()


@pytest.fixture(params=["sync", "async"])
def client_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def make_client(client_kind: str, loop_thread: LoopThread) -> Iterator[MakeClient]:
    """``make_client(hosts, **options)``: a ``Client``, or an ``AsyncClient`` behind a blocking
    facade, with the same options."""
    if client_kind == "sync":
        yield Client
        return

    def factory(*args: Any, **kwargs: Any) -> Blocking:
        return Blocking(AsyncClient(*args, **kwargs), loop_thread)

    before = len(loop_thread.problems)
    yield factory
    gc.collect()
    loop_thread.run(asyncio.sleep(0))
    assert loop_thread.problems[before:] == [], "asyncio reported leaks"


@pytest.fixture
def node_url(search_cluster: Any) -> str:
    url: str = search_cluster.urls[0]
    return url


@pytest.fixture
def connection(search_cluster: Any) -> Iterator[dict[str, Any]]:
    """Client keywords beside the node URL: nothing for a plain node; the cluster's CA and
    admin credentials for a security-on one; SigV4 signing through the verifier (tests marked
    ``sturdysearch_secured`` pass them to every client they make). Through the verifier, the
    test fails if any signature it saw did not check out."""
    options: dict[str, Any] = search_cluster.client_options()
    rejected_before = getattr(search_cluster, "rejected", None)
    squid = getattr(search_cluster, "squid", None)
    proxied_before = len(squid.entries()) if squid is not None else 0
    yield options
    if rejected_before is not None:
        failures = search_cluster.failures[-5:]
        assert search_cluster.rejected == rejected_before, f"signatures rejected: {failures}"
    if squid is not None:  # the test's requests really went through the proxy
        squid.wait_for(lambda entries: len(entries) > proxied_before)


@pytest.fixture
def client(node_url: str, connection: dict[str, Any]) -> Iterator[Client]:
    """A blocking client for setting up and checking (not parametrized)."""
    with Client([node_url], **connection) as c:
        yield c


@pytest.fixture
def any_client(make_client: MakeClient, node_url: str, connection: dict[str, Any]) -> Iterator[Any]:
    """The client under test, blocking and async in turn."""
    with make_client([node_url], **connection) as c:
        yield c


@pytest.fixture
def proxy(node_url: str, search_cluster: Any) -> Iterator[FaultProxy]:
    """A fault proxy in front of the node; for a secured node it speaks TLS upstream with the
    cluster's CA (clients reach it over loopback HTTP, with the ``connection`` credentials)."""
    upstream_tls = None
    if search_cluster.security is not None:
        upstream_tls = ssl.create_default_context(cafile=search_cluster.security.ca_certs)
    with FaultProxy(node_url, upstream_ssl_context=upstream_tls) as p:
        yield p


@pytest.fixture
def index_name(client: Client) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:12]}"
    yield name
    client.indices.delete(index=name, ignore=404)

"""Fixtures for the client's integration tests: a real node (from the harness), a fault proxy
in front of it, and a fresh index per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from sturdysearch import Client
from sturdysearch.testing.proxy import FaultProxy


@pytest.fixture
def node_url(search_cluster: Any) -> str:
    url: str = search_cluster.urls[0]
    return url


@pytest.fixture
def client(node_url: str) -> Iterator[Client]:
    with Client([node_url]) as c:
        yield c


@pytest.fixture
def proxy(node_url: str) -> Iterator[FaultProxy]:
    with FaultProxy(node_url) as p:
        yield p


@pytest.fixture
def index_name(client: Client) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:12]}"
    yield name
    client.indices.delete(index=name, ignore=404)

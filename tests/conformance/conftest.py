"""Fixtures and the session summary of the REST YAML conformance runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sturdysearch import Client

#: (server, "passed"|"failed"|"skipped") -> sections; and the runner's call counts per server.
RESULTS: dict[tuple[str, str], int] = {}
CALLS: dict[str, dict[str, int]] = {}


@pytest.fixture(scope="session")
def conformance_client(search_cluster: Any) -> Iterator[Client]:
    with Client(search_cluster.urls[0], timeout=60) as client:
        yield client


def record(server: str, outcome: str, methods: int, requests: int) -> None:
    RESULTS[(server, outcome)] = RESULTS.get((server, outcome), 0) + 1
    calls = CALLS.setdefault(server, {"methods": 0, "request": 0})
    calls["methods"] += methods
    calls["request"] += requests


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not RESULTS:
        return
    write = terminalreporter.write_line
    write("")
    write("REST YAML conformance (sections; do-steps through generated methods / request())")
    for server in sorted({s for s, _ in RESULTS}):
        passed = RESULTS.get((server, "passed"), 0)
        failed = RESULTS.get((server, "failed"), 0)
        skipped = RESULTS.get((server, "skipped"), 0)
        ran = passed + failed
        rate = f"{100 * passed / ran:.1f}%" if ran else "n/a"
        calls = CALLS.get(server, {})
        write(
            f"  {server}: {passed} passed, {failed} failed, {skipped} skipped; pass rate {rate}; "
            f"steps via methods {calls.get('methods', 0)}, via request() {calls.get('request', 0)}"
        )

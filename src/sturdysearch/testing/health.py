"""Talking to a node over plain HTTP during start-up, without the client under test.

The harness deliberately uses only urllib: a bug in sturdysearch's own transport must not be
able to hide behind a harness that cannot tell whether the server is up.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

HEALTH_STATUSES = ("red", "yellow", "green")


class NodeUnreachable(Exception):
    """The node did not answer HTTP (not started yet, or gone)."""


def get_json(
    url: str,
    timeout: float,
    *,
    context: ssl.SSLContext | None = None,
    authorization: str | None = None,
) -> tuple[int, Any]:
    """GETs ``url``; returns (status, decoded body) for any HTTP answer, even 4xx/5xx.

    ``context`` trusts a secured cluster's CA, ``authorization`` is its admin's header."""
    headers = {"Accept": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return exc.code, json.loads(body or b"null")
        except ValueError:
            return exc.code, body.decode(errors="replace")
    except (urllib.error.URLError, ConnectionError, TimeoutError, ssl.SSLError) as exc:
        raise NodeUnreachable(str(exc)) from exc
    except ValueError as exc:
        raise NodeUnreachable(f"not JSON: {exc}") from exc


def health_url(base_url: str, *, status: str, nodes: int | None, wait_seconds: float) -> str:
    """The ``_cluster/health`` URL that blocks server-side until the condition holds."""
    if status not in HEALTH_STATUSES:
        raise ValueError(f"status must be one of {HEALTH_STATUSES}, not {status!r}")
    params = {"wait_for_status": status, "timeout": f"{max(1, int(wait_seconds))}s"}
    if nodes is not None:
        params["wait_for_nodes"] = str(nodes)
    return f"{base_url}/_cluster/health?{urllib.parse.urlencode(params)}"


def health_satisfied(body: Any, *, status: str, nodes: int | None) -> bool:
    """Checks the body rather than trusting the status code alone (older servers answer 200
    with ``timed_out: true``)."""
    if not isinstance(body, dict) or body.get("timed_out", True):
        return False
    current = body.get("status")
    if current not in HEALTH_STATUSES:
        return False
    if HEALTH_STATUSES.index(current) < HEALTH_STATUSES.index(status):
        return False
    return nodes is None or body.get("number_of_nodes") == nodes

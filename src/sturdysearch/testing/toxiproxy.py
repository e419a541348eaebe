"""Toxiproxy (Shopify's TCP fault injector) run unmodified as a subprocess, for tests that want a
third-party injector between the client and a node rather than the project's own
:class:`~sturdysearch.testing.proxy.FaultProxy`.

``scripts/toxiproxy.sh`` (``make toxiproxy``) builds the server into the harness cache; without
it :func:`find_server` returns ``None`` and the tests skip, saying why. The server's HTTP API is
driven with the standard library only: one proxy, and toxics added and removed by name.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from sturdysearch.testing.paths import cache_root
from sturdysearch.testing.ports import allocate_ports

VERSION = "v2.5.0"


def find_server() -> Path | None:
    """``$STURDY_TOXIPROXY``, else the build ``scripts/toxiproxy.sh`` leaves in the cache."""
    override = os.environ.get("STURDY_TOXIPROXY")
    path = Path(override) if override else cache_root() / "toxiproxy" / VERSION / "toxiproxy-server"
    return path if path.is_file() and os.access(path, os.X_OK) else None


class Toxiproxy:
    """One toxiproxy server with one proxy from a loopback port to ``upstream`` (host:port)."""

    def __init__(self, server: Path, upstream: str) -> None:
        self._server = server
        self._upstream = upstream
        self._api_port, self.port = allocate_ports(2)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Toxiproxy:
        self._process = subprocess.Popen(
            [str(self._server), "-host", "127.0.0.1", "-port", str(self._api_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15.0
        while True:
            try:
                self._api("GET", "/version")
                break
            except OSError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    self.close()
                    raise RuntimeError("toxiproxy did not start") from None
                time.sleep(0.05)  # polling a starting process: no event to wait on
        self._api(
            "POST",
            "/proxies",
            {"name": "node", "listen": f"127.0.0.1:{self.port}", "upstream": self._upstream},
        )
        return self

    def add_toxic(self, name: str, kind: str, stream: str, **attributes: Any) -> None:
        """Add toxic ``kind`` (``timeout``, ``reset_peer``, ...) on ``stream`` (``upstream`` is
        client to server, ``downstream`` server to client)."""
        body = {"name": name, "type": kind, "stream": stream, "attributes": attributes}
        self._api("POST", "/proxies/node/toxics", body)

    def remove_toxic(self, name: str) -> None:
        self._api("DELETE", f"/proxies/node/toxics/{name}")

    def _api(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self._api_port}{path}", data=data, method=method
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            raw = answer.read()
            kind = answer.headers.get("content-type", "")
        # ``/version`` answers in plain text, the rest in JSON.
        return json.loads(raw) if raw and "json" in kind else raw.decode()

    def close(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> Toxiproxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

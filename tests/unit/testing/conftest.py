"""A tiny real HTTP/1.1 server the proxies are tested against, with a record of what it saw.

The record is how tests prove a request did or did not reach the server: the handler
records before it answers, so once the client holds a response (or the proxy saw the
server's answer) the record is complete, with no sleeping.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

PATTERN = b"0123456789abcdefghijklmnopqrstuvwxyz" * 8


def payload(n: int) -> bytes:
    """Deterministic bytes, so a truncated body can be compared with the right prefix."""
    reps = n // len(PATTERN) + 1
    return (PATTERN * reps)[:n]


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    body: bytes


class Recorder:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.requests: list[Seen] = []
        self.connections_opened = 0
        self.connections_open = 0

    def add(self, seen: Seen) -> None:
        with self.cond:
            self.requests.append(seen)
            self.cond.notify_all()

    def paths(self) -> list[str]:
        with self.cond:
            return [r.path for r in self.requests]

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until the server has closed every connection it accepted."""
        with self.cond:
            assert self.cond.wait_for(lambda: self.connections_open == 0, timeout), (
                f"server still has {self.connections_open} connections"
            )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    recorder: Recorder

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        with self.recorder.cond:
            self.recorder.connections_opened += 1
            self.recorder.connections_open += 1
            self.recorder.cond.notify_all()
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        super().shutdown_request(request)
        with self.recorder.cond:
            self.recorder.connections_open -= 1
            self.recorder.cond.notify_all()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Head and body go out in separate writes; with Nagle on, each response would wait
    # for a delayed ACK (~40 ms), which real nodes avoid the same way.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, *, head_only: bool = False, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        if not head_only:
            self.wfile.write(body)

    def _dispatch(self, head_only: bool = False) -> None:
        body = self._read_body()
        self.server.recorder.add(Seen(self.command, self.path, body))
        path = self.path.split("?", 1)[0]
        if path.startswith("/bytes/"):
            self._send(200, payload(int(path.rsplit("/", 1)[1])), head_only=head_only)
        elif path == "/echo":
            doc = {"received": len(body), "sha256": hashlib.sha256(body).hexdigest()}
            self._send(200, json.dumps(doc).encode(), head_only=head_only)
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (b"alpha-", b"beta-", b"gamma"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/close-delimited":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until-eof")
            self.close_connection = True
        elif path == "/then-drop":
            # Keep-alive framing, but the server drops the connection right after.
            self._send(200, b'{"dropping":true}')
            self.close_connection = True
        elif path == "/204":
            self.send_response(204)
            self.end_headers()
        else:
            doc = {"ok": True, "method": self.command, "path": self.path}
            self._send(200, json.dumps(doc).encode(), head_only=head_only)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch(head_only=True)


@dataclass
class Upstream:
    url: str
    port: int
    recorder: Recorder

    @staticmethod
    def payload(n: int) -> bytes:
        """What `/bytes/<n>` serves."""
        return payload(n)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.recorder = Recorder()
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.02},  # how long shutdown() takes at teardown
        name="test-upstream",
        daemon=True,
    )
    thread.start()
    port = server.server_address[1]
    try:
        yield Upstream(f"http://127.0.0.1:{port}", port, server.recorder)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)

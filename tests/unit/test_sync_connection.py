"""How the blocking ``Connection`` writes a request with a body, against real loopback sockets:
head and body leave in one stream without being joined into one buffer (``sendmsg``), partial
writes resume where they stopped, and a server that stops reading is cut off by the deadline."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from sturdysearch._core.timeouts import Deadline
from sturdysearch._sync.connection import Connection
from sturdysearch.errors import DeadlineExceeded

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
SLACK = 2.0  # generous upper bound on scheduling delays: the machine may be loaded


def _head(length: int) -> bytes:
    return b"POST /_bulk HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n" % length


@pytest.fixture
def pair() -> Iterator[tuple[Connection, socket.socket]]:
    """A ``Connection`` on one end of a loopback TCP connection, the raw server end on the
    other (small buffers, so that big writes are partial)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    conn = Connection(client, "http://127.0.0.1", time.monotonic())
    try:
        yield conn, server
    finally:
        conn.close()
        server.close()


def _read_request_then_answer(server: socket.socket, size: int, got: list[bytes]) -> None:
    received = bytearray()
    while len(received) < size:
        chunk = server.recv(7000)  # small reads: the client's writes stay partial
        if not chunk:
            break
        received += chunk
    got.append(bytes(received))
    server.sendall(OK)


@pytest.mark.parametrize("body_size", [1, 65_536, 4 * 1024 * 1024 + 13])
def test_head_and_body_arrive_as_one_stream(
    pair: tuple[Connection, socket.socket], body_size: int
) -> None:
    conn, server = pair
    body = bytes(i % 251 for i in range(body_size))
    head = _head(body_size)
    got: list[bytes] = []
    reader = threading.Thread(
        target=_read_request_then_answer, args=(server, len(head) + body_size, got)
    )
    reader.start()
    answer, data, reusable = conn.exchange(
        head, body, head_request=False, deadline=Deadline(time.monotonic(), 30), read_timeout=30
    )
    reader.join()
    assert got == [head + body]
    assert (answer.status, data, reusable) == (200, b"{}", True)


def test_an_empty_body_is_just_the_head(pair: tuple[Connection, socket.socket]) -> None:
    conn, server = pair
    head = _head(0)
    got: list[bytes] = []
    reader = threading.Thread(target=_read_request_then_answer, args=(server, len(head), got))
    reader.start()
    answer, _, _ = conn.exchange(
        head, b"", head_request=False, deadline=Deadline(time.monotonic(), 30), read_timeout=30
    )
    reader.join()
    assert got == [head] and answer.status == 200


def test_the_deadline_cuts_a_write_the_server_does_not_read(
    pair: tuple[Connection, socket.socket],
) -> None:
    conn, _server = pair  # never reads
    body = b"x" * (32 * 1024 * 1024)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="while sending"):
        conn.exchange(
            _head(len(body)),
            body,
            head_request=False,
            deadline=Deadline(started, 0.5),
            read_timeout=30,
        )
    assert 0.5 <= time.monotonic() - started < 0.5 + SLACK

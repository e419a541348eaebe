"""``AsyncConnection.exchange`` and ``open_connection`` against real loopback sockets, served by
small asyncio servers inside each test: framing, timeouts (read timeout vs deadline, one timer
per exchange), how a connection that failed is reported, when one may be reused, cancellation,
and connect failures."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from sturdysearch._async.connection import AsyncConnection, open_connection
from sturdysearch._core.nodes import NodeConfig
from sturdysearch._core.timeouts import Deadline
from sturdysearch.errors import (
    ConnectionError,
    ConnectTimeout,
    DeadlineExceeded,
    MalformedResponseError,
    ReadTimeout,
)
from sturdysearch.testing import ports
from sturdysearch.testing.loops import run_clean
from sturdysearch.tls import TLSConfig

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
SLACK = 2.0  # generous upper bound on scheduling delays: the machine may be loaded

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def deadline(seconds: float = 10.0) -> Deadline:
    return Deadline(time.monotonic(), seconds)


def node(port: int) -> NodeConfig:
    return NodeConfig("http", "127.0.0.1", port)


async def connect(
    port: int, *, connect_timeout: float = 5.0, limit: Deadline | None = None
) -> AsyncConnection:
    return await open_connection(
        node(port),
        ssl_context=None,
        tls=TLSConfig(),
        connect_timeout=connect_timeout,
        deadline=limit or deadline(),
    )


@contextlib.asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[int]:
    """A loopback server running ``handler`` per connection; yields its port. Handlers are
    cancelled and their connections closed on exit."""
    handlers: set[asyncio.Task[None]] = set()

    async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await handler(reader, writer)
        except (asyncio.CancelledError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            writer.transport.abort()

    server = await asyncio.start_server(wrapped, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.close()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def exchange(
    conn: AsyncConnection,
    data: bytes = REQUEST,
    *,
    limit: Deadline | None = None,
    read_timeout: float = 5.0,
    head_request: bool = False,
) -> tuple[int, bytes, bool]:
    head, body, reusable = await conn.exchange(
        data, head_request=head_request, deadline=limit or deadline(), read_timeout=read_timeout
    )
    return head.status, body, reusable


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``predicate`` until true (bounded): for states only the kernel can advance."""
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "condition not reached in time"
        await asyncio.sleep(0.005)


# -- answers ---------------------------------------------------------------------------------


def test_content_length_answer_and_reuse() -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(2):
            seen.append(await read_request(reader))
            writer.write(OK)
            await writer.drain()
        await reader.read()

    async def main() -> None:
        async with serve(handler) as port:
            conn = await connect(port)
            assert await exchange(conn) == (200, b"hello", True)
            assert not conn.is_dropped()
            assert await exchange(conn) == (200, b"hello", True)
            conn.abort()
        assert seen == [REQUEST, REQUEST]

    run_clean(main)


def test_chunked_answer_in_pieces() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        for piece in (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"5\r\nhel",
            b"lo\r\n6\r\n world\r\n",
            b"0\r\n\r\n",
        ):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.01)
        await reader.read()

    async def main() -> None:
        async with serve(handler) as port:
            conn = await connect(port)
            assert await exchange(conn) == (200, b"hello world", True)
            conn.abort()

    run_clean(main)


def test_head_request_has_no_body() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
        await writer.drain()
        await reader.read()

    async def main() -> None:
        async with serve(handler) as port:
            conn = await connect(port)
            request = b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
            assert await exchange(conn, request, head_request=True) == (200, b"", True)
            conn.abort()

    run_clean(main)


def test_read_until_close_body() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of ")
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(b"this")
        await writer.drain()
        writer.close()

    async def main() -> None:
        async with serve(handler) as port:
            conn = await connect(port)
            assert await exchange(conn) == (200, b"all of this", False)
            assert conn.is_dropped()
            conn.abort()

    run_clean(main)


def test_connection_close_answer_is_not_reusable() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        await reader.read()

    async def main() -> None:
        async with serve(handler) as port:
            conn = await connect(port)
            assert await exchange(conn) == (200, b"ok", False)
            conn.abort()

    run_clean(main)


# -- timeouts --------------------------------------------------------------------------------


def test_silence_in_the_head_is_a_read_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-")
        await writer.drain()
        await reader.read()  # then silent

    async def main() -> None:
        async with serve(handler) as port:
            conn = await connect(port)
            start = time.monotonic()
            with pytest.raises(ReadTimeout) as info:
                await exchange(conn, read_timeout=0.2, limit=deadline(10))
            elapsed = time.monotonic() - start
            assert 0.19 <= elapsed < 0.2 + SLACK
            assert "no data for 0.2 s while waiting for the response head" in str(info.value)
            assert conn.protocol.waiter is None and conn.protocol.timer is None
            conn.abort()

    run_clean(main)


def test_silence_in_the_body_is_a_read_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()
        await reader.read()

    async def main() -> None:
        async with serve(handler) as port:
            conn = await connect(port)
            start = time.monotonic()
            with pytest.raises(ReadTimeout, match="rest of the response"):
                await exchange(conn, read_timeout=0.2, limit=deadline(10))
            assert 0.19 <= time.monotonic() - start < 0.2 + SLACK
            conn.abort()

    run_clean(main)


def test_a_dripping_server_is_cut_by_the_deadline() -> None:
    drips = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal drips
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        while True:
            await asyncio.sleep(0.05)
            writer.write(b"x")
            await writer.drain()
            drips += 1

    async def main() -> None:
        async with serve(handler) as port:
            conn = await connect(port)
            start = time.monotonic()
            with pytest.raises(DeadlineExceeded) as info:
                # Each pause (50 ms) is far below the read timeout; only the deadline can stop it.
                await exchange(conn, read_timeout=0.4, limit=deadline(1.0))
            elapsed = time.monotonic() - start
            assert 0.99 <= elapsed < 1.0 + SLACK
            assert info.value.request_sent is True
            assert "while reading the response" in str(info.value)
            assert drips >= 5  # the server did keep dripping past several read timeouts' worth
            conn.abort()

    run_clean(main)


def test_a_silent_server_is_cut_by_a_tighter_deadline() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await reader.read()

    async def main() -> None:
        async with serve(handler) as port:
            conn = await connect(port)
            start = time.monotonic()
            with pytest.raises(DeadlineExceeded) as info:
                await exchange(conn, read_timeout=5.0, limit=deadline(0.2))
            assert 0.19 <= time.monotonic() - start < 0.2 + SLACK
            assert info.value.request_sent is True
            conn.abort()

    run_clean(main)


def test_a_passed_deadline_sends_nothing() -> None:
    received: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read())

    async def main() -> None:
        async with serve(handler) as port:
            conn = await connect(port)
            with pytest.raises(DeadlineExceeded) as info:
                await exchange(conn, limit=Deadline(time.monotonic() - 1.0, 0.5))
            assert info.value.request_sent is False
            assert conn.protocol.waiter is None
            conn.abort()
            await until(lambda: received != [])
        assert received == [b""]

    run_clean(main)


# -- failures --------------------------------------------------------------------------------


def test_reset_mid_response_is_a_connection_error_after_sending() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart")
        await writer.drain()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()  # close with linger 0: RST

    async def main() -> None:
        async with serve(handler) as port:
            conn = await connect(port)
            with pytest.raises(ConnectionError) as info:
                await exchange(conn)
            assert info.value.request_sent is True
            assert not isinstance(info.value, MalformedResponseError)
            assert "reset" in str(info.value).lower()
            assert conn.is_dropped()
            conn.abort()

    run_clean(main)


def test_clean_close_before_any_byte() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.close()

    async def main() -> None:
        async with serve(handler) as port:
            conn = await connect(port)
            with pytest.raises(ConnectionError) as info:
                await exchange(conn)
            assert "the server closed the connection without answering" in str(info.value)
            assert info.value.request_sent is True
            conn.abort()

    run_clean(main)


def test_close_mid_body_is_a_malformed_response() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 503 Busy\r\nContent-Length: 100\r\n\r\ntruncated")
        await writer.drain()
        writer.close()

    async def main() -> None:
        async with serve(handler) as port:
            conn = await connect(port)
            with pytest.raises(MalformedResponseError) as info:
                await exchange(conn)
            assert info.value.status == 503
            assert info.value.body_prefix == b"truncated"
            assert "before the response body was complete" in str(info.value)
            conn.abort()

    run_clean(main)


def test_exchange_on_a_connection_the_server_closed_sends_nothing() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async def main() -> None:
        async with serve(handler) as port:
            conn = await connect(port)
            await until(conn.is_dropped)
            with pytest.raises(ConnectionError) as info:
                await exchange(conn)
            assert info.value.request_sent is False
            conn.abort()

    run_clean(main)


def test_unsolicited_bytes_while_idle_mark_the_connection_dropped() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(OK)
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"HTTP/1.1 408 Request Timeout\r\n\r\n")  # nobody asked
        await writer.drain()
        await reader.read()

    async def main() -> None:
        async with serve(handler) as port:
            conn = await connect(port)
            assert await exchange(conn) == (200, b"hello", True)
            assert not conn.is_dropped()
            await until(conn.is_dropped)
            assert not conn.transport.is_closing()  # still open: only the data marked it
            conn.abort()

    run_clean(main)


def test_server_closing_an_idle_connection_marks_it_dropped() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(OK)
        await writer.drain()
        writer.close()

    async def main() -> None:
        async with serve(handler) as port:
            conn = await connect(port)
            assert (await exchange(conn))[:2] == (200, b"hello")
            await until(conn.is_dropped)
            conn.abort()

    run_clean(main)


def test_bytes_after_a_complete_answer_make_it_not_reusable() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(OK + b"HTTP/1.1 200 OK\r\n")  # one write: arrives with the answer
        await writer.drain()
        await reader.read()

    async def main() -> None:
        async with serve(handler) as port:
            conn = await connect(port)
            assert await exchange(conn) == (200, b"hello", False)
            conn.abort()

    run_clean(main)


def test_an_answer_before_the_request_body_was_read_is_not_reusable() -> None:
    body = b"x" * (64 * 1024 * 1024)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        # Answers (e.g. 413) without reading the body: the rest of the request is still on
        # its way, and would be read as the next request.
        writer.write(b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        await asyncio.Event().wait()

    async def main() -> None:
        async with serve(handler) as port:
            conn = await connect(port)
            request = (
                b"PUT /i/_doc/1 HTTP/1.1\r\nHost: x\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
            status, answer, reusable = await exchange(conn, request)
            assert (status, answer) == (413, b"")
            assert conn.transport.get_write_buffer_size() > 0
            assert reusable is False
            conn.abort()

    run_clean(main)


def test_the_read_timeout_counts_from_the_end_of_the_send() -> None:
    """A server slow to read a large body is not "silent": as in the blocking driver, only the
    deadline bounds the send, and the read timeout starts once the request is written."""
    body = b"y" * (16 * 1024 * 1024)
    stalled = 0.6

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_request(reader)
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        await asyncio.sleep(stalled)  # not reading: the client's send buffer stays full
        await reader.readexactly(length)
        writer.write(OK)
        await writer.drain()
        await asyncio.Event().wait()

    async def main() -> None:
        async with serve(handler) as port:
            conn = await connect(port)
            request = (
                b"PUT /i/_doc/1 HTTP/1.1\r\nHost: x\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
            start = time.monotonic()
            status, answer, _ = await exchange(conn, request, read_timeout=0.2)
            assert (status, answer) == (200, b"hello")
            assert time.monotonic() - start >= stalled
            conn.abort()

    run_clean(main)


def test_cancelling_an_exchange_clears_the_waiter() -> None:
    async def main() -> None:
        seen = asyncio.Event()

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            seen.set()
            await reader.read()

        async with serve(handler) as port:
            conn = await connect(port)
            task = asyncio.ensure_future(exchange(conn, read_timeout=5.0))
            await asyncio.wait_for(seen.wait(), 5)
            assert conn.protocol.waiter is not None and conn.protocol.timer is not None
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            proto = conn.protocol
            assert proto.waiter is None
            assert proto.parser is None
            assert proto.timer is None
            conn.abort()
            await until(lambda: proto.closed)

    run_clean(main)


# -- connecting ------------------------------------------------------------------------------


def closed_port() -> int:
    """A port on which nothing listens (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def unaccepting_port() -> Iterator[int]:
    """A port whose accept queue is full: the kernel ignores further SYNs, so connect hangs."""
    with ports.unaccepting_port() as port:
        yield port


def test_connect_to_a_closed_port_is_refused() -> None:
    async def main() -> None:
        with pytest.raises(ConnectionError) as info:
            await connect(closed_port())
        assert "refused" in str(info.value).lower()
        assert "could not connect" in str(info.value)
        assert info.value.request_sent is False
        assert not isinstance(info.value, ConnectTimeout)

    run_clean(main)


def test_connect_timeout(unaccepting_port: int) -> None:
    async def main() -> None:
        start = time.monotonic()
        with pytest.raises(ConnectTimeout) as info:
            await connect(unaccepting_port, connect_timeout=0.3, limit=deadline(10))
        assert 0.29 <= time.monotonic() - start < 0.3 + SLACK
        assert info.value.request_sent is False
        assert "0.3 s" in str(info.value)

    run_clean(main)


def test_connect_cut_by_a_tighter_deadline(unaccepting_port: int) -> None:
    async def main() -> None:
        start = time.monotonic()
        with pytest.raises(DeadlineExceeded) as info:
            await connect(unaccepting_port, connect_timeout=10, limit=deadline(0.3))
        assert 0.29 <= time.monotonic() - start < 0.3 + SLACK
        assert not isinstance(info.value, ConnectTimeout)
        assert "while connecting" in str(info.value)

    run_clean(main)


def test_connect_with_a_passed_deadline_does_not_try() -> None:
    async def main() -> None:
        with pytest.raises(DeadlineExceeded, match="before connecting"):
            await connect(closed_port(), limit=Deadline(time.monotonic() - 1.0, 0.5))

    run_clean(main)

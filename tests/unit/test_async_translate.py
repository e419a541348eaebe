"""aiohttp's exceptions mapped onto sturdysearch's tree (``_async.transport._translate``).

Every exception is constructed directly, as aiohttp itself raises it; no event loop, no sockets.
Besides the class, each mapping fixes what the call plan does next, so that is checked too:
``request_sent`` (may a non-idempotent request be resent?), whether the node is ejected, and
whether the failure is retried at all. Every ``aiohttp.ClientError`` subclass must appear in the
table below: a new one in an aiohttp upgrade fails ``test_every_aiohttp_client_error_is_covered``
instead of being skipped silently.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey
from aiohttp.http_parser import RawResponseMessage
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from sturdysearch._async.transport import _translate
from sturdysearch._core.nodes import NodeConfig
from sturdysearch._core.outcome import failure_of
from sturdysearch._core.plan import ejects
from sturdysearch.errors import (
    ConnectionError,
    ConnectTimeout,
    DeadlineExceeded,
    MalformedResponseError,
    ReadTimeout,
    SturdySearchError,
    TLSError,
)

NODE = NodeConfig("https", "es1.internal", 9200)
KEY = ConnectionKey("es1.internal", 9200, True, True, None, None, None)
URL_ = URL("https://es1.internal:9200/idx/_search")
REQUEST_INFO = aiohttp.RequestInfo(URL_, "GET", CIMultiDictProxy(CIMultiDict()), URL_)


def translate(
    exc: aiohttp.ClientError, *, connect_by_deadline: bool = False, read_timeout: float = 10.0
) -> SturdySearchError:
    return _translate(exc, NODE, connect_by_deadline=connect_by_deadline, read_timeout=read_timeout)


def request_sent(err: SturdySearchError) -> bool:
    """What the plan will believe about delivery."""
    if isinstance(err, (ConnectionError, DeadlineExceeded)):
        return err.request_sent
    failure = failure_of(err)
    assert failure is not None
    return failure.sent


def response_head(status: int) -> RawResponseMessage:
    headers = CIMultiDictProxy(CIMultiDict({"content-length": "100"}))
    return RawResponseMessage(
        aiohttp.HttpVersion11,
        status,
        "OK",
        headers,
        ((b"content-length", b"100"),),
        False,
        None,
        False,
        False,
    )


def cert_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {message}")
    exc.verify_code = code
    exc.verify_message = message
    return exc


def ssl_error(reason: str) -> ssl.SSLError:
    exc = ssl.SSLError(1, f"[SSL: {reason}] {reason.lower()}")
    exc.reason = reason
    return exc


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[], aiohttp.ClientError]
    to: type[SturdySearchError]
    sent: bool
    ejects: bool
    retried: bool = True
    """Whether the plan would retry an idempotent request after it (given attempts/budget)."""
    connect_by_deadline: bool = False


CASES = [
    # TLS: never sent, never retried, never ejects.
    Case(
        "fingerprint-mismatch",
        lambda: aiohttp.ServerFingerprintMismatch(b"\x01" * 32, b"\x02" * 32, "es1", 9200),
        TLSError,
        sent=False,
        ejects=False,
        retried=False,
    ),
    Case(
        "certificate-error",
        lambda: aiohttp.ClientConnectorCertificateError(
            KEY, cert_error(10, "certificate has expired")
        ),
        TLSError,
        sent=False,
        ejects=False,
        retried=False,
    ),
    Case(
        "ssl-error",
        lambda: aiohttp.ClientConnectorSSLError(KEY, ssl_error("WRONG_VERSION_NUMBER")),
        TLSError,
        sent=False,
        ejects=False,
        retried=False,
    ),
    Case(
        "ssl-base-non-ssl-cause",
        lambda: aiohttp.ClientSSLError(KEY, OSError(None, "handshake aborted")),
        TLSError,
        sent=False,
        ejects=False,
        retried=False,
    ),
    # Connect failures: not sent, node ejected, retried even when not idempotent.
    Case(
        "connect-timeout",
        lambda: aiohttp.ConnectionTimeoutError("Connection timeout to host"),
        ConnectTimeout,
        sent=False,
        ejects=True,
    ),
    Case(
        "connect-timeout-by-deadline",
        lambda: aiohttp.ConnectionTimeoutError("Connection timeout to host"),
        DeadlineExceeded,
        sent=False,
        ejects=False,
        retried=False,
        connect_by_deadline=True,
    ),
    Case(
        "refused",
        lambda: aiohttp.ClientConnectorError(
            KEY, ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        ),
        ConnectionError,
        sent=False,
        ejects=True,
    ),
    Case(
        "dns",
        lambda: aiohttp.ClientConnectorDNSError(
            KEY, socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        ),
        ConnectionError,
        sent=False,
        ejects=True,
    ),
    Case(
        "proxy-connect",
        lambda: aiohttp.ClientProxyConnectionError(
            KEY, ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        ),
        ConnectionError,
        sent=False,
        ejects=True,
    ),
    Case(
        "unix-connect",
        lambda: aiohttp.client_exceptions.UnixClientConnectorError(
            "/run/es.sock", KEY, FileNotFoundError(errno.ENOENT, "No such file or directory")
        ),
        ConnectionError,
        sent=False,
        ejects=True,
    ),
    # Read side: the request went out.
    Case(
        "socket-read-timeout",
        lambda: aiohttp.SocketTimeoutError("Timeout on reading data from socket"),
        ReadTimeout,
        sent=True,
        ejects=True,
    ),
    Case(
        "server-timeout",
        lambda: aiohttp.ServerTimeoutError("No PONG received"),
        ReadTimeout,
        sent=True,
        ejects=True,
    ),
    Case(
        "disconnected-before-answer",
        lambda: aiohttp.ServerDisconnectedError(),
        ConnectionError,
        sent=True,
        ejects=True,
    ),
    Case(
        "disconnected-mid-body",
        lambda: aiohttp.ServerDisconnectedError(response_head(200)),
        MalformedResponseError,
        sent=True,
        ejects=True,
    ),
    Case(
        "payload",
        lambda: aiohttp.ClientPayloadError("Response payload is not completed"),
        MalformedResponseError,
        sent=True,
        ejects=True,
    ),
    Case(
        "bad-response",
        lambda: aiohttp.ClientResponseError(
            REQUEST_INFO, (), status=400, message="Invalid header value char"
        ),
        MalformedResponseError,
        sent=True,
        ejects=True,
    ),
    Case(
        "content-type",
        lambda: aiohttp.ContentTypeError(REQUEST_INFO, (), message="unexpected mimetype"),
        MalformedResponseError,
        sent=True,
        ejects=True,
    ),
    Case(
        "too-many-redirects",
        lambda: aiohttp.TooManyRedirects(REQUEST_INFO, (), message="redirects"),
        MalformedResponseError,
        sent=True,
        ejects=True,
    ),
    Case(
        "proxy-error",
        lambda: aiohttp.ClientHttpProxyError(REQUEST_INFO, (), status=407, message="auth"),
        MalformedResponseError,
        sent=True,
        ejects=True,
    ),
    Case(
        "ws-handshake",
        lambda: aiohttp.WSServerHandshakeError(REQUEST_INFO, (), message="no upgrade"),
        MalformedResponseError,
        sent=True,
        ejects=True,
    ),
    # Everything else is a connection failure that may have delivered the request.
    Case(
        "os-error-reset",
        lambda: aiohttp.ClientOSError(errno.ECONNRESET, "Connection reset by peer"),
        ConnectionError,
        sent=True,
        ejects=True,
    ),
    Case(
        "connection-reset",
        lambda: aiohttp.ClientConnectionResetError("Cannot write to closing transport"),
        ConnectionError,
        sent=True,
        ejects=True,
    ),
    Case(
        "server-connection",
        lambda: aiohttp.ServerConnectionError("connection lost"),
        ConnectionError,
        sent=True,
        ejects=True,
    ),
    Case(
        "client-connection",
        lambda: aiohttp.ClientConnectionError(),
        ConnectionError,
        sent=True,
        ejects=True,
    ),
    Case(
        "upload-aborted",
        lambda: aiohttp.UploadAbortedError("The request body was not fully sent"),
        ConnectionError,
        sent=True,
        ejects=True,
    ),
    Case("client-error", lambda: aiohttp.ClientError(), ConnectionError, sent=True, ejects=True),
    # URL and redirect errors cannot happen with validated node URLs and allow_redirects=False;
    # they fall into the conservative "may have been sent" branch.
    Case(
        "invalid-url",
        lambda: aiohttp.InvalidURL("http://[bad"),
        ConnectionError,
        sent=True,
        ejects=True,
    ),
    Case(
        "invalid-url-client",
        lambda: aiohttp.InvalidUrlClientError("http://[bad"),
        ConnectionError,
        sent=True,
        ejects=True,
    ),
    Case(
        "invalid-url-redirect",
        lambda: aiohttp.InvalidUrlRedirectClientError("http://[bad"),
        ConnectionError,
        sent=True,
        ejects=True,
    ),
    Case(
        "non-http-url",
        lambda: aiohttp.NonHttpUrlClientError("ftp://x"),
        ConnectionError,
        sent=True,
        ejects=True,
    ),
    Case(
        "non-http-url-redirect",
        lambda: aiohttp.NonHttpUrlRedirectClientError("ftp://x"),
        ConnectionError,
        sent=True,
        ejects=True,
    ),
    Case(
        "redirect",
        lambda: aiohttp.RedirectClientError("redirect"),
        ConnectionError,
        sent=True,
        ejects=True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_mapping(case: Case) -> None:
    err = translate(case.make(), connect_by_deadline=case.connect_by_deadline)
    assert type(err) is case.to
    assert err.node == NODE.url  # type: ignore[attr-defined]
    assert request_sent(err) is case.sent
    assert ejects(err) is case.ejects
    failure = failure_of(err)
    assert (failure is not None and failure.kind != "tls") is case.retried
    assert "es1.internal" in str(err)


def test_every_aiohttp_client_error_is_covered() -> None:
    def subclasses(cls: type) -> set[type]:
        out: set[type] = set()
        direct: list[type] = cls.__subclasses__()
        for sub in direct:
            if sub.__module__.startswith("aiohttp"):
                out |= {sub} | subclasses(sub)
        return out

    every = subclasses(aiohttp.ClientError) | {aiohttp.ClientError}
    covered = {type(case.make()) for case in CASES}
    assert every - covered == set(), "aiohttp exception(s) without a mapping test"


# -- the details of some mappings ------------------------------------------------------------


def test_fingerprint_mismatch_names_both_fingerprints() -> None:
    err = translate(aiohttp.ServerFingerprintMismatch(b"\xab" * 32, b"\xcd" * 32, "es1", 9200))
    assert "ab" * 32 in str(err)
    assert "cd" * 32 in str(err)
    assert "ssl_assert_fingerprint" in str(err)


def test_certificate_error_gets_the_tls_hint() -> None:
    cause = cert_error(10, "certificate has expired")
    err = translate(aiohttp.ClientConnectorCertificateError(KEY, cause))
    assert "the server certificate has expired" in str(err)
    assert err.__cause__ is cause


def test_unknown_verify_code_still_says_verification_failed() -> None:
    err = translate(aiohttp.ClientConnectorCertificateError(KEY, cert_error(999, "odd")))
    assert "TLS verification failed: odd" in str(err)


def test_plain_http_node_behind_https_url() -> None:
    err = translate(aiohttp.ClientConnectorSSLError(KEY, ssl_error("WRONG_VERSION_NUMBER")))
    assert "speaks plain HTTP" in str(err)


def test_ssl_error_without_an_ssl_cause() -> None:
    err = translate(aiohttp.ClientSSLError(KEY, OSError(None, "handshake aborted")))
    assert str(err).startswith("TLS handshake failed: ")


def test_connect_timeout_vs_deadline() -> None:
    exc = aiohttp.ConnectionTimeoutError("Connection timeout to host")
    timeout = translate(exc, connect_by_deadline=False)
    assert isinstance(timeout, ConnectTimeout) and not timeout.request_sent
    deadline = translate(exc, connect_by_deadline=True)
    assert isinstance(deadline, DeadlineExceeded) and not deadline.request_sent
    assert "deadline" in str(deadline)


def test_read_timeout_names_the_read_timeout() -> None:
    err = translate(aiohttp.SocketTimeoutError("Timeout"), read_timeout=2.5)
    assert "no data for 2.5 s" in str(err)


def test_refused_uses_the_os_message() -> None:
    err = translate(
        aiohttp.ClientConnectorError(
            KEY, ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        )
    )
    assert str(err) == "could not connect: Connection refused (node https://es1.internal:9200)"


def test_connect_error_without_errno_uses_the_error_text() -> None:
    err = translate(aiohttp.ClientConnectorError(KEY, OSError("network is down-ish")))
    assert "could not connect: network is down-ish" in str(err)


def test_dns_failure_message_names_the_resolver_error() -> None:
    err = translate(
        aiohttp.ClientConnectorDNSError(
            KEY, socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        )
    )
    assert "Name or service not known" in str(err)


def test_truncated_body_keeps_the_status() -> None:
    err = translate(aiohttp.ServerDisconnectedError(response_head(503)))
    assert isinstance(err, MalformedResponseError)
    assert err.status == 503
    assert "before the body of the 503 answer was complete" in str(err)


def test_disconnect_with_text_message_is_a_connection_error() -> None:
    err = translate(aiohttp.ServerDisconnectedError("Server disconnected"))
    assert type(err) is ConnectionError
    assert err.request_sent is True
    assert "Server disconnected" in str(err)


def test_bad_response_message_is_kept() -> None:
    err = translate(
        aiohttp.ClientResponseError(REQUEST_INFO, (), status=400, message="Bad status line")
    )
    assert "malformed response: Bad status line" in str(err)


def test_empty_exception_text_falls_back_to_the_class_name() -> None:
    assert "connection failed: ClientOSError" in str(translate(aiohttp.ClientOSError()))


def test_empty_exception_text_is_still_a_sent_connection_error() -> None:
    err = translate(aiohttp.ClientOSError())
    assert type(err) is ConnectionError
    assert err.request_sent is True

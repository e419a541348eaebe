"""The SigV4 verifying proxy (``sturdysearch.testing.sigv4``) in front of the local test server,
and the whole client through it; the Serverless dialect's probe and ping rules through a fault
proxy. The real-node version of these is ``tests/integration/test_sigv4.py``."""

from __future__ import annotations

import http.client
import itertools
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from sturdysearch import Client
from sturdysearch._core.sigv4 import payload_hash, sign
from sturdysearch.auth import AwsSigV4
from sturdysearch.errors import AuthorizationError, SturdySearchError
from sturdysearch.testing.faults import Fault
from sturdysearch.testing.proxy import FaultProxy

if TYPE_CHECKING:
    from conftest import Upstream

pytest.importorskip("botocore", reason="the verifier recomputes signatures with botocore")

from sturdysearch.testing.sigv4 import SigV4VerifyingProxy, _strip_signing

KEY_ID = "AKIAVERIFYPROXYTEST1"
SECRET = "verify/Proxy+Secret0123456789abcdefghij"
TOKEN = "session-token-for-the-verifier=="
REGION = "us-east-1"


@pytest.fixture
def verifier(upstream: Upstream) -> Iterator[SigV4VerifyingProxy]:
    with SigV4VerifyingProxy(
        upstream.url,
        access_key=KEY_ID,
        secret_key=SECRET,
        session_token=TOKEN,
        region=REGION,
        service="es",
    ) as proxy:
        yield proxy


def signer(**options: Any) -> AwsSigV4:
    kwargs: dict[str, Any] = {"access_key": KEY_ID, "secret_key": SECRET, "session_token": TOKEN}
    kwargs.update(options)
    return AwsSigV4(REGION, **kwargs)


def test_the_client_passes_verification(verifier: SigV4VerifyingProxy, upstream: Upstream) -> None:
    with Client([verifier.url], auth=signer()) as client:
        client.request("GET", "/")
        client.request("PUT", "/idx/_doc/a%3Ab%21c%40d%20e%2Bf", body={"x": 1})
        client.request("GET", "/idx,other*/_search", params={"q": "a:b c", "h": "a,b"})
        client.request("POST", "/idx/_refresh")  # no body at all
        client.request("POST", "/echo", raw_body=b"")
        client.request("HEAD", "/idx")
        client.request("DELETE", "/idx/_doc/%E4%B8%AD%E6%96%87%2Fid", params={"refresh": True})
    assert verifier.rejected == 0, verifier.failures
    assert verifier.verified == verifier.stats.requests_seen == 7
    assert len(upstream.recorder.requests) == 7


def test_a_compressed_body_is_signed_as_sent(
    verifier: SigV4VerifyingProxy, upstream: Upstream
) -> None:
    body = {"text": "x" * 5000}
    with Client([verifier.url], auth=signer(), http_compress=True) as client:
        answer = client.request("POST", "/echo", body=body)
    assert verifier.rejected == 0, verifier.failures
    sent = upstream.recorder.requests[-1].body
    assert sent[:2] == b"\x1f\x8b"  # gzip went through, and was what got signed
    assert verifier.verified_requests[-1].content_encoding == "gzip"
    assert answer["sha256"] == payload_hash(sent)


def test_a_wrong_secret_is_refused_with_awss_reason(verifier: SigV4VerifyingProxy) -> None:
    with Client([verifier.url], auth=signer(secret_key="not-the-secret")) as client:
        with pytest.raises(AuthorizationError) as info:
            client.request("PUT", "/idx/_doc/1", body={"x": 1})
    assert info.value.status == 403
    assert "does not match the signature you provided" in (info.value.reason or "")
    assert "not-the-secret" not in str(info.value) and SECRET not in str(info.value)
    assert verifier.rejected == 1 and verifier.verified == 0
    assert "signature does not match botocore's" in verifier.failures[0]


def test_an_unsigned_request_is_refused(verifier: SigV4VerifyingProxy) -> None:
    with Client([verifier.url]) as client:
        with pytest.raises(AuthorizationError):
            client.request("GET", "/idx/_search")
    assert verifier.rejected == 1
    assert "0 Authorization headers" in verifier.failures[0]


def test_a_retry_is_signed_again(verifier: SigV4VerifyingProxy) -> None:
    # Each signature one second after the previous one: a resend of the same bytes would
    # carry the first date; a re-signed retry carries its own.
    ticks = itertools.count()
    start = time.time()
    clock = lambda: start + next(ticks)  # noqa: E731
    verifier.set_fault(Fault.reset_after_request().times(1).matching(method="PUT"))
    with Client([verifier.url], auth=signer(clock=clock)) as client:
        client.request("PUT", "/idx/_doc/1", body={"x": 1})
    puts = [r for r in verifier.verified_requests if r.method == "PUT"]
    assert len(puts) == 2 and puts[0].amz_date != puts[1].amz_date
    assert verifier.rejected == 0, verifier.failures
    assert verifier.verified == verifier.stats.requests_seen


# -- the verifier's own checks, with hand-made requests ------------------------------------


def send(
    proxy: SigV4VerifyingProxy, method: str, target: str, headers: dict[str, str], body: bytes
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    try:
        conn.request(method, target, body=body or None, headers=headers)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def hand_signed(
    proxy: SigV4VerifyingProxy,
    *,
    body: bytes = b"{}",
    sent_body: bytes | None = None,
    extra: tuple[tuple[str, str], ...] = (),
    when: float | None = None,
) -> dict[str, str]:
    host = f"127.0.0.1:{proxy.port}"
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if when is None else when))
    content = payload_hash(body)
    signed = [
        ("host", host),
        ("x-amz-content-sha256", content),
        ("x-amz-date", amz_date),
        ("x-amz-security-token", TOKEN),
        *extra,
    ]
    result = sign(
        "PUT",
        "/idx/_doc/1",
        signed,
        content,
        access_key=KEY_ID,
        secret_key=SECRET,
        region=REGION,
        service="es",
        amz_date=amz_date,
    )
    headers = dict(signed)
    headers["authorization"] = result.authorization
    headers["content-type"] = "application/json"
    status, answer = send(
        proxy, "PUT", "/idx/_doc/1", headers, body if sent_body is None else sent_body
    )
    headers["status"] = str(status)
    headers["answer"] = answer.decode()
    return headers


def test_a_correct_hand_made_signature_is_accepted(verifier: SigV4VerifyingProxy) -> None:
    assert hand_signed(verifier)["status"] == "200"
    assert verifier.verified == 1


@pytest.mark.parametrize(
    ("options", "reason", "message"),
    [
        ({"extra": (("user-agent", "x"),)}, "more than host and x-amz-*: user-agent", ""),
        ({"sent_body": b"{ }"}, "not the SHA-256 of the body", "x-amz-content-sha256"),
        ({"when": time.time() - 600}, "s from now", "Signature expired"),
    ],
)
def test_bad_signatures_are_refused(
    verifier: SigV4VerifyingProxy, options: dict[str, Any], reason: str, message: str
) -> None:
    result = hand_signed(verifier, **options)
    assert result["status"] == "403"
    assert message in result["answer"]
    assert verifier.rejected == 1 and reason in verifier.failures[0]


def test_the_forwarded_head_loses_the_signature() -> None:
    raw = (
        b"PUT /i/_doc/1 HTTP/1.1\r\nHost: h\r\nAuthorization: AWS4-HMAC-SHA256 x\r\n"
        b"X-Amz-Date: 20150830T123600Z\r\nx-amz-content-sha256: abc\r\nExpect: 100-continue\r\n"
        b"Content-Length: 2\r\n\r\n"
    )
    assert _strip_signing(raw) == b"PUT /i/_doc/1 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n"


# -- OpenSearch Serverless: probes and ping without a root endpoint -------------------------


@pytest.fixture
def no_root(upstream: Upstream) -> Iterator[FaultProxy]:
    """A server whose ``/`` is 404, as OpenSearch Serverless's is."""
    with FaultProxy(upstream.url) as proxy:
        proxy.add_fault(Fault.status(404).matching(path_regex=r"^/$"))
        yield proxy


@pytest.mark.parametrize("service", ["aoss", "es"])
def test_a_serverless_probe_accepts_any_answer(no_root: FaultProxy, service: str) -> None:
    # The first attempt is reset before it reaches the server: the node is ejected, and the
    # retry waits for a probe (GET /). Serverless answers it 404, which shows a live node.
    no_root.add_fault(Fault.reset_before_request().times(1).matching(path_prefix="/idx"))
    with Client([no_root.url], auth=signer(service=service), timeout=5) as client:
        if service == "aoss":
            assert client.request("GET", "/idx/_doc/1")["ok"] is True
        else:
            with pytest.raises(SturdySearchError):
                client.request("GET", "/idx/_doc/1")


@pytest.mark.parametrize(("service", "expected"), [("aoss", True), ("es", False)])
def test_ping_without_a_root_endpoint(no_root: FaultProxy, service: str, expected: bool) -> None:
    with Client([no_root.url], auth=signer(service=service)) as client:
        assert client.ping() is expected


def test_the_serverless_dialect_is_known_without_asking(no_root: FaultProxy) -> None:
    with Client([no_root.url], auth=signer(service="aoss")) as client:
        dialect = client.dialect()
        info = client.info()
    assert dialect.serverless and dialect.pit == "opensearch"
    assert str(info) == "opensearch serverless"
    assert no_root.stats.requests_seen == 0

"""A reverse proxy that checks every request's AWS Signature Version 4 the way AWS would, with
botocore's own signer, before a real (unsigned, plain http) node sees it.

Tests put it between the client and a harness node: ``SigV4VerifyingProxy(node_url,
access_key=..., secret_key=..., region="us-east-1", service="es")``. For every request it

* reads the whole body (``Content-Length`` framing; a chunked request is refused: the client
  never sends one, and SigV4 over a streamed body is another protocol);
* checks the ``Authorization`` header's form; that ``SignedHeaders`` include ``host``,
  ``x-amz-date`` and ``x-amz-content-sha256`` and nothing but ``host`` and ``x-amz-*``
  (a signed hop-by-hop header is what breaks behind a load balancer); that
  ``x-amz-content-sha256`` is the SHA-256 of the body bytes received; that the session token,
  when one is configured, is sent and signed; that ``x-amz-date`` is within five minutes of
  now;
* recomputes the signature with ``botocore.auth.SigV4Auth`` from the method, ``http://`` + the
  ``Host`` header + the path received, the body, the request's query parameters and only the
  headers that ``SignedHeaders`` names, dated with the request's own ``x-amz-date``, and
  compares the whole ``Authorization`` value.

A request that fails any check is answered ``403`` with AWS's JSON error shape
(``{"message": "..."}``), counted in :attr:`rejected` and explained in :attr:`failures`; one
that passes is counted in :attr:`verified` and forwarded without its ``Authorization`` and
``x-amz-*`` headers, and the node's answer is relayed as is.

The query is handed to botocore as decoded parameters, not inside the URL: given a URL,
botocore signs its query exactly as written (botocore itself always writes it canonically),
while AWS services decode the parameters and encode them canonically again, so a client that
leaves ``,`` bare in ``_source=a,b`` is right. Given parameters, botocore encodes them as AWS
does.

It is a :class:`~sturdysearch.testing.proxy.FaultProxy`: the same threads, keep-alive framing
and clean ``close()``, and faults installed with ``set_fault`` still apply to requests that
passed verification (a ``reset_after_request`` makes the client retry, and the retry is
verified again). Needs botocore (``sturdysearch[aws]``, or the ``dev`` extra).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import importlib
import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from sturdysearch.testing.faults import Fault
from sturdysearch.testing.proxy import (
    _CHUNKED,
    _LENGTH,
    FaultProxy,
    _Connection,
    _forward_exact,
    _Outcome,
    _parse_head,
    _Request,
)

__all__ = ["SigV4VerifyingProxy", "Verified"]

#: How far the request's date may be from now, as AWS allows.
MAX_SKEW = 300.0
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<credential>[^,\s]+), ?SignedHeaders=(?P<signed>[^,\s]+), "
    r"?Signature=(?P<signature>[0-9a-f]{64})"
)
_REQUIRED = ("host", "x-amz-content-sha256", "x-amz-date")
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check "
    "your AWS Secret Access Key and signing method."
)


@dataclasses.dataclass(frozen=True)
class Verified:
    """One request that passed verification, as it arrived."""

    method: str
    target: str
    amz_date: str
    """The date it was signed with: a retry that was signed again has its own."""
    content_encoding: str | None
    """``gzip`` for a compressed body (the signature covered the compressed bytes)."""
    body_size: int


class _Rejected(Exception):
    """Why a request fails verification; ``message`` is what the 403 body says."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message = message or reason


class SigV4VerifyingProxy(FaultProxy):
    """A verifying reverse proxy on 127.0.0.1 in front of ``upstream_url`` (plain http).

    ``clock`` (epoch seconds, default ``time.time``) is what "now" is for the date check;
    ``max_skew`` how far off a request's date may be. Other keywords go to ``FaultProxy``.
    """

    def __init__(
        self,
        upstream_url: str,
        *,
        access_key: str,
        secret_key: str,
        session_token: str | None = None,
        region: str,
        service: str,
        clock: Callable[[], float] = time.time,
        max_skew: float = MAX_SKEW,
        **proxy_options: Any,
    ) -> None:
        super().__init__(upstream_url, **proxy_options)
        auth = importlib.import_module("botocore.auth")
        credentials = importlib.import_module("botocore.credentials")
        self._awsrequest = importlib.import_module("botocore.awsrequest")
        self._signer = auth.SigV4Auth(
            credentials.Credentials(access_key, secret_key, session_token), service, region
        )
        self._access_key = access_key
        self._session_token = session_token
        self._clock = clock
        self._max_skew = max_skew
        self._lock = threading.Lock()
        self._verified = 0
        self._rejected = 0
        self._failures: list[str] = []
        self._verified_requests: list[Verified] = []

    def __repr__(self) -> str:
        return (
            f"SigV4VerifyingProxy({self._upstream_addr!r}, access_key={self._access_key[:4]!r}...)"
        )

    # -- what the tests read ---------------------------------------------------------------

    @property
    def verified(self) -> int:
        """Requests whose signature botocore agreed with (and that were forwarded)."""
        with self._lock:
            return self._verified

    @property
    def rejected(self) -> int:
        """Requests answered 403 by the proxy."""
        with self._lock:
            return self._rejected

    @property
    def failures(self) -> list[str]:
        """Why each rejected request was rejected, oldest first."""
        with self._lock:
            return list(self._failures)

    @property
    def verified_requests(self) -> list[Verified]:
        """Each verified request, oldest first: a retry shows up twice, with the date of its
        own signature."""
        with self._lock:
            return list(self._verified_requests)

    def reset_counts(self) -> None:
        """Zero the verification counters (the proxy's own stats: ``reset_stats``)."""
        with self._lock:
            self._verified = self._rejected = 0
            self._failures.clear()
            self._verified_requests.clear()

    # -- per request -------------------------------------------------------------------------

    def _handle(self, conn: _Connection, request: _Request, fault: Fault | None) -> str:
        if request.framing == _CHUNKED:
            # Cannot hash a body it did not read; close so the framing is not a problem.
            self._reject(conn, request, _Rejected("chunked request bodies are not verified"))
            return _Outcome.CLOSE
        if request.expect_continue and request.framing == _LENGTH:
            conn.client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = b""
        if request.framing == _LENGTH:
            parts: list[bytes] = []
            _forward_exact(conn.client_reader, request.length, parts.append)
            body = b"".join(parts)
        try:
            amz_date = self._verify(request, body)
        except _Rejected as rejected:
            self._reject(conn, request, rejected)
            return _Outcome.KEEP if request.keep_alive else _Outcome.CLOSE
        with self._lock:
            self._verified += 1
            encoding = request.head.values("content-encoding")
            self._verified_requests.append(
                Verified(
                    request.method,
                    request.target,
                    amz_date,
                    encoding[0] if encoding else None,
                    len(body),
                )
            )
        # Forward without the signature, through FaultProxy's own path (faults included):
        # the body goes back in front of whatever the client sent after it.
        conn.client_reader._buf[:0] = body
        stripped = dataclasses.replace(
            request, head=_parse_head(_strip_signing(request.head.raw)), expect_continue=False
        )
        return super()._handle(conn, stripped, fault)

    def _reject(self, conn: _Connection, request: _Request, rejected: _Rejected) -> None:
        with self._lock:
            self._rejected += 1
            self._failures.append(f"{request.method} {request.target}: {rejected.reason}")
        body = json.dumps({"message": rejected.message}).encode()
        close = not request.keep_alive or request.framing == _CHUNKED
        head = (
            "HTTP/1.1 403 Forbidden\r\n"
            "content-type: application/json\r\n"
            "x-amzn-errortype: InvalidSignatureException\r\n"
            f"content-length: {len(body)}\r\n" + ("connection: close\r\n" if close else "") + "\r\n"
        )
        conn.client.sendall(head.encode("latin-1") + (b"" if request.method == "HEAD" else body))

    def _verify(self, request: _Request, body: bytes) -> str:
        """The request's ``x-amz-date`` if its signature holds; else raises ``_Rejected``."""
        head = request.head
        values = head.values("authorization")
        if len(values) != 1:
            raise _Rejected(f"{len(values)} Authorization headers", "Missing Authentication Token")
        match = _AUTH.fullmatch(values[0])
        if match is None:
            raise _Rejected(
                "Authorization is not AWS4-HMAC-SHA256 Credential/SignedHeaders/Signature"
            )
        signed = match["signed"].split(";")
        missing = [name for name in _REQUIRED if name not in signed]
        if missing:
            raise _Rejected(f"SignedHeaders lacks {', '.join(missing)}")
        foreign = [n for n in signed if n != "host" and not n.startswith("x-amz-")]
        if foreign:
            raise _Rejected(f"SignedHeaders names more than host and x-amz-*: {', '.join(foreign)}")
        if signed != sorted(set(signed)):
            raise _Rejected("SignedHeaders is not sorted and unique")
        headers: dict[str, str] = {}
        for name in signed:
            found = head.values(name)
            if not found:
                raise _Rejected(f"signed header {name} was not sent")
            headers[name] = ",".join(found)
        if self._session_token is not None:
            if "x-amz-security-token" not in signed:
                raise _Rejected("the session token is not signed")
            if headers["x-amz-security-token"] != self._session_token:
                raise _Rejected(
                    "wrong session token", "The security token included in the request is invalid."
                )
        digest = hashlib.sha256(body).hexdigest()
        if headers["x-amz-content-sha256"] != digest:
            raise _Rejected(
                "x-amz-content-sha256 is not the SHA-256 of the body received",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            )
        amz_date = headers["x-amz-date"]
        try:
            when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
        except ValueError:
            raise _Rejected(f"x-amz-date {amz_date!r} is not YYYYMMDDTHHMMSSZ") from None
        skew = when.replace(tzinfo=datetime.timezone.utc).timestamp() - self._clock()
        if abs(skew) > self._max_skew:
            raise _Rejected(f"x-amz-date is {skew:+.0f} s from now", "Signature expired")
        expected = self._botocore_authorization(request, headers, body, amz_date)
        if values[0] != expected:
            raise _Rejected(
                f"signature does not match botocore's (sent {values[0]!r}, botocore {expected!r})",
                MISMATCH,
            )
        return amz_date

    def _botocore_authorization(
        self, request: _Request, headers: dict[str, str], body: bytes, amz_date: str
    ) -> str:
        """The ``Authorization`` value botocore computes for this request."""
        path, _, query = request.path.partition("?")
        params = []
        for part in query.split("&") if query else ():
            if part:
                name, _, value = part.partition("=")
                params.append((unquote(name), unquote(value)))
        aws_request = self._awsrequest.AWSRequest(
            method=request.method,
            url=f"http://{headers['host']}{path}",
            headers=headers,
            data=body,
            params=params,
        )
        aws_request.context["timestamp"] = amz_date
        signer = self._signer
        canonical = signer.canonical_request(aws_request)
        string_to_sign = signer.string_to_sign(aws_request, canonical)
        signature = signer.signature(string_to_sign, aws_request)
        names = signer.signed_headers(signer.headers_to_sign(aws_request))
        return (
            f"AWS4-HMAC-SHA256 Credential={signer.scope(aws_request)}, "
            f"SignedHeaders={names}, Signature={signature}"
        )


def _strip_signing(raw: bytes) -> bytes:
    """The request head without ``Authorization``, ``x-amz-*`` and ``Expect`` lines."""
    lines = raw[:-4].split(b"\r\n")
    kept = [lines[0]]
    for line in lines[1:]:
        name = line.split(b":", 1)[0].strip().lower()
        if name == b"authorization" or name == b"expect" or name.startswith(b"x-amz-"):
            continue
        kept.append(line)
    return b"\r\n".join(kept) + b"\r\n\r\n"

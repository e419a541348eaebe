"""AWS Signature Version 4, sans-IO: the headers that authenticate one request's exact bytes.

Used by :class:`sturdysearch.auth.AwsSigV4` for Amazon OpenSearch Service (``es``) and
OpenSearch Serverless (``aoss``). Pure functions of their arguments: the date comes in as the
``YYYYMMDDTHHMMSSZ`` text (the caller reads the clock), the credentials as plain strings (the
caller asks its provider for fresh ones each time). Only ``hashlib`` and ``hmac``.

The canonical request follows AWS's specification as botocore's ``SigV4Auth`` applies it to
every service but S3, and as AWS's published test suite checks it
(``tests/data/aws-sigv4-testsuite``):

* **URI**: the path as it goes on the wire (already percent-encoded by the client), with dot
  segments removed and runs of ``/`` collapsed, then percent-encoded *again* (``safe="/~"``):
  ``/idx/_doc/a%3Ab`` is signed as ``/idx/_doc/a%253Ab``. The server does the same with the
  path it receives, so the two agree whatever the client chose to escape.
* **query**: split on ``&``, each name and value percent-decoded and re-encoded with only
  ``A-Z a-z 0-9 - _ . ~`` left as they are, then sorted. The wire form may leave ``,`` or
  ``*`` bare (the client does, for index lists); the canonical form never does.
* **headers**: names lower-cased, values trimmed with inner runs of spaces collapsed, repeated
  names joined with ``,`` in the order sent, sorted by name.

What is signed, for the client: ``host``, ``x-amz-date``, ``x-amz-content-sha256`` and, with
temporary credentials, ``x-amz-security-token``; nothing else. ``connection``,
``content-length``, ``accept-encoding`` and ``user-agent`` stay out on purpose: a load balancer
or proxy may rewrite or drop them, and a signature over a header that changed on the way is a
403 that no retry cures (opensearch-py regressed exactly so). ``x-amz-content-sha256`` is always
sent and signed: Serverless requires it, and it makes the body part of the signature explicitly.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
"""The content hash of a request without a body."""

_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")
_QUERY_SAFE = "-_.~"
_PATH_SAFE = "/~"


@dataclass(frozen=True, slots=True)
class Signature:
    """The intermediate texts and the result of signing one request; none holds a secret (the
    signing key is derived and dropped inside :func:`sign`)."""

    canonical_request: str
    string_to_sign: str
    signed_headers: str
    """The header names signed, ``;``-joined: ``host;x-amz-content-sha256;x-amz-date``."""
    signature: str
    """Hex HMAC-SHA256 of :attr:`string_to_sign`."""
    authorization: str
    """The ``Authorization`` header value."""


def normalize_path(path: str) -> str:
    """``path`` with ``.`` and ``..`` segments resolved (RFC 3986 section 5.2.4) and empty
    segments dropped (AWS signs ``//a//`` as ``/a/``); a trailing ``/`` is kept when something
    is left before it. The empty path is ``/``."""
    if not path:
        return "/"
    kept: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if kept:
                kept.pop()
            continue
        kept.append(segment)
    lead = "/" if path.startswith("/") else ""
    trail = "/" if path.endswith("/") and kept else ""
    return lead + "/".join(kept) + trail


def canonical_uri(path: str) -> str:
    """The canonical URI of a wire path: normalized, then percent-encoded once more."""
    return quote(normalize_path(path), safe=_PATH_SAFE)


def canonical_query(query: str) -> str:
    """The canonical query string of a wire query (without the ``?``)."""
    if not query:
        return ""
    pairs: list[tuple[str, str]] = []
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append(
            (quote(unquote(name), safe=_QUERY_SAFE), quote(unquote(value), safe=_QUERY_SAFE))
        )
    pairs.sort()
    return "&".join(f"{name}={value}" for name, value in pairs)


def canonical_headers(headers: Iterable[tuple[str, str]]) -> tuple[str, str]:
    """``(canonical header block, signed header names)`` of the headers to sign. The block
    has one ``name:value`` line per name, each ending in a newline."""
    merged: dict[str, list[str]] = {}
    for name, value in headers:
        merged.setdefault(name.strip().lower(), []).append(" ".join(value.split()))
    names = sorted(merged)
    block = "".join(f"{name}:{','.join(merged[name])}\n" for name in names)
    return block, ";".join(names)


def payload_hash(body: bytes | None) -> str:
    """Hex SHA-256 of the body bytes as sent (after compression), of ``b""`` without one."""
    return hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def sign(
    method: str,
    target: str,
    headers: Sequence[tuple[str, str]],
    content_sha256: str,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    service: str,
    amz_date: str,
) -> Signature:
    """Sign a request whose headers to sign are exactly ``headers`` (``host`` and
    ``x-amz-date`` among them). ``target`` is the request target as sent: path and optional
    ``?query``. The AWS test vectors call this directly; the client calls :func:`sigv4_headers`."""
    if not _AMZ_DATE.fullmatch(amz_date):
        raise ValueError(f"amz_date must look like 20150830T123600Z, not {amz_date!r}")
    path, _, query = target.partition("?")
    block, signed = canonical_headers(headers)
    canonical_request = "\n".join(
        (method.upper(), canonical_uri(path), canonical_query(query), block, signed, content_sha256)
    )
    day = amz_date[:8]
    scope = f"{day}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        (
            ALGORITHM,
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
        )
    )
    key = _hmac(("AWS4" + secret_key).encode("utf-8"), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    authorization = (
        f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={signed}, "
        f"Signature={signature}"
    )
    return Signature(canonical_request, string_to_sign, signed, signature, authorization)


def sigv4_headers(
    method: str,
    host: str,
    target: str,
    body: bytes | None,
    *,
    access_key: str,
    secret_key: str,
    session_token: str | None,
    region: str,
    service: str,
    amz_date: str,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> list[tuple[str, str]]:
    """The headers (lower-case names) that authenticate ``method target`` with ``body`` to
    ``host`` (the ``Host`` header value sent: ``host`` or ``host:port``): ``authorization``,
    ``x-amz-date``, ``x-amz-content-sha256`` and, with a session token,
    ``x-amz-security-token``. ``extra_headers`` are signed too (and must then be sent as
    given); the client passes none."""
    content_sha256 = payload_hash(body)
    added = [("x-amz-date", amz_date), ("x-amz-content-sha256", content_sha256)]
    if session_token:
        added.append(("x-amz-security-token", session_token))
    signature = sign(
        method,
        target,
        [("host", host), *added, *extra_headers],
        content_sha256,
        access_key=access_key,
        secret_key=secret_key,
        region=region,
        service=service,
        amz_date=amz_date,
    )
    return [("authorization", signature.authorization), *added]

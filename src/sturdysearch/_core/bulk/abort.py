"""Why a bulk load stops, in words that say what to fix.

Some failures say nothing about the document and everything about the load: every document
after them would fail the same way, and dead-lettering them one by one (tens of thousands of
identical records, minutes of retrying an unreachable cluster) helps nobody. The engine
(``engine.py``) decides *that* a load stops, in three cases:

* a request-level ``fatal`` verdict (``classify.classify_request``): 401, 403 or another 4xx on
  the ``_bulk`` request itself, a TLS failure, the proxy refusing its credentials;
* an answer whose every item is ``systemic`` (``classify.systemic_item``) and went to one index
  (:func:`one_index`): a missing index with auto-create off, a closed, read-only or otherwise
  blocked index, an invalid index name, a 403 ``security_exception`` for that index. In a load
  that spreads documents over several indices, a batch that also holds documents for another
  index goes on (the others may be fine); a batch whose every document went to the broken index
  stops the load;
* no answer from the cluster (``classify.unanswered``) for ``abort_after`` seconds since the
  first request that got none.

This module words each case for ``BulkAbortedError.reason`` (:class:`Stop`), and builds the
``ApiError`` that stands for a per-item failure as its ``cause``. Server reasons are quoted;
the client's own configuration (credentials, headers) never is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from sturdysearch._core.bulk.encode import split_item
from sturdysearch._core.responses import error_class
from sturdysearch.errors import (
    ApiError,
    AuthenticationError,
    AuthorizationError,
    ProxyAuthenticationError,
    SturdySearchError,
    TLSError,
)

#: Longest server reason quoted in a stop reason (the cause carries it whole).
_QUOTE = 300


@dataclass(frozen=True, slots=True)
class Stop:
    """Why the engine stopped a load: what to fix, and the failure that showed it."""

    reason: str
    cause: SturdySearchError


def request_stop(exc: SturdySearchError) -> Stop:
    """The stop after a request-level ``fatal`` verdict."""
    if isinstance(exc, TLSError):
        why = f"TLS failed ({exc}): fix the CA, certificate or host name the client is given"
    elif isinstance(exc, ProxyAuthenticationError):
        why = "the HTTP proxy refused its credentials (407): check the user and password in proxy="
    elif isinstance(exc, AuthenticationError):
        why = (
            "the cluster refused the client's credentials (401): check the user and password, "
            "API key or token the client was given"
        )
    elif isinstance(exc, ApiError) and exc.error_type == "cluster_block_exception":
        why = _block(None, exc.reason or "")
    elif isinstance(exc, AuthorizationError):
        why = (
            "the client's credentials may not write with _bulk (403"
            f"{_quoted(exc.error_type, exc.reason)}): grant them the write privilege on the "
            "target indices, or use other credentials"
        )
    elif isinstance(exc, ApiError):
        why = (
            f"the cluster rejected the _bulk request itself ({exc.status}"
            f"{_quoted(exc.error_type, exc.reason)}); every later request has the same path "
            "and query parameters: fix the index name, pipeline or params="
        )
    else:  # not reached: classify_request calls nothing else fatal
        why = f"{type(exc).__name__}: {exc}"
    return Stop(why, exc)


def item_stop(status: int, error_type: str | None, reason: str, index: str | None) -> Stop:
    """The stop after an answer whose every item failed with this systemic error, all for
    ``index`` (``None``: the request's default index, unnamed)."""
    name = f"index [{index}]" if index else "the target index"
    quoted = reason[:_QUOTE]
    if error_type == "security_exception":
        why = (
            f"the client's credentials may not write to {name} (403 security_exception: "
            f"{quoted}): grant them the write privilege on it, or use other credentials"
        )
    elif error_type == "invalid_index_name_exception":
        why = (
            f"{name} is not a valid index name ({quoted}): index names are lower case, do not "
            'start with "_", "-" or "+", and have none of \\ / * ? " < > | , # : or spaces'
        )
    elif error_type == "index_not_found_exception":
        why = (
            f"{name} does not exist and the cluster does not create indices on write "
            f"({quoted}): create it first, or allow its name in the cluster setting "
            "action.auto_create_index"
        )
    elif error_type == "index_closed_exception":
        target = f"/{index}" if index else "/<index>"
        why = f"{name} is closed ({quoted}): open it (POST {target}/_open) or write elsewhere"
    else:
        why = _block(index, reason)
    cause = error_class(status)(status, error_type=error_type, reason=reason)
    return Stop(why, cause)


def silence_stop(seconds: float, exc: SturdySearchError) -> Stop:
    """The stop after ``seconds`` without any answer; ``exc`` is the last failure."""
    why = (
        f"no answer from the cluster for {seconds:.1f} s (last failure: {type(exc).__name__}: "
        f"{str(exc)[:_QUOTE]}): check that it is up and that the client's hosts, scheme, port "
        "and proxy are right; abort_after= sets how long a bulk load waits for an answer"
    )
    return Stop(why, exc)


def one_index(lines: Iterable[bytes], default: str | None) -> tuple[bool, str | None]:
    """``(True, index)`` when every action of ``lines`` goes to one index (an action without
    ``_index`` goes to ``default``), else ``(False, None)``. Parses the action lines: called
    only when every item of an answer failed, never on the path of a success."""
    seen: str | None = None
    first = True
    for line in lines:
        action, _ = split_item(line)
        parsed = orjson.loads(action)
        meta = next(iter(parsed.values()), None) if isinstance(parsed, dict) else None
        index = meta.get("_index", default) if isinstance(meta, dict) else default
        if first:
            seen, first = index, False
        elif index != seen:
            return False, None
    return True, seen


def _block(index: str | None, reason: str) -> str:
    name = f"index [{index}]" if index else "the target index"
    target = f"/{index}" if index else "/<index>"
    return (
        f"{name} is blocked against writes ({reason[:_QUOTE]}): an operator set the block, or "
        "the disk filled up past the flood-stage watermark (read-only-allow-delete). Fix the "
        "cause (free disk space), then lift the block: PUT "
        f'{target}/_settings {{"index.blocks.read_only_allow_delete": null}} (or the block '
        "named above)"
    )


def _quoted(error_type: str | None, reason: str | None) -> str:
    text = f" {error_type}" if error_type else ""
    if reason:
        text += f": {reason[:_QUOTE]}"
    return text
